import t from 'tap';
import fc from 'fast-check';
import { buildCandidates, FLOW_BUILDERS, Kind, mergeAlike, SCOPE, tieBefore, wholeNodeGroups, type Group } from '../../src/report/diagnosis/candidates.js';
import { indexResults } from '../../src/report/diagnosis/results.js';
import type { FlowResult } from '../../src/types.js';
import { fail, mesh, unknown } from '../helpers/report-fixtures.js';

/** The candidates of a 4-node mesh where only node1 -> node2 (bgp) fails as given. */
function one(f: Partial<FlowResult>) {
  const r = mesh(4, { checks: ['bgp'], address: (i) => `198.18.${i <= 2 ? 1 : 2}.${i}`, fault: (_c, from, to) => (from === 'node1' && to === 'node2' ? f : undefined) });
  const x = indexResults(r);
  return { x, c: buildCandidates(x) };
}
const kinds = (gs: Group[]) => gs.map((g) => Kind[g.kind]);

t.test('each cause joins the groups of its statement kinds, in order', async (t) => {
  const cases: Array<[Partial<FlowResult>, string[]]> = [
    [fail('ingress-blocked'), ['Ingress']],
    [fail('egress-blocked'), ['Egress']],
    [fail('path-blocked'), ['PathTo', 'PathSubnets', 'PathFrom']],
    [fail('blocked'), ['PathTo', 'PathSubnets', 'PathFrom']],
    [fail('rejected', { rejectedBy: '198.18.1.2' }), ['Rejected']],
    [fail('return-blocked'), ['Return']],
    [fail('no-route'), ['NoRoute']],
    [unknown(), ['Responder', 'Responder']],
    [unknown({ cause: 'receive-error' }), ['Other']],
    [fail(null), ['Other']],
    [{ verdict: 'unknown', cause: 'ingress-blocked' }, ['Other']], // a cause with the wrong verdict is not a firewall
  ];
  for (const [f, want] of cases) {
    const { x, c } = one(f);
    t.same(kinds(c.groups), want, `${f.verdict} ${f.cause}`);
    t.ok(c.groups.every((g) => g.members.length === 1 && g.members[0] === 0), 'the one failure is the member');
    if (want[0] === 'Ingress' || want[0] === 'Return') t.equal(x.names[c.groups[0]!.a], 'node2', 'grouped by receiver');
    if (want[0] === 'Egress' || want[0] === 'NoRoute') t.equal(x.names[c.groups[0]!.a], 'node1', 'grouped by sender');
    if (want[0] === 'Responder') t.same(c.groups.map((g) => x.names[g.a]), ['node1', 'node2'], 'either end');
    if (want[1] === 'PathSubnets') t.same([x.subnets[c.groups[1]!.a], x.subnets[c.groups[1]!.b]], ['198.18.1.0/24', '198.18.1.0/24']);
    if (want[0] === 'Rejected') t.equal(c.addrs[c.groups[0]!.a], '198.18.1.2');
    if (want[0] === 'Other') t.equal(c.causes[c.groups[0]!.a], `${f.verdict}\u0000${f.cause ?? ''}`);
  }
  t.ok(FLOW_BUILDERS.every((b) => b.causes.length > 0), 'every builder groups some cause');
});

t.test('scope: the flows the place could affect', async (t) => {
  const { c } = one(fail('path-blocked'));
  const [to, subnets, from] = c.groups;
  t.equal(to!.scope, 3, 'three senders could reach node2 with bgp');
  t.equal(from!.scope, 3);
  t.equal(subnets!.scope, 2 * 2 - 2, 'a /24 of two nodes to itself: two pairs');
  t.equal(one(unknown()).c.groups[0]!.scope, 6, 'a responder: every flow from and to its node');
  t.equal(one(fail('no-route')).c.groups[0]!.scope, 1, 'others: their own size');
  for (const k of Object.values(Kind).filter((v): v is Kind => typeof v === 'number')) t.type(SCOPE[k], 'function', `scope of ${Kind[k]}`);
});

