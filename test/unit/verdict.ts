// The verdict join, row by row of the DESIGN §2 table, plus the source-only, NAT and no-capture cases.
import t from 'tap';
import { joinVerdict, type JoinContext } from '../../src/verdict.js';
import type { PlannedFlow, SourceOutcome, WitnessSummary } from '../../src/types.js';

const tcpFlow: PlannedFlow = { check: 'bgp', transport: 'tcp', from: 'node1', to: 'node2', toAddress: '198.18.2.2', port: 179, idx: 7 };
const ipipFlow: PlannedFlow = { check: 'ipip', transport: 'ipip', from: 'node1', to: 'node2', toAddress: '198.18.2.2', port: null, idx: 8 };
const vxlanFlow: PlannedFlow = { check: 'vxlan', transport: 'udp', from: 'node1', to: 'node2', toAddress: '198.18.2.2', port: 4789, idx: 9 };

const src = (o: Partial<SourceOutcome> = {}): SourceOutcome => ({
  idx: 7,
  toAddress: '198.18.2.2',
  check: 'bgp',
  reply: null,
  replyFrom: null,
  icmp: null,
  sendError: null,
  left: true,
  leftOn: 'eth0',
  rttMs: null,
  attempts: 3,
  srcPort: 61000,
  ...o,
});
const wit = (o: Partial<WitnessSummary> = {}): WitnessSummary => ({
  idx: 7,
  interfaceSeen: true,
  interfaceName: 'eth0',
  socketSeen: true,
  observedSource: '198.18.1.2',
  count: 1,
  ...o,
});
const ctx = (o: Partial<JoinContext> = {}): JoinContext => ({ fromAddress: '198.18.1.2', sourceReachable: true, witnessAvailable: true, capture: true, ...o });

t.test('reply (SYN-ACK), witnessed at both layers -> pass', async (t) => {
  const r = joinVerdict(tcpFlow, src({ reply: 'synack', replyFrom: '198.18.2.2', rttMs: 0.4, attempts: 1 }), wit(), ctx());
  t.equal(r.verdict, 'pass');
  t.equal(r.cause, null);
  t.equal(r.rttMs, 0.4);
  t.equal(r.attempts, 1);
  t.equal(r.observedSource, '198.18.1.2');
  t.match(r.detail, /SYN-ACK/);
  t.notMatch(r.detail, /NAT/);
});

t.test('RST from the destination that reached a socket -> pass, no listener', async (t) => {
  const r = joinVerdict(tcpFlow, src({ reply: 'rst', replyFrom: '198.18.2.2', rttMs: 0.3 }), wit(), ctx());
  t.equal(r.verdict, 'pass');
  t.match(r.detail, /no listener/);
});

