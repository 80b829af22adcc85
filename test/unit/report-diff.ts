import t from 'tap';
import { diagnose } from '../../src/report/diagnosis.js';
import { changeCounts, compareToBaseline, diagnoseAgainstBaseline, verifyExitCode } from '../../src/report/diff.js';
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
  t.same(v.baseline, { startedAt: baseline.startedAt, summary: baseline.summary, file: 'base.json', notTested: 0, notTestedFlows: [] });
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

t.test('flows of the baseline this run did not test are counted, named and explained', async (t) => {
  const baseline = mesh(4, { checks: ['bgp', 'ipip', 'vxlan'] });
  // This run: two of the three checks, and node4 gone from the inventory.
  const now = mesh(3, { checks: ['bgp', 'ipip'] });
  const v = compareToBaseline(now, baseline, 'base.json');
  const b = v.baseline!;
  // vxlan: 12 flows; bgp and ipip to or from node4: 2 checks x 6.
  t.equal(b.notTested, 12 + 12);
  t.same(b.notTestedChecks, ['vxlan']);
  t.same(b.notTestedNodes, ['node4']);
  t.equal(b.notTestedFlows!.length, 24);
  t.ok(b.notTestedFlows!.includes('vxlan node1 -> node2'));
  t.ok(b.notTestedFlows!.includes('bgp node4 -> node1'));
  t.equal(verifyExitCode(v, false), 0, 'nothing regressed: exit 0');
  t.equal(verifyExitCode(v, true), 1, '--strict: untested baseline flows are fatal');
  t.equal(verifyExitCode(compareToBaseline(now, now), true), 0, '--strict with everything tested and passing');
});

t.test('the list of untested flows is capped, the count is not', async (t) => {
  const baseline = mesh(20, { checks: ['bgp'] });
  const v = compareToBaseline(mesh(2, { checks: ['bgp'] }), baseline);
  t.equal(v.baseline!.notTested, 20 * 19 - 2);
  t.equal(v.baseline!.notTestedFlows!.length, 200);
});

t.test('an incomplete baseline, or one of other nodes, gets a warning', async (t) => {
  const now = mesh(3, { checks: ['bgp'] });
  t.same(compareToBaseline(now, mesh(3, { checks: ['bgp'] })).baseline!.warnings, undefined, 'a sound baseline: no warning');
  const cut = { ...mesh(3, { checks: ['bgp'] }), incomplete: true };
  t.match(compareToBaseline(now, cut).baseline!.warnings, [/baseline is incomplete/]);
  const other = mesh(3, { checks: ['bgp'], name: (i) => `prod-${i}` });
  t.match(compareToBaseline(now, other).baseline!.warnings, [/shares no node with this run .*prod-1.*another cluster/]);
  const moved = mesh(3, { checks: ['bgp'], address: (i) => `198.19.${i}.1` });
  t.match(compareToBaseline(now, moved).baseline!.warnings, [/3 nodes changed address since the baseline \(node1 198\.19\.1\.1 -> 198\.18\.1\.1/]);
});

t.test('verify diagnosis: new failures first, those already in the baseline after, marked known', async (t) => {
  const { diagnoseAgainstBaseline } = await import('../../src/report/diff.js');
  const baseline = mesh(4, { checks: ['bgp'], fault: (_c, _f, to) => (to === 'node4' ? fail('ingress-blocked') : undefined) });
  const now = mesh(4, { checks: ['bgp'], fault: (_c, f, to) => (to === 'node4' ? fail('ingress-blocked') : f === 'node2' ? fail('egress-blocked') : undefined) });
  const d = diagnoseAgainstBaseline(compareToBaseline(now, baseline));
  t.ok(d.length >= 2);
  t.notOk(d[0]!.known, 'the first statement is new');
  t.match(d[0]!.text, /node2/, 'about the new failures (node2 sends nothing)');
  const known = d.filter((x) => x.known);
  t.ok(known.length >= 1);
  t.match(known[0]!.text, /node4/, 'node4 was already failing');
  t.ok(d.findIndex((x) => x.known) > d.findIndex((x) => !x.known), 'known ones come after');
});

t.test('the diagnosis quotes the rules --explain named, also in verify\'s diagnosis against a baseline', async (t) => {
  const rule = { backend: 'iptables-nft', family: 'ip', table: 'filter', chain: 'INPUT', position: 3, text: '-A INPUT -p tcp -m tcp --dport 179 -j DROP', verdict: 'drop', method: 'trace' } as const;
  const r = mesh(3, { fault: (c, _f, to) => (c === 'bgp' && to === 'node2' ? fail('ingress-blocked', { rule: { ...rule } }) : undefined) });
  const [st] = diagnose(r);
  t.match(st!.advice, /On node2 the rule that took the verdict is `-A INPUT -p tcp -m tcp --dport 179 -j DROP` .*To allow it: `iptables -I INPUT 3 -s 198\.18\.1\.1 -p tcp --dport 179 -j ACCEPT`\.$/);
  t.equal((st!.advice.match(/On node2 the rule/g) ?? []).length, 1, 'one rule, quoted once');
  for (const x of r.results) x.change = x.verdict === 'pass' ? 'unchanged' : 'regressed';
  t.equal(diagnoseAgainstBaseline(r)[0]!.advice, st!.advice, 'verify keeps the rules');
  const plain = mesh(3, { fault: (c, _f, to) => (c === 'bgp' && to === 'node2' ? fail('ingress-blocked') : undefined) });
  t.notMatch(diagnose(plain)[0]!.advice, /took the verdict/, 'no rule: nothing quoted');
});

t.test('verify: a fixed flow carries what the baseline said (was); the split diagnosis points at the report\'s own results', async (t) => {
  const { membersOf } = await import('../../src/report/diagnosis.js');
  const baseline = mesh(4, { checks: ['bgp', 'ipip'], fault: (c, _f, to) => (c === 'ipip' && to === 'node4' ? fail('ingress-blocked', { rejectedBy: '198.18.4.1' }) : undefined) });
  const now = mesh(4, { checks: ['bgp', 'ipip'], fault: (c, f) => (c === 'bgp' && f === 'node3' ? fail('egress-blocked') : undefined) });
  const v = compareToBaseline(now, baseline);
  const fixed = v.results.filter((r) => r.change === 'fixed');
  t.equal(fixed.length, 3);
  t.same(fixed.map((r) => r.was), fixed.map(() => ({ verdict: 'fail', cause: 'ingress-blocked', rejectedBy: '198.18.4.1' })));
  t.equal(v.results.filter((r) => r.was).length, 3, 'only fixed flows carry it');
  const d = diagnoseAgainstBaseline(v);
  t.equal(d.length, 1);
  const members = membersOf(d[0]!) ?? [];
  t.same(members.map((i) => `${v.results[i]!.check} ${v.results[i]!.from}`), ['bgp node3', 'bgp node3', 'bgp node3'], 'indices into report.results, not into the failures alone');
});