t.test('whole-node groups: two or more checks dropped from every other node (unknowns count as dropped)', async (t) => {
  const r = mesh(4, {
    fault: (c, f, to) => {
      if (to === 'node2' && c !== 'vxlan') return f === 'node4' && c === 'bgp' ? unknown() : fail('ingress-blocked');
      if (to === 'node3' && c === 'bgp') return fail('ingress-blocked'); // one check only: no merge
      if (f === 'node4' && c === 'bgp' && to === 'node1') return fail('egress-blocked'); // not every node
      return undefined;
    },
  });
  const x = indexResults(r);
  const c = buildCandidates(x);
  const merged = c.groups.filter((g) => g.kind === Kind.IngressNode || g.kind === Kind.EgressNode);
  t.equal(merged.length, 1);
  t.equal(x.names[merged[0]!.a], 'node2');
  t.same(merged[0]!.checks!.map((i) => x.checks[i]), ['bgp', 'ipip']);
  t.equal(merged[0]!.members.length, 5);
  t.equal(merged[0]!.ordinal, c.groups.length - 1, 'made after the groups it merges');
  const two = indexResults(mesh(2, { fault: () => fail('ingress-blocked') }));
  t.same(wholeNodeGroups(buildCandidates(two).groups, two), [], 'two nodes: the per-check groups already say it');
});

t.test('tie order is a strict total order: scope, then kind, then creation', async (t) => {
  const g = (scope: number, kind: Kind, ordinal: number): Group => ({ kind, check: 0, a: 0, b: 0, members: [], scope, ordinal });
  t.ok(tieBefore(g(1, Kind.Other, 9), g(2, Kind.Ingress, 0)));
  t.ok(tieBefore(g(2, Kind.Ingress, 9), g(2, Kind.Egress, 0)));
  t.ok(tieBefore(g(2, Kind.Ingress, 0), g(2, Kind.Ingress, 1)));
  fc.assert(
    fc.property(fc.nat(3), fc.nat(11), fc.nat(3), fc.nat(3), fc.nat(11), fc.nat(3), (s1, k1, o1, s2, k2, o2) => {
      const a = g(s1, k1, o1);
      const b = g(s2, k2, o2);
      const same = s1 === s2 && k1 === k2 && o1 === o2;
      return same ? !tieBefore(a, b) && !tieBefore(b, a) : tieBefore(a, b) !== tieBefore(b, a);
    }),
  );
});

t.test('mergeAlike: path groups of one check with the same far ends become one; others pass through', async (t) => {
  // node1..node3 each lose vxlan to node4..node6: three PathFrom groups, far ends {4,5,6}
  const zone = (n: string) => Number(n.slice(4)) <= 3;
  const r = mesh(6, { checks: ['vxlan'], fault: (_c, f, to) => (zone(f) && !zone(to) ? fail('path-blocked') : undefined) });
  const x = indexResults(r);
  const c = buildCandidates(x);
  const from = c.groups.filter((g) => g.kind === Kind.PathFrom);
  const other = c.groups.find((g) => g.kind === Kind.PathSubnets)!;
  const out = mergeAlike([...from, other], x);
  t.equal(out.length, 2);
  t.same(out[0]!.nodes!.map((i) => x.names[i]), ['node1', 'node2', 'node3']);
  t.equal(out[0]!.members.length, 9);
  t.equal(from[0]!.members.length, 3, 'the chosen group itself is not changed');
  t.equal(out[1], other);
  // different far ends: kept apart
  const apart = mergeAlike([from[0]!, { ...from[1]!, members: from[1]!.members.slice(0, 1) }], x);
  t.equal(apart.length, 2);
});

t.test('every failure joins at least one group (so the cover explains them all)', async (t) => {
  const all: Partial<FlowResult>[] = [fail('ingress-blocked'), fail('egress-blocked'), fail('path-blocked'), fail('blocked'), fail('rejected'), fail('return-blocked'), fail('no-route'), unknown(), unknown({ cause: 'not-probed' }), fail(null)];
  fc.assert(
    fc.property(fc.array(fc.nat(all.length), { minLength: 36, maxLength: 36 }), (pick) => {
      let k = 0;
      const r = mesh(4, { fault: () => all[pick[k++]!] });
      const x = indexResults(r);
      const seen = new Set(buildCandidates(x).groups.flatMap((g) => g.members));
      return seen.size === x.fRes.length;
    }),
  );
});
