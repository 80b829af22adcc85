// classify() row by row of the DESIGN §2 table (verdict, cause, where, facts), describe() from facts alone,
// and properties: classify is total and consistent over random evidence.
import fc from 'fast-check';
import t from 'tap';
import { classify, describe, joinVerdict, type Evidence } from '../../src/verdict.js';
import { CHECK_IDS, NODE_ERROR_KINDS, type PlannedFlow, type SourceOutcome, type WitnessSummary } from '../../src/types.js';
import { loadSchema } from '../../src/report/json.js';
import { CATALOGUE } from '../../src/checks/catalogue.js';

const tcp: PlannedFlow = { check: 'bgp', transport: 'tcp', from: 'node1', to: 'node2', toAddress: '198.18.2.2', port: 179, idx: 7 };
const ipip: PlannedFlow = { check: 'ipip', transport: 'ipip', from: 'node1', to: 'node2', toAddress: '198.18.2.2', port: null, idx: 8 };
const vxlan: PlannedFlow = { check: 'vxlan', transport: 'udp', from: 'node1', to: 'node2', toAddress: '198.18.2.2', port: 4789, idx: 9 };
const vip: PlannedFlow = { check: 'apiserver', transport: 'tcp', from: 'node1', to: 'vip', toAddress: '198.18.0.100', port: 6443, idx: 0, sourceOnly: true };

const src = (o: Partial<SourceOutcome> = {}): SourceOutcome => ({
  idx: 7, toAddress: '198.18.2.2', check: 'bgp', reply: null, replyFrom: null, icmp: null, sendError: null,
  left: true, leftOn: 'eth0', rttMs: null, attempts: 3, srcPort: 61000, ...o,
});
const wit = (o: Partial<WitnessSummary> = {}): WitnessSummary => ({
  idx: 7, interfaceSeen: true, interfaceName: 'eth1', socketSeen: true, observedSource: '198.18.1.2', count: 2, ...o,
});
const ev = (o: Partial<Evidence> = {}): Evidence => ({
  fromAddress: '198.18.1.2', sourceReachable: true, witnessAvailable: true, capture: true, src: src(), wit: undefined, ...o,
});
const pick = (c: ReturnType<typeof classify>) => ({ verdict: c.verdict, cause: c.cause, where: c.where, rejectedBy: c.rejectedBy });

