import t from 'tap';
import { changeCounts, compareToBaseline, verifyExitCode } from '../../src/report/diff.js';
import { fail, mesh, unknown } from '../helpers/report-fixtures.js';

t.test('each change kind', async (t) => {
  const baseline = mesh(3, {
    checks: ['bgp'],
    fault: (_c, f, to) => (f === 'node1' && to === 'node2' ? fail('path-blocked') : f === 'node2' && to === 'node3' ? fail('blocked') : undefined),
  });
  baseline.results = baseline.results.filter((r) => !(r.from === 'node3' && r.to === 'node1'));
  const now = mesh(3, {
    checks: ['bgp'],
    fault: (_c, f, to) => (f === 'node2' && to === 'node1' ? fail('ingress-blocked') : f === 'node2' && to === 'node3' ? unknown() : f === 'node3' && to === 'node1' ? fail('egress-blocked') : undefined),
  });
  const v = compareToBaseline(now, baseline, 'base.json');
  const change = (f: string, to: string) => v.results.find((r) => r.from === f && r.to === to)!.change;
  t.equal(change('node1', 'node2'), 'fixed');
  t.equal(change('node2', 'node1'), 'regressed');
  t.equal(change('node2', 'node3'), 'unchanged', 'failed before, still fails');
  t.equal(change('node3', 'node1'), 'new');
  t.equal(change('node1', 'node3'), 'unchanged');
  t.same(v.baseline, { startedAt: baseline.startedAt, summary: baseline.summary, file: 'base.json' });
  t.same(changeCounts(v), { unchanged: 3, regressed: 1, fixed: 1, new: 1 });
  t.equal(now.results[0]!.change, undefined, 'input not mutated');
  t.notOk('file' in compareToBaseline(now, baseline).baseline!, 'no file when none given');
});

t.test('exit codes', async (t) => {
  const clean = mesh(3);
  const oldFail = mesh(3, { fault: (c, f, to) => (c === 'ipip' && f === 'node1' && to === 'node2' ? fail('path-blocked') : undefined) });
  const stillFailing = compareToBaseline(oldFail, oldFail);
  t.equal(verifyExitCode(stillFailing, false), 0, 'known failure is not fatal');
  t.equal(verifyExitCode(stillFailing, true), 1, 'strict: any failure is fatal');
  const regressed = compareToBaseline(oldFail, clean);
  t.equal(verifyExitCode(regressed, false), 1);
  t.equal(verifyExitCode(regressed, true), 1);
  const fixed = compareToBaseline(clean, oldFail);
  t.equal(verifyExitCode(fixed, false), 0);
  t.equal(verifyExitCode(fixed, true), 0);
  const withUnknown = compareToBaseline(mesh(3, { fault: (c, f) => (c === 'bgp' && f === 'node3' ? unknown() : undefined) }), clean);
  t.equal(verifyExitCode(withUnknown, false), 1, 'pass -> unknown is a regression');
});
