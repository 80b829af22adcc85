// Evidence under load (issue 12): when a responder on the flow shed or lost packets (a flood shaped like probes),
// a failure that rests on something not being seen becomes unknown/overloaded; passes and refused sends stand.
import t from 'tap';
import { classify, describe, type Evidence } from '../../src/verdict.js';
import type { PlannedFlow, SourceOutcome, WitnessSummary } from '../../src/types.js';

const ipip: PlannedFlow = { check: 'ipip', transport: 'ipip', from: 'node2', to: 'node3', toAddress: '198.18.3.2', port: null, idx: 4 };
const bgp: PlannedFlow = { check: 'bgp', transport: 'tcp', from: 'node1', to: 'node2', toAddress: '198.18.2.2', port: 179, idx: 7 };
const src = (o: Partial<SourceOutcome> = {}): SourceOutcome => ({
  idx: 4, toAddress: '198.18.3.2', check: 'ipip', reply: null, replyFrom: null, icmp: null, sendError: null,
  left: true, leftOn: 'eth0', rttMs: null, attempts: 3, srcPort: null, ...o,
});
const wit = (o: Partial<WitnessSummary> = {}): WitnessSummary => ({ idx: 4, interfaceSeen: true, interfaceName: 'eth0', socketSeen: true, observedSource: '198.18.2.2', count: 3, ...o });
const ev = (o: Partial<Evidence> = {}): Evidence => ({ fromAddress: '198.18.2.2', sourceReachable: true, witnessAvailable: true, capture: true, src: src(), wit: undefined, ...o });

t.test('a failure from absence under load is unknown/overloaded, with the counts as facts', async (t) => {
  const cases: Array<[string, Partial<Evidence>]> = [
    ['path-blocked', {}],
    ['ingress-blocked', { wit: wit({ socketSeen: false }) }],
    ['egress-blocked (never seen leaving)', { src: src({ left: false }) }],
    ['rejected', { src: src({ reply: 'icmp', replyFrom: '198.18.0.1', icmp: { type: 3, code: 13 } }) }],
  ];
  for (const [name, o] of cases) {
    const plain = classify(ipip, ev(o));
    t.equal(plain.verdict, 'fail', `${name}: a failure without load`);
    const loaded = classify(ipip, ev({ ...o, destinationShed: 1200, sourceShed: 3, destinationForged: 40 }));
    t.match(loaded, { verdict: 'unknown', cause: 'overloaded', where: null, rejectedBy: null }, `${name}: unknown under load`);
    t.equal(loaded.facts.shed, 1203);
    t.equal(loaded.facts.forged, 40);
    t.match(describe(ipip, loaded), /cannot tell: the responders of node2 and node3 shed or lost 1203 packets under load.*40 forged probes/);
  }
  const rb = classify(bgp, ev({ src: src({ check: 'bgp', idx: 7 }), wit: wit({ idx: 7 }), sourceShed: 1 }));
  t.equal(rb.cause, 'overloaded', 'return-blocked too: the reply may have been the one lost');
});

t.test('passes and refused sends stand under load; counts are facts there too', async (t) => {
  const pass = classify(ipip, ev({ wit: wit(), destinationShed: 5, destinationForged: 2 }));
  t.match(pass, { verdict: 'pass', cause: null });
  t.same([pass.facts.shed, pass.facts.forged], [5, 2]);
  const eperm = classify(ipip, ev({ src: src({ sendError: 'EPERM', left: false }), sourceShed: 9 }));
  t.match(eperm, { verdict: 'fail', cause: 'egress-blocked', where: 'source' }, 'the kernel refused the send: no load explains that');
  const synack = classify(bgp, ev({ src: src({ check: 'bgp', idx: 7, reply: 'synack' }), destinationShed: 9 }));
  t.equal(synack.verdict, 'pass');
  t.equal(classify(ipip, ev({ destinationForged: 3 })).verdict, 'fail', 'forged probes alone change no verdict (a 48-bit proof is not guessed)');
  t.equal(classify(ipip, ev({})).facts.shed, undefined, 'no load, no fact');
});
