// The destination's kernel facts as the coordinator reads them (src/kernel/facts.ts): the drop watch's drops
// parsed strictly (an older responder sends none: still fine), each flow's drop found by sender, receiver,
// protocol and port, and joinAll handing each flow its reason.
import t from 'tap';
import { flowDrop, parseDestKernelFacts, type KernelDrop } from '../../src/kernel/facts.js';
import { joinAll, type NodeEvidence } from '../../src/coordinator/run.js';
import { OutcomeTable } from '../../src/coordinator/outcomes.js';
import type { PlannedFlow, SourceOutcome } from '../../src/types.js';

const base = { reversePath: [], rpFilterDrops: null, conntrack: { available: true, error: null, preexisting: [] } };
const drop = (o: Partial<KernelDrop> = {}): KernelDrop => ({ source: '198.18.1.2', destination: '198.18.2.2', proto: 6, sport: 40000, dport: 179, reason: 'NETFILTER_DROP', count: 3, ...o });

t.test('parse: drops kept when well formed, dropped entry by entry when not; absent from an older responder', async (t) => {
  t.equal(parseDestKernelFacts(base)?.drops, undefined, 'an older responder: no drops field');
  const good = drop();
  const parsed = parseDestKernelFacts({
    ...base,
    drops: [good, { ...good, source: '1.2.3' }, { ...good, proto: 300 }, { ...good, reason: 'lower case' }, { ...good, count: -1 }, null, 'x', { ...good, dport: 1.5 }],
  });
  t.same(parsed?.drops, [good]);
  t.same(parseDestKernelFacts({ ...base, drops: 'nope' })?.drops, undefined);
  t.equal(parseDestKernelFacts({ ...base, drops: Array.from({ length: 10_000 }, () => good) })?.drops?.length, 4096, 'bounded');
});

t.test('flowDrop: TCP and UDP by the flow port as destination port, IP-in-IP by protocol 4 alone; the most counted when several', async (t) => {
  const drops = [drop(), drop({ sport: 41000, count: 9, reason: 'NOT_SPECIFIED' }), drop({ proto: 17, dport: 4789, reason: 'IP_RPFILTER' }), drop({ proto: 4, sport: 0, dport: 0, reason: 'IP_NOPROTO' })];
  t.equal(flowDrop(drops, '198.18.1.2', '198.18.2.2', 'tcp', 179)?.reason, 'NOT_SPECIFIED');
  t.equal(flowDrop(drops, '198.18.1.2', '198.18.2.2', 'udp', 4789)?.reason, 'IP_RPFILTER');
  t.equal(flowDrop(drops, '198.18.1.2', '198.18.2.2', 'ipip', null)?.reason, 'IP_NOPROTO');
  t.equal(flowDrop(drops, '198.18.1.2', '198.18.2.2', 'tcp', 5473), undefined, 'another port');
  t.equal(flowDrop(drops, '198.18.3.2', '198.18.2.2', 'tcp', 179), undefined, 'another sender');
  t.equal(flowDrop(drops, '198.18.1.2', '198.18.2.9', 'tcp', 179), undefined, 'another receiver address');
  t.equal(flowDrop(undefined, '198.18.1.2', '198.18.2.2', 'tcp', 179), undefined);
});

t.test("joinAll: each flow gets its destination's recorded reason; the reason turns a table firewall cause into kernel-drop", async (t) => {
  const flows: PlannedFlow[] = [
    { check: 'bgp', transport: 'tcp', from: 'node1', to: 'node2', toAddress: '198.18.2.2', port: 179, idx: 0 },
    { check: 'ipip', transport: 'ipip', from: 'node1', to: 'node2', toAddress: '198.18.2.2', port: null, idx: 1 },
    { check: 'typha', transport: 'tcp', from: 'node1', to: 'node2', toAddress: '198.18.2.2', port: 5473, idx: 2 },
  ];
  const outcomes = new OutcomeTable(flows.length, (i) => flows[i]!);
  flows.forEach((f, i) =>
    outcomes.set(i, { idx: f.idx, toAddress: f.toAddress, check: f.check, reply: null, replyFrom: null, icmp: null, sendError: null, left: true, leftOn: 'eth0', rttMs: null, attempts: 3, srcPort: 40000 } as SourceOutcome),
  );
  const witness = { forFlow: (f: PlannedFlow) => ({ idx: f.idx, interfaceSeen: true, interfaceName: 'eth0', socketSeen: false, observedSource: '198.18.1.2', count: 3, from: '198.18.1.2', check: f.check, port: f.port }) };
  const node2: NodeEvidence = { reachable: true, capture: true, witness, kernel: { ...base, drops: [drop(), drop({ proto: 4, sport: 0, dport: 0, reason: 'NOT_SPECIFIED' })] } };
  const node1: NodeEvidence = { reachable: true, capture: true, witness: null };
  const plan = { length: flows.length, get: (i: number) => flows[i]! };
  const results = joinAll(plan, new Map([['node1', '198.18.1.2'], ['node2', '198.18.2.2']]), outcomes, new Map([['node1', node1], ['node2', node2]]), { skipUnprobed: false });
  t.same(results.map((r) => [r.check, r.cause, r.dropReason]), [
    ['bgp', 'ingress-blocked', 'NETFILTER_DROP'],
    ['ipip', 'kernel-drop', 'NOT_SPECIFIED'],
    ['typha', 'ingress-blocked', null],
  ], 'typha: no drop recorded for its port, so no reason (null on a failure)');
  const older = joinAll(plan, new Map([['node1', '198.18.1.2'], ['node2', '198.18.2.2']]), outcomes, new Map([['node1', node1], ['node2', { ...node2, kernel: { ...base, dropReasonUnavailable: 'no BTF' } }]]), { skipUnprobed: false });
  t.same(older.map((r) => [r.cause, r.facts?.dropReasonUnavailable]), [['ingress-blocked', 'no BTF'], ['ingress-blocked', 'no BTF'], ['ingress-blocked', 'no BTF']]);
});
