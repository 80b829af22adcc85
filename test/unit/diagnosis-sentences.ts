import t from 'tap';
import fc from 'fast-check';
import { diagnose, membersOf } from '../../src/report/diagnosis.js';
import { buildCandidates, Kind } from '../../src/report/diagnosis/candidates.js';
import { indexResults } from '../../src/report/diagnosis/results.js';
import { SENTENCES, statement } from '../../src/report/diagnosis/sentences.js';
import type { FlowResult } from '../../src/types.js';
import { fail, mesh, unknown } from '../helpers/report-fixtures.js';

const WHERE: Record<Kind, string> = {
  [Kind.IngressNode]: 'destination',
  [Kind.EgressNode]: 'source',
  [Kind.Ingress]: 'destination',
  [Kind.Egress]: 'source',
  [Kind.Return]: 'return-path',
  [Kind.Rejected]: 'path',
  [Kind.PathTo]: 'path',
  [Kind.PathSubnets]: 'path',
  [Kind.PathFrom]: 'path',
  [Kind.NoRoute]: 'source',
  [Kind.Responder]: 'responder',
  [Kind.Other]: 'unknown',
};

t.test('every kind has a sentence, placed where its kind says, naming its traffic or node', async (t) => {
  const r = mesh(4, {
    fault: (c, f, to) => {
      if (to === 'node1') return fail('ingress-blocked');
      if (f === 'node2' && to !== 'node1') return fail('egress-blocked');
      if (c === 'bgp' && to === 'node3') return fail('return-blocked');
      if (c === 'vxlan' && to === 'node3') return fail('rejected', { rejectedBy: '198.18.99.1' });
      if (c === 'ipip' && f === 'node3' && to === 'node4') return fail('path-blocked');
      if (c === 'vxlan' && f === 'node4') return fail('no-route');
      if (c === 'ipip' && f === 'node4') return unknown({ facts: { responder: 'node4', control: '198.18.4.1:5478' } });
      if (c === 'bgp' && f === 'node4') return fail(null, { detail: 'odd' });
      return undefined;
    },
  });
  const x = indexResults(r);
  const c = buildCandidates(x);
  const seen = new Set<Kind>();
  for (const g of c.groups) {
    const st = statement(g, x, c);
    seen.add(g.kind);
    t.equal(st.where, WHERE[g.kind], Kind[g.kind]);
    t.equal(st.flows, g.members.length);
    t.ok(st.text.length > 0 && st.advice.length > 0);
    t.ok(st.examples.length === Math.min(3, g.members.length));
  }
  for (const k of Object.values(Kind).filter((v): v is Kind => typeof v === 'number')) t.type(SENTENCES[k], 'function', `a sentence for ${Kind[k]}`);
  t.ok(seen.size >= 10, `most kinds were written (${[...seen].map((k) => Kind[k]).join(', ')})`);
});

t.test('the responder statement reads the control address from facts, not from detail', async (t) => {
  const r = mesh(3, { fault: (_c, f, to) => (to === 'node3' || f === 'node3' ? unknown({ detail: 'no responder on node3 for this run: ssh failed', facts: { responder: 'node3', control: '198.18.3.1:5478' } }) : undefined) });
  const d = diagnose(r);
  t.equal(d.length, 1);
  t.equal(d[0]!.text, 'node3: responder not reachable at 198.18.3.1:5478 (12 flows unknown)');
  for (const x of r.results) if (x.verdict !== 'pass') x.detail = 'could not reach responder node3 at 10.0.0.1:1';
  t.equal(diagnose(r)[0]!.text, d[0]!.text, 'a different detail changes nothing');
});

const causes: Partial<FlowResult>[] = [
  fail('ingress-blocked'),
  fail('egress-blocked'),
  fail('path-blocked'),
  fail('blocked'),
  fail('rejected', { rejectedBy: '198.18.3.1' }),
  fail('return-blocked'),
  fail('no-route'),
  unknown(),
  unknown({ cause: 'receive-error' }),
];

// A statement names its whole group, so a flow two chosen places could both explain (node2's path out, and
// node1's path in) is counted in both: every failing flow is explained, none that passed is.
t.test('every failing flow is explained by a statement, and only failing flows are', async (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 7 }),
      fc.array(fc.tuple(fc.nat(causes.length - 1), fc.nat(6), fc.boolean()), { maxLength: 6 }),
      (n, faults) => {
        const r = mesh(n, {
          fault: (_c, f, to) => {
            for (const [k, node, inbound] of faults) if ((inbound ? to : f) === `node${node + 1}`) return causes[k];
            return undefined;
          },
        });
        const d = diagnose(r);
        const members = new Set(d.flatMap((s) => [...membersOf(s)!]));
        const failing = r.results.flatMap((x, i) => (x.verdict === 'pass' ? [] : [i]));
        return members.size === failing.length && failing.every((i) => members.has(i)) && d.every((s) => s.flows === membersOf(s)!.length);
      },
    ),
    { numRuns: 300 },
  );
});

t.test('statements read back from JSON have no members', async (t) => {
  const d = diagnose(mesh(3, { fault: (_c, _f, to) => (to === 'node2' ? fail('ingress-blocked') : undefined) }));
  t.ok(membersOf(d[0]!));
  t.equal(membersOf(JSON.parse(JSON.stringify(d[0]))), undefined);
});
