import t from 'tap';
import { MATRIX_LEGEND, renderTable } from '../../src/report/table.js';
import { CAUSE_CODES } from '../../src/report/common.js';
import { readFileSync } from 'node:fs';
import type { Cause } from '../../src/types.js';
import { compareToBaseline } from '../../src/report/diff.js';
import { fail, mesh, unknown } from '../helpers/report-fixtures.js';

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[/;

t.test('pair: one line per flow', async (t) => {
  const r = mesh(2, { fault: (c, f) => (c === 'ipip' && f === 'node1' ? fail('ingress-blocked', { detail: 'arrived on eth0 of node2, never reached a socket' }) : undefined) });
  const out = renderTable(r, { color: false });
  const lines = out.split('\n');
  const bgp = lines.find((l) => l.startsWith('bgp') && l.includes('node1 -> node2'));
  t.ok(bgp, 'bgp line');
  t.match(bgp!, /pass\s+-\s+0\.40 ms\s+handshake answered/);
  const ipip = lines.find((l) => l.startsWith('ipip') && l.includes('node1 -> node2'));
  t.match(ipip!, /fail\s+ingress-blocked\s+-\s+arrived on eth0 of node2, never reached a socket/);
  t.equal(lines.filter((l) => / -> /.test(l) && /^(bgp|ipip|vxlan) /.test(l)).length, 6);
  t.match(out, /Diagnosis/);
  t.match(out, /6 flows: 5 pass, 1 fail, 0 unknown/);
  t.notMatch(out, ANSI);
});

t.test('pair: details cut to the width', async (t) => {
  const r = mesh(2, { fault: () => fail('path-blocked', { detail: 'x'.repeat(300) }) });
  const out = renderTable(r, { color: false, width: 100 });
  for (const l of out.split('\n').filter((l) => l.includes(' -> '))) t.ok(l.length <= 110, `line fits: ${l.length}`);
  t.match(out, /x…/);
});

t.test('matrix: cells and legend', async (t) => {
  const r = mesh(4, {
    fault: (c, f, to) => {
      if (c === 'ipip' && to === 'node3') return fail('ingress-blocked');
      if (c === 'bgp' && f === 'node2' && to === 'node4') return fail('rejected', { rejectedBy: '198.18.4.1' });
      if (c === 'vxlan' && f === 'node1' && to === 'node2') return unknown();
      return undefined;
    },
  });
  const out = renderTable(r, { color: false });
  const ipip = out.slice(out.indexOf('ipip '));
  const rows = ipip.split('\n').filter((l) => /^\s*\d node\d/.test(l)).slice(0, 4);
  t.same(rows.map((l) => l.replace(/^\s*\d node\d\s+/, '')), ['· ✓ I ✓', '✓ · I ✓', '✓ ✓ · ✓', '✓ ✓ I ·']);
  const bgp = out.slice(out.indexOf('bgp '), out.indexOf('ipip '));
  t.match(bgp, /2 node2\s+✓ · ✓ R/);
  const vx = out.slice(out.indexOf('vxlan '));
  t.match(vx, /1 node1\s+· \? ✓ ✓/);
  t.match(out, /Legend: ✓ pass E egress-blocked/);
  t.match(out, /I ingress-blocked/);
  t.match(out, /36 flows: 31 pass, 4 fail, 1 unknown/);
  t.match(out, /Diagnosis\n\s+1\. node3's own firewall drops IP-in-IP/);
  t.notMatch(out, ANSI);
});

t.test('colour only when asked', async (t) => {
  const r = mesh(4, { fault: (c, _f, to) => (c === 'ipip' && to === 'node3' ? fail('ingress-blocked') : undefined) });
  t.notMatch(renderTable(r, { color: false }), ANSI);
  t.match(renderTable(r, { color: true }), ANSI);
  const pair = mesh(2);
  t.notMatch(renderTable(pair, { color: false }), ANSI);
  t.match(renderTable(pair, { color: true }), ANSI);
});

t.test('over maxMatrixNodes: matrices skipped, diagnosis kept', async (t) => {
  const r = mesh(12, { fault: (c, _f, to) => (c === 'bgp' && to === 'node7' ? fail('ingress-blocked') : undefined) });
  const out = renderTable(r, { color: false, maxMatrixNodes: 10 });
  t.match(out, /Matrices skipped: 12 nodes is more than 10/);
  t.notMatch(out, /Legend/);
  t.match(out, /node7's own firewall drops BGP \(TCP 179\) from every node \(11 flows\)/);
});

t.test('flows option forces one line per flow', async (t) => {
  const out = renderTable(mesh(3), { color: false, flows: true });
  t.equal(out.split('\n').filter((l) => l.includes(' -> ')).length, 18);
});

t.test('incomplete banner', async (t) => {
  const r = { ...mesh(3), incomplete: true };
  const out = renderTable(r, { color: false });
  t.match(out.split('\n')[1]!, /INCOMPLETE/);
  t.notMatch(renderTable(mesh(3), { color: false }), /INCOMPLETE/);
});

t.test('verify: changes lead', async (t) => {
  const baseline = mesh(4, { fault: (c, f, to) => (c === 'bgp' && f === 'node1' && to === 'node2' ? fail('path-blocked') : undefined) });
  const now = mesh(4, {
    fault: (c, f, to) => (c === 'ipip' && (to === 'node3' || to === 'node4') && f !== to ? fail('ingress-blocked') : undefined),
  });
  const v = compareToBaseline(now, baseline, 'base.json');
  const out = renderTable(v, { color: false });
  const lines = out.split('\n');
  t.match(lines[1]!, /^6 flows regressed \(baseline base\.json of 2025-01-01T00:00:00\.000Z\): ipip node1 -> node3 now ingress-blocked, /);
  t.match(lines[2]!, /^1 flow fixed: bgp node1 -> node2$/);
});

t.test('verify: long change lists are cut at 10', async (t) => {
  const baseline = mesh(5);
  const now = mesh(5, { fault: (c) => (c === 'ipip' ? fail('blocked') : undefined) });
  const out = renderTable(compareToBaseline(now, baseline), { color: false });
  t.match(out, /20 flows regressed \(baseline of [^)]*\): .* and 10 more\n/);
  t.equal((out.split('\n')[1]!.match(/ now blocked/g) ?? []).length, 10);
});

t.test('verify: the table leads with what the baseline had that this run did not test', async (t) => {
  const baseline = mesh(4, { checks: ['bgp', 'ipip', 'vxlan'] });
  const out = renderTable(compareToBaseline(mesh(4, { checks: ['bgp'] }), baseline), { color: false });
  const lead = out.split('\n').findIndex((l) => /24 flows of the baseline were not tested: checks ipip, vxlan \(not in this run\)/.test(l));
  const noRegress = out.split('\n').findIndex((l) => /No flow regressed/.test(l));
  t.ok(lead >= 0, 'says how many and which checks');
  t.ok(lead < noRegress, 'before "No flow regressed"');
  const gone = renderTable(compareToBaseline(mesh(3, { checks: ['bgp'] }), mesh(4, { checks: ['bgp'] })), { color: false });
  t.match(gone, /6 flows of the baseline were not tested: node node4 \(not in the inventory\)/);
  const cut = renderTable(compareToBaseline(mesh(3, { checks: ['bgp'] }), { ...mesh(3, { checks: ['bgp'] }), incomplete: true }), { color: false });
  t.match(cut, /Warning: the baseline is incomplete/);
});

t.test('matrix: says rows are senders and columns receivers', async (t) => {
  t.match(renderTable(mesh(3), { color: false }), /Each row is a sender, each column a receiver/);
});

t.test('verify without colour: regressed cells are marked, not "inverted"', async (t) => {
  const baseline = mesh(3, { checks: ['bgp'] });
  const now = mesh(3, { checks: ['bgp'], fault: (_c, f, to) => (f === 'node1' && to === 'node3' ? fail('ingress-blocked') : undefined) });
  const plain = renderTable(compareToBaseline(now, baseline), { color: false });
  t.notMatch(plain, /inverted/);
  t.match(plain, /marked with a '!'/);
  const row1 = plain.split('\n').find((l) => /^1 node1/.test(l))!;
  t.match(row1, /!I/, 'the regressed cell carries the mark');
  t.equal((row1.match(/!/g) ?? []).length, 1, 'only that one');
  const coloured = renderTable(compareToBaseline(now, baseline), { color: true });
  t.match(coloured, /shown inverted/);
  t.notMatch(coloured, /!/);
});

t.test('an interrupted run says which nodes a matrix leaves out', async (t) => {
  const r = mesh(3, { checks: ['bgp'] });
  r.results = r.results.filter((x) => x.to !== 'node3');
  r.incomplete = true;
  const out = renderTable(r, { color: false });
  t.match(out, /Interrupted: no results yet to node3 as receiver — left out of the matrices' columns/);
  t.notMatch(out, /as sender/, 'node3 did send');
  t.notMatch(renderTable({ ...r, incomplete: false }, { color: false }), /Interrupted:/, 'only for an interrupted run');
});

t.test('matrix codes: one letter per cause, each in the legend', async (t) => {
  const legend = new Map(MATRIX_LEGEND);
  const seen = new Map<string, string>();
  const causes = Object.keys(CAUSE_CODES) as Cause[];
  const schema = JSON.parse(readFileSync(new URL('../../schema/report.schema.json', import.meta.url), 'utf8'));
  t.same([...causes].sort(), [...schema.$defs.result.properties.cause.enum].filter((c: unknown) => c !== null).sort(), 'the schema names the same causes');
  for (const cause of causes) {
    const code = CAUSE_CODES[cause];
    t.ok(code && code.length === 1, `${cause} has a one-letter code`);
    if (code === '?') continue; // every cause with no verdict of its own shows as unknown
    t.notOk(seen.has(code), `${cause}'s code ${code} is not also ${seen.get(code) ?? 'another cause'}'s`);
    seen.set(code, cause);
    t.match(legend.get(code) ?? '', cause, `the legend explains ${code} as ${cause}`);
  }
});
