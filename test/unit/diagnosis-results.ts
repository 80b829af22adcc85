import t from 'tap';
import fc from 'fast-check';
import { indexResults, slot, STRIDE, subnetOf } from '../../src/report/diagnosis/results.js';
import type { CheckId, FlowResult } from '../../src/types.js';
import { mesh } from '../helpers/report-fixtures.js';

const verdicts: FlowResult['verdict'][] = ['pass', 'fail', 'unknown'];

t.test('counters and failures equal a plain count over the results', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 2, max: 7 }), fc.array(fc.nat(2), { minLength: 200, maxLength: 200 }), (n, vs) => {
      let k = 0;
      const r = mesh(n, { checks: ['bgp', 'vxlan'], fault: () => ({ verdict: verdicts[vs[k++ % vs.length]!]! }) });
      const x = indexResults(r);
      for (let ni = 0; ni < x.names.length; ni++) {
        for (let ci = 0; ci < x.checks.length; ci++) {
          const to = r.results.filter((f) => f.to === x.names[ni] && f.check === x.checks[ci]);
          const from = r.results.filter((f) => f.from === x.names[ni] && f.check === x.checks[ci]);
          if (x.plannedTo[slot(ni, ci)] !== to.length || x.plannedFrom[slot(ni, ci)] !== from.length) return false;
          if (x.unknownTo[slot(ni, ci)] !== to.filter((f) => f.verdict === 'unknown').length) return false;
          if (x.unknownFrom[slot(ni, ci)] !== from.filter((f) => f.verdict === 'unknown').length) return false;
        }
      }
      const failing = r.results.flatMap((f, i) => (f.verdict === 'pass' ? [] : [i]));
      if (JSON.stringify(x.fRes) !== JSON.stringify(failing)) return false;
      return x.fRes.every((ri, m) => x.names[x.fFrom[m]!] === r.results[ri]!.from && x.names[x.fTo[m]!] === r.results[ri]!.to && x.checks[x.fCheck[m]!] === r.results[ri]!.check);
    }),
    { numRuns: 200 },
  );
});

t.test('report nodes first, then names only results hold; /24s counted over report nodes only', async (t) => {
  const r = mesh(3, { address: (i) => `198.18.0.${i}`, checks: ['bgp'] });
  r.results.push({ ...r.results[0]!, from: 'stranger', to: 'endpoint', toAddress: '198.18.9.9' });
  r.nodes.push({ name: 'node1', address: '198.18.7.7' }); // a repeated name is ignored
  const x = indexResults(r);
  t.same(x.names, ['node1', 'node2', 'node3', 'stranger', 'endpoint']);
  t.equal(x.nodeCount, 3);
  t.same(x.addrOf.slice(3), ['', '198.18.9.9']);
  t.same(x.subnets, ['198.18.0.0/24', 'unknown', '198.18.9.0/24']);
  t.same(x.subnetNodeCount, [3, 0, 0]);
  t.equal(x.addrToNode.get('198.18.0.2'), 1);
  t.equal(x.addrToNode.has('198.18.7.7'), false);
});

t.test('check ids the catalogue lacks get their own slots, all past the last one share it', async (t) => {
  const r = mesh(2, { checks: ['bgp'] });
  const base = r.results[0]!;
  const known = indexResults(r).checks.length;
  for (let i = 0; i < STRIDE + 3; i++) r.results.push({ ...base, check: `x${i}` as CheckId });
  const x = indexResults(r);
  t.equal(x.checks.length, STRIDE);
  t.equal(x.checks[known], 'x0');
  t.equal(x.plannedFrom[slot(0, STRIDE - 1)], STRIDE + 3 - (STRIDE - 1 - known), 'the overflow shares the last slot');
});

t.test('subnetOf', async (t) => {
  t.equal(subnetOf('198.18.3.7'), '198.18.3.0/24');
  t.equal(subnetOf(''), 'unknown');
  t.equal(subnetOf('fd00::1'), 'fd00::1');
  t.equal(subnetOf('host.example'), 'host.example');
});