t.test('row: source responder not reachable -> unknown, facts name the responder, its control address and the error kind', async (t) => {
  const c = classify(tcp, ev({ sourceReachable: false, src: undefined, sourceError: { kind: 'refused', message: 'nothing listens on 198.18.1.2:5478', control: '198.18.1.2:5478' } }));
  t.same(pick(c), { verdict: 'unknown', cause: 'responder-unreachable', where: null, rejectedBy: null });
  t.same(c.facts, { responder: 'node1', errorKind: 'refused', error: 'nothing listens on 198.18.1.2:5478', control: '198.18.1.2:5478' });
  t.match(describe(tcp, c), /could not ask node1's responder to send the probe: nothing listens/);
  const bare = classify(tcp, ev({ sourceReachable: false, src: undefined }));
  t.same(bare.facts, { responder: 'node1' });
  t.match(describe(tcp, bare), /is `calico-nettest responder` running on node1/);
  t.equal(classify(tcp, ev({ sourceReachable: false, src: undefined, sourceError: 'x' })).facts.errorKind, 'other', 'a bare string is kind other');
});

t.test('row: send refused (EPERM/EACCES) -> egress-blocked at the source; other errno -> no-route at the source', async (t) => {
  for (const e of ['EPERM', 'EACCES']) {
    const c = classify(ipip, ev({ src: src({ sendError: e, left: false, attempts: 1 }) }));
    t.same(pick(c), { verdict: 'fail', cause: 'egress-blocked', where: 'source', rejectedBy: null });
    t.equal(c.facts.sendError, e);
    t.match(describe(ipip, c), new RegExp(`sending failed with ${e}.*-p 4`));
  }
  const c = classify(tcp, ev({ src: src({ sendError: 'ENETUNREACH' }) }));
  t.same(pick(c), { verdict: 'fail', cause: 'no-route', where: 'source', rejectedBy: null });
  t.match(describe(tcp, c), /ENETUNREACH — check node1's routes to node2 \(ip route get 198\.18\.2\.2\)/);
});

t.test('row: never left -> egress-blocked at the source (a reply overrides the capture)', async (t) => {
  const c = classify(tcp, ev({ src: src({ left: false, leftOn: null }) }));
  t.same(pick(c), { verdict: 'fail', cause: 'egress-blocked', where: 'source', rejectedBy: null });
  t.equal(c.facts.left, false);
  t.match(describe(tcp, c), /never left node1 \(not seen on any interface after 3 tries\).*-p tcp --dport 179/);
  t.equal(classify(tcp, ev({ src: src({ left: false, reply: 'synack' }), wit: wit() })).verdict, 'pass');
});

t.test('row: SYN-ACK -> pass, where null; NAT is a fact and a note', async (t) => {
  const c = classify(tcp, ev({ src: src({ reply: 'synack', replyFrom: '198.18.2.2', attempts: 1 }), wit: wit({ count: 1 }) }));
  t.same(pick(c), { verdict: 'pass', cause: null, where: null, rejectedBy: null });
  t.same(c.facts, { tries: 1, reply: 'synack', left: true, leftOn: 'eth0', capture: true, interfaceSeen: true, arrivedOn: 'eth1', socketSeen: true, got: 1, lost: 0 });
  t.equal(describe(tcp, c), 'handshake answered (SYN-ACK).');
  const nat = classify(tcp, ev({ src: src({ reply: 'synack' }), wit: wit({ observedSource: '198.18.9.9' }) }));
  t.equal(nat.facts.observedSource, '198.18.9.9');
  t.equal(nat.facts.sentFrom, '198.18.1.2');
  t.match(describe(tcp, nat), /NAT in the path: node2 saw the probe coming from 198\.18\.9\.9, not 198\.18\.1\.2/);
});

t.test('row: left, nothing back, not seen -> path-blocked in the path', async (t) => {
  const c = classify(tcp, ev());
  t.same(pick(c), { verdict: 'fail', cause: 'path-blocked', where: 'path', rejectedBy: null });
  t.same(c.facts, { tries: 3, left: true, leftOn: 'eth0', capture: true, interfaceSeen: false, socketSeen: false, got: 0, lost: 3 });
  t.match(describe(tcp, c), /^dropped in the path: it left node1 on eth0 but never arrived at node2 \(3 tries\)/);
  t.match(describe(tcp, classify(tcp, ev({ src: src({ left: null, leftOn: null }) }))), /^dropped in the path: never arrived/);
});

t.test('row: arrived, no socket -> ingress-blocked at the destination', async (t) => {
  const c = classify(ipip, ev({ wit: wit({ socketSeen: false }) }));
  t.same(pick(c), { verdict: 'fail', cause: 'ingress-blocked', where: 'destination', rejectedBy: null });
  t.equal(c.facts.arrivedOn, 'eth1');
  t.match(describe(ipip, c), /dropped by node2's own firewall: arrived on eth1 of node2.*match -p 4/);
});

t.test('row: RST / ICMP not witnessed -> rejected, where from the capture; witnessed -> pass (no listener)', async (t) => {
  const atDest = classify(tcp, ev({ src: src({ reply: 'rst', replyFrom: '198.18.2.2' }), wit: wit({ socketSeen: false }) }));
  t.same(pick(atDest), { verdict: 'fail', cause: 'rejected', where: 'destination', rejectedBy: '198.18.2.2' });
  t.match(describe(tcp, atDest), /by node2's own firewall: it arrived on eth1.*a TCP reset; look for a REJECT rule in node2's INPUT/);
  const router = classify(vxlan, ev({ src: src({ reply: 'icmp', replyFrom: '198.18.1.1', icmp: { type: 3, code: 13 } }) }));
  t.same(pick(router), { verdict: 'fail', cause: 'rejected', where: 'path', rejectedBy: '198.18.1.1' });
  t.same(router.facts.icmp, { type: 3, code: 13 });
  t.match(describe(vxlan, router), /in the path: it never arrived at node2 — 198\.18\.1\.1 answered with ICMP communication administratively prohibited/);
  // No capture: a reset from the destination's own address cannot be placed; one from elsewhere is in the path.
  const blind = classify(tcp, ev({ capture: false, src: src({ reply: 'rst', replyFrom: '198.18.2.2' }) }));
  t.same(pick(blind), { verdict: 'fail', cause: 'rejected', where: null, rejectedBy: '198.18.2.2' });
  t.match(describe(tcp, blind), /before reaching a socket on node2.*\(or a device answering for it\)/);
  t.equal(classify(tcp, ev({ capture: false, src: src({ reply: 'icmp', replyFrom: '198.18.1.1' }) })).where, 'path');
  const closed = classify(vxlan, ev({ src: src({ reply: 'icmp', replyFrom: '198.18.2.2', icmp: { type: 3, code: 3 } }), wit: wit() }));
  t.same(pick(closed), { verdict: 'pass', cause: null, where: null, rejectedBy: null });
  t.match(describe(vxlan, closed), /answered with ICMP port unreachable: no listener on VXLAN \(UDP 4789\)/);
});

t.test('row: TCP witnessed at both layers, nothing back -> return-blocked, where null (OUTPUT or return path)', async (t) => {
  const c = classify(tcp, ev({ wit: wit() }));
  t.same(pick(c), { verdict: 'fail', cause: 'return-blocked', where: null, rejectedBy: null });
  t.match(describe(tcp, c), /match -p tcp --sport 179/);
});

t.test('row: UDP / IP-in-IP witnessed -> pass', async (t) => {
  for (const f of [vxlan, ipip]) {
    const c = classify(f, ev({ wit: wit({ count: 3 }) }));
    t.same(pick(c), { verdict: 'pass', cause: null, where: null, rejectedBy: null });
    t.equal(c.facts.lost, 0);
    t.equal(describe(f, c), 'arrived on eth1 and reached a socket on node2.');
    // Two of three copies witnessed: a pass, the lost copy counted and said.
    const part = classify(f, ev({ wit: wit({ count: 2 }) }));
    t.equal(part.verdict, 'pass');
    t.equal(part.facts.lost, 1);
    t.equal(describe(f, part), 'arrived on eth1 and reached a socket on node2. 1 of 3 tries were lost.');
  }
});

t.test('row: destination responder not reachable -> judged from the source side as far as it can be, the destination named', async (t) => {
  const c = classify(ipip, ev({ witnessAvailable: false, witnessError: { kind: 'timeout', message: 'no answer from 198.18.2.2:5478', control: '198.18.2.2:5478' } }));
  t.same(pick(c), { verdict: 'unknown', cause: 'responder-unreachable', where: null, rejectedBy: null }, 'a datagram gets no answer anyway: nothing to judge');
  t.equal(c.facts.responder, 'node2');
  t.equal(c.facts.errorKind, 'timeout');
  t.equal(c.facts.control, '198.18.2.2:5478');
  t.equal(c.facts.capture, undefined, 'no witness log: nothing known of the destination side');
  t.equal(c.facts.lost, undefined, 'no witness log: the loss of a datagram is not known');
  t.match(describe(ipip, c), /^nothing came back, and node2's responder could not be asked what it saw \(no answer from 198\.18\.2\.2:5478\)/);
  // A reset from the destination: reachable, no listener (a REJECT rule cannot be told from a closed port).
  const rst = classify(tcp, ev({ witnessAvailable: false, src: src({ reply: 'rst', replyFrom: '198.18.2.2' }) }));
  t.same(pick(rst), { verdict: 'pass', cause: null, where: null, rejectedBy: '198.18.2.2' });
  t.equal(rst.facts.responder, 'node2');
  t.match(describe(tcp, rst), /^reset by 198\.18\.2\.2: reachable, no listener \(node2's responder could not be asked/);
  // Its kernel's port unreachable: reachable; another address's ICMP error: rejected in the path.
  const closed = classify(vxlan, ev({ witnessAvailable: false, src: src({ reply: 'icmp', replyFrom: '198.18.2.2', icmp: { type: 3, code: 3 } }) }));
  t.same(pick(closed), { verdict: 'pass', cause: null, where: null, rejectedBy: '198.18.2.2' });
  t.match(describe(vxlan, closed), /^node2's kernel answered with ICMP port unreachable: reachable/);
  const router = classify(vxlan, ev({ witnessAvailable: false, src: src({ reply: 'icmp', replyFrom: '198.18.1.1', icmp: { type: 3, code: 13 } }) }));
  t.same(pick(router), { verdict: 'fail', cause: 'rejected', where: 'path', rejectedBy: '198.18.1.1' });
  t.match(describe(vxlan, router), /^rejected by 198\.18\.1\.1 with ICMP communication administratively prohibited/);
  // TCP silence: blocked, place unknown (no witness log), and the sentence says what would tell.
  const silent = classify(tcp, ev({ witnessAvailable: false }));
  t.same(pick(silent), { verdict: 'fail', cause: 'blocked', where: null, rejectedBy: null });
  t.match(describe(tcp, silent), /not even a reset; node2's responder could not be asked .* Start the responder on node2/);
  t.equal(classify(tcp, ev({ witnessAvailable: false, src: src({ reply: 'synack' }) })).verdict, 'pass');
});

t.test('row: no capture at the destination -> blocked, where null', async (t) => {
  const c = classify(ipip, ev({ capture: false }));
  t.same(pick(c), { verdict: 'fail', cause: 'blocked', where: null, rejectedBy: null });
  t.equal(c.facts.capture, false);
  t.match(describe(ipip, c), /could not capture on its interfaces/);
});

t.test('source-only endpoint: reset passes, ICMP is rejected (placed only when another address sent it), silence is blocked', async (t) => {
  const rst = classify(vip, ev({ src: src({ reply: 'rst', replyFrom: '198.18.0.100' }) }));
  t.same(pick(rst), { verdict: 'pass', cause: null, where: null, rejectedBy: '198.18.0.100' });
  t.match(describe(vip, rst), /^reset by 198\.18\.0\.100: reachable, no listener/);
  const icmp = classify(vip, ev({ src: src({ reply: 'icmp', replyFrom: '198.18.1.1', icmp: { type: 3, code: 13 } }) }));
  t.same(pick(icmp), { verdict: 'fail', cause: 'rejected', where: 'path', rejectedBy: '198.18.1.1' });
  t.equal(describe(vip, icmp), 'rejected by 198.18.1.1 with ICMP communication administratively prohibited.');
  t.equal(classify(vip, ev({ src: src({ reply: 'icmp', replyFrom: '198.18.0.100' }) })).where, null);
  const silent = classify(vip, ev());
  t.same(pick(silent), { verdict: 'fail', cause: 'blocked', where: null, rejectedBy: null });
  t.equal(silent.facts.capture, undefined, 'no witness at an endpoint');
  t.match(describe(vip, silent), /no responder at the endpoint/);
});

t.test('joinVerdict carries where and facts into the result', async (t) => {
  const r = joinVerdict(ipip, src(), wit({ socketSeen: false }), { fromAddress: '198.18.1.2', sourceReachable: true, witnessAvailable: true, capture: true });
  t.equal(r.where, 'destination');
  t.equal(r.facts?.arrivedOn, 'eth1');
  t.equal(r.detail, describe(ipip, classify(ipip, ev({ wit: wit({ socketSeen: false }) }))));
});

t.test('the schema lists every error kind and every where', async (t) => {
  const defs = (loadSchema()['$defs'] as Record<string, { properties: Record<string, { enum?: unknown[] }> }>);
  t.same(defs['facts']!.properties['errorKind']!.enum, [...NODE_ERROR_KINDS]);
  t.same(defs['result']!.properties['where']!.enum, ['source', 'path', 'destination', null]);
});

// ---- properties ------------------------------------------------------------------------------
const addr = fc.constantFrom('198.18.1.2', '198.18.2.2', '198.18.1.1', '198.18.9.9');
const arbSrc = fc.record({
  idx: fc.constant(7),
  toAddress: fc.constant('198.18.2.2'),
  check: fc.constantFrom(...CHECK_IDS),
  reply: fc.constantFrom<SourceOutcome['reply']>('synack', 'rst', 'icmp', null),
  replyFrom: fc.option(addr, { nil: null }),
  icmp: fc.option(fc.record({ type: fc.integer({ min: 0, max: 255 }), code: fc.integer({ min: 0, max: 255 }) }), { nil: null }),
  sendError: fc.constantFrom(null, null, null, 'EPERM', 'EACCES', 'ENETUNREACH', 'EHOSTUNREACH', 'EMSGSIZE'),
  left: fc.constantFrom(true, false, null),
  leftOn: fc.option(fc.constantFrom('eth0', 'veth1'), { nil: null }),
  rttMs: fc.option(fc.double({ min: 0, max: 1000, noNaN: true }), { nil: null }),
  attempts: fc.integer({ min: 0, max: 10 }),
  srcPort: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: null }),
});
const arbWit = fc.record({
  idx: fc.constant(7),
  interfaceSeen: fc.boolean(),
  interfaceName: fc.option(fc.constantFrom('eth0', 'eth1'), { nil: null }),
  socketSeen: fc.boolean(),
  observedSource: fc.option(addr, { nil: null }),
  count: fc.integer({ min: 0, max: 10 }),
});
const arbFlow = fc.record({
  check: fc.constantFrom(...CHECK_IDS),
  sourceOnly: fc.boolean(),
}).map(({ check, sourceOnly }): PlannedFlow => ({
  check,
  transport: CATALOGUE[check].transport,
  from: 'node1',
  to: 'node2',
  toAddress: '198.18.2.2',
  port: CATALOGUE[check].defaultPort,
  idx: 7,
  ...(sourceOnly ? { sourceOnly: true } : {}),
}));
const arbEvidence = fc.record({
  fromAddress: addr,
  sourceReachable: fc.boolean(),
  sourceError: fc.option(fc.record({ kind: fc.constantFrom(...NODE_ERROR_KINDS), message: fc.string() }), { nil: undefined }),
  witnessAvailable: fc.boolean(),
  witnessError: fc.option(fc.record({ kind: fc.constantFrom(...NODE_ERROR_KINDS), message: fc.string() }), { nil: undefined }),
  capture: fc.boolean(),
  src: fc.option(arbSrc, { nil: undefined }),
  wit: fc.option(arbWit, { nil: undefined }),
});

t.test('property: classify is total and consistent', async (t) => {
  fc.assert(
    fc.property(arbFlow, arbEvidence, (flow, e) => {
      const c = classify(flow, e);
      // pass <=> no cause; unknown and pass never blame a place; a place is blamed only by a failure.
      if ((c.verdict === 'pass') !== (c.cause === null)) return false;
      if (c.verdict !== 'fail' && c.where !== null) return false;
      if (c.verdict === 'unknown' && c.cause !== 'responder-unreachable') return false;
      // Causes that cannot be placed from these facts are never placed; single-place causes always are.
      if (['blocked', 'return-blocked', 'responder-unreachable'].includes(c.cause ?? '') && c.where !== null) return false;
      const fixed: Record<string, string> = { 'egress-blocked': 'source', 'no-route': 'source', 'ingress-blocked': 'destination', 'path-blocked': 'path' };
      if (c.cause && fixed[c.cause] && c.where !== fixed[c.cause]) return false;
      // Facts are what was seen: the tries are the source's, a witnessed count only with a witness log.
      if (e.src && e.sourceReachable && c.facts.tries !== e.src.attempts) return false;
      if (c.facts.got !== undefined && (!e.witnessAvailable || flow.sourceOnly)) return false;
      // A rejecting address is always named by the sentence.
      const d = describe(flow, c);
      if (typeof d !== 'string' || d.length === 0) return false;
      if (c.rejectedBy && !d.includes(c.rejectedBy)) return false;
      // describe depends on the facts only: the same classification (a JSON round trip) gives the same words.
      return describe(flow, JSON.parse(JSON.stringify(c))) === d;
    }),
    { numRuns: 5000 },
  );
  t.pass('5000 random flows and evidence');
});

t.test('property: classify leaves its evidence untouched (the coordinator reuses it)', async (t) => {
  fc.assert(
    fc.property(arbFlow, arbEvidence, (flow, e) => {
      const before = JSON.stringify([flow, e]);
      classify(flow, e);
      return JSON.stringify([flow, e]) === before;
    }),
    { numRuns: 500 },
  );
  t.pass('500 random flows and evidence');
});