t.test('send refused (EPERM) -> egress-blocked', async (t) => {
  const r = joinVerdict(ipipFlow, src({ sendError: 'EPERM', left: false, attempts: 1 }), undefined, ctx());
  t.equal(r.verdict, 'fail');
  t.equal(r.cause, 'egress-blocked');
  t.match(r.detail, /node1's own firewall/);
  t.match(r.detail, /OUTPUT/);
});

t.test('never left (TCP SYN dropped in OUTPUT silently) -> egress-blocked', async (t) => {
  const r = joinVerdict(tcpFlow, src({ left: false }), undefined, ctx());
  t.equal(r.cause, 'egress-blocked');
  t.match(r.detail, /never left node1/);
});

t.test('a reply overrides a capture that missed the probe leaving', async (t) => {
  t.equal(joinVerdict(tcpFlow, src({ left: false, reply: 'synack' }), wit(), ctx()).verdict, 'pass');
});

t.test('left, nothing back, not seen anywhere -> path-blocked', async (t) => {
  const r = joinVerdict(tcpFlow, src(), undefined, ctx());
  t.equal(r.verdict, 'fail');
  t.equal(r.cause, 'path-blocked');
  t.match(r.detail, /between node1 and node2/);
});

t.test('left, nothing back, arrived but no socket -> ingress-blocked', async (t) => {
  const r = joinVerdict(ipipFlow, src({ check: 'ipip', idx: 8 }), wit({ idx: 8, socketSeen: false }), ctx());
  t.equal(r.cause, 'ingress-blocked');
  t.match(r.detail, /dropped by node2's own firewall: arrived on eth0/);
  t.match(r.detail, /IP protocol 4/);
});

t.test('RST not witnessed at a socket -> rejected, with rejectedBy', async (t) => {
  const r = joinVerdict(tcpFlow, src({ reply: 'rst', replyFrom: '198.18.2.2' }), wit({ socketSeen: false }), ctx());
  t.equal(r.verdict, 'fail');
  t.equal(r.cause, 'rejected');
  t.equal(r.rejectedBy, '198.18.2.2');
  t.match(r.detail, /node2's own firewall/);
});

t.test('ICMP admin-prohibited from the router, never arrived -> rejected by the router', async (t) => {
  const r = joinVerdict(vxlanFlow, src({ check: 'vxlan', idx: 9, reply: 'icmp', replyFrom: '198.18.1.1', icmp: { type: 3, code: 13 } }), undefined, ctx());
  t.equal(r.cause, 'rejected');
  t.equal(r.rejectedBy, '198.18.1.1');
  t.match(r.detail, /in the path/);
  t.match(r.detail, /administratively prohibited/);
});

t.test('TCP: witnessed at both layers but nothing came back -> return-blocked', async (t) => {
  const r = joinVerdict(tcpFlow, src(), wit(), ctx());
  t.equal(r.cause, 'return-blocked');
  t.match(r.detail, /--sport 179/);
});

t.test('UDP / IP-in-IP witnessed at both layers -> pass', async (t) => {
  t.equal(joinVerdict(vxlanFlow, src({ check: 'vxlan' }), wit(), ctx()).verdict, 'pass');
  t.equal(joinVerdict(ipipFlow, src({ check: 'ipip' }), wit(), ctx()).verdict, 'pass');
});

t.test('UDP ICMP port-unreachable after reaching a socket -> pass (no listener)', async (t) => {
  const r = joinVerdict(vxlanFlow, src({ reply: 'icmp', replyFrom: '198.18.2.2', icmp: { type: 3, code: 3 } }), wit(), ctx());
  t.equal(r.verdict, 'pass');
});

t.test('destination responder unreachable -> unknown / responder-unreachable', async (t) => {
  const r = joinVerdict(ipipFlow, src(), undefined, ctx({ witnessAvailable: false, witnessError: 'nothing listens on 198.18.2.2:5478' }));
  t.equal(r.verdict, 'unknown');
  t.equal(r.cause, 'responder-unreachable');
  t.match(r.detail, /198\.18\.2\.2:5478/);
});

t.test('destination unreachable does not hide a SYN-ACK: pass', async (t) => {
  const r = joinVerdict(tcpFlow, src({ reply: 'synack' }), undefined, ctx({ witnessAvailable: false }));
  t.equal(r.verdict, 'pass');
});

t.test('source responder unreachable -> unknown', async (t) => {
  const r = joinVerdict(tcpFlow, undefined, undefined, ctx({ sourceReachable: false, sourceError: 'refused our credentials' }));
  t.equal(r.verdict, 'unknown');
  t.equal(r.cause, 'responder-unreachable');
  t.equal(r.attempts, 0);
  t.match(r.detail, /credentials/);
});

t.test('no capture at the destination: path and ingress collapse into blocked', async (t) => {
  const r = joinVerdict(ipipFlow, src(), undefined, ctx({ capture: false }));
  t.equal(r.cause, 'blocked');
  const r2 = joinVerdict(ipipFlow, src(), wit({ interfaceSeen: false, socketSeen: false }), ctx({ capture: false }));
  t.equal(r2.cause, 'blocked');
});

t.test('NAT in the path is reported on a pass', async (t) => {
  const r = joinVerdict(ipipFlow, src(), wit({ observedSource: '198.18.9.9' }), ctx());
  t.equal(r.verdict, 'pass');
  t.equal(r.observedSource, '198.18.9.9');
  t.match(r.detail, /NAT in the path/);
});

t.test('other send errors are not blamed on a firewall', async (t) => {
  const r = joinVerdict(tcpFlow, src({ sendError: 'ENETUNREACH' }), undefined, ctx());
  t.equal(r.cause, 'no-route');
});

t.test('source-only endpoint (apiserver VIP)', async (t) => {
  const ep: PlannedFlow = { check: 'apiserver', transport: 'tcp', from: 'node1', to: 'vip', toAddress: '198.18.0.100', port: 6443, idx: 0, sourceOnly: true };
  t.equal(joinVerdict(ep, src({ reply: 'synack' }), undefined, ctx()).verdict, 'pass');
  const silent = joinVerdict(ep, src(), undefined, ctx());
  t.equal(silent.cause, 'blocked');
  t.equal(silent.sourceOnly, true);
  t.equal(joinVerdict(ep, src({ reply: 'icmp', replyFrom: '198.18.1.1', icmp: { type: 3, code: 13 } }), undefined, ctx()).cause, 'rejected');
  t.equal(joinVerdict(ep, src({ left: false }), undefined, ctx()).cause, 'egress-blocked');
});
