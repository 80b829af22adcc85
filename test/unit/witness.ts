// classifyProbe: a genuine probe of a live session proves exactly one flow (TCP by the 48-bit tag in the ISN
// and timestamp, UDP/VXLAN and IP-in-IP by the signed payload), checked against the flow the session expects
// at that index; re-sent elsewhere, re-wrapped, forged or garbage, it proves nothing — and it never throws.
import t from 'tap';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { classifyProbe, type ClassifyContext } from '../../src/responder/witness.js';
import { Session, type ExpectedFlow } from '../../src/responder/sessions.js';
import { Budget } from '../../src/responder/budget.js';
import { PROBE_TCP_SPORT_LO, deriveSessionKey, encodeProbePayload, encodeProbeSyn, tcpProbeTag, type ProbeFlow } from '../../src/packets/probe.js';
import { encodeIPv4 } from '../../src/packets/ipv4.js';
import { encodeTcp, TCP_FLAGS } from '../../src/packets/tcp.js';
import { encodeUdp } from '../../src/packets/udp.js';
import { buildVxlanProbe } from '../../src/packets/vxlan.js';
import { buildIpipInner } from '../../src/packets/ipip.js';

const secret = randomBytes(32);
const idBytes = randomBytes(8);
const key = deriveSessionKey(secret, idBytes);
const SRC = '198.18.1.2';
const DST = '198.18.2.2';
const NODE3 = '198.18.3.2';

// What node DST expects to receive: idx 0 bgp, 1 vxlan, 2 wireguard, 3 ipip, 4 typha, all from SRC.
const inbound = new Map<number, ExpectedFlow>([
  [0, { src: SRC, check: 'bgp', transport: 'tcp', port: 179 }],
  [1, { src: SRC, check: 'vxlan', transport: 'udp', port: 4789 }],
  [2, { src: SRC, check: 'wireguard', transport: 'udp', port: 51820 }],
  [3, { src: SRC, check: 'ipip', transport: 'ipip', port: null }],
  [4, { src: SRC, check: 'typha', transport: 'tcp', port: 5473 }],
]);
const flowAt = (idx: number, dst = DST): ProbeFlow => ({ ...inbound.get(idx)!, dst, idx });
const newSession = (budget?: Budget) =>
  new Session(idBytes.toString('hex'), idBytes, key, new Set([DST]), { bgp: 179, vxlan: 4789 }, inbound, 60_000, Date.now(), 0, budget);
const session = newSession();
const at = (s: Session, o: Partial<ClassifyContext> = {}): ClassifyContext => ({
  self: DST,
  outgoing: false,
  active: [s],
  byId: (b: Buffer) => (b.equals(idBytes) ? s : undefined),
  nowMs: Date.now(),
  ...o,
});
const ctx = at(session);

const ip = (protocol: number, payload: Buffer, dst = DST, src = SRC) => encodeIPv4({ src, dst, protocol, payload });
/** A probe SYN of `flow` as the prober sends it, addressed to `dst` and `port` (by default the flow's). */
const syn = (flow: ProbeFlow, o: { dst?: string; port?: number; k?: Buffer; flags?: number } = {}) => {
  const tag = tcpProbeTag(o.k ?? key, flow);
  const dst = o.dst ?? flow.dst;
  const f = { srcAddr: SRC, dstAddr: dst, srcPort: PROBE_TCP_SPORT_LO, dstPort: o.port ?? flow.port!, tag };
  const seg = o.flags === undefined ? encodeProbeSyn(f) : encodeTcp({ ...f, seq: tag.seq, flags: o.flags, mss: 1380, timestamp: { val: tag.tsVal, ecr: 0 } });
  return ip(6, seg, dst);
};
const payload = (flow: ProbeFlow, k = key) => encodeProbePayload({ key: k, sessionId: idBytes, ...flow, attempt: 0, sendTimeMs: 1 });
const udp = (port: number, body: Buffer, dst = DST) => ip(17, encodeUdp({ srcAddr: SRC, dstAddr: dst, srcPort: 61001, dstPort: port, payload: body }), dst);
const ipip = (body: Buffer, dst = DST) => ip(4, buildIpipInner({ innerSrc: SRC, innerDst: dst, payload: body }), dst);
const probeOf = (c: ReturnType<typeof classifyProbe>) => (c?.kind === 'probe' ? c.sighting : null);

t.test('TCP SYN with the flow tag -> that flow', async (t) => {
  const s = probeOf(classifyProbe(syn(flowAt(0)), ctx));
  t.same(s?.flow, flowAt(0));
  t.equal(s?.src, SRC);
  t.same(probeOf(classifyProbe(syn(flowAt(4)), ctx))?.flow, flowAt(4), 'typha on 5473');
});

t.test('TCP: another port, key, flow or destination proves nothing; a wrong tag for a real flow counts as forged', async (t) => {
  const forgedBefore = session.forged;
  t.equal(classifyProbe(syn(flowAt(0), { port: 180 }), ctx), null, 'no flow at idx 0 on port 180');
  t.match(classifyProbe(syn(flowAt(0), { k: randomBytes(32) }), ctx), { kind: 'forged' }, 'another key');
  t.match(classifyProbe(syn({ ...flowAt(0), dst: NODE3 }, { dst: DST }), ctx), { kind: 'forged' }, 'tagged for node3, sent to node2');
  t.match(classifyProbe(syn({ ...flowAt(0), src: NODE3 }), ctx), { kind: 'forged' }, 'tagged as from another source');
  t.match(classifyProbe(syn(flowAt(4), { port: 179 }), ctx), null, 'typha tag (idx 4) on the bgp port: no such flow');
  t.equal(classifyProbe(syn(flowAt(0), { flags: TCP_FLAGS.SYN | TCP_FLAGS.ACK }), ctx), null, 'SYN-ACK');
  t.equal(classifyProbe(syn({ ...flowAt(0), idx: 100 }), ctx), null, 'idx the session does not expect');
  t.equal(classifyProbe(syn(flowAt(0)), { ...ctx, self: NODE3 }), null, 'not for this node');
  t.equal(session.forged - forgedBefore, 3);
  const plain = ip(6, encodeTcp({ srcAddr: SRC, dstAddr: DST, srcPort: 61000, dstPort: 179, seq: tcpProbeTag(key, flowAt(0)).seq, flags: TCP_FLAGS.SYN, mss: 1380 }));
  t.equal(classifyProbe(plain, ctx), null, 'the right sequence number without the timestamp tag');
});

t.test('UDP (VXLAN-framed, bare) and IP-in-IP probes prove their flow', async (t) => {
  t.same(probeOf(classifyProbe(udp(4789, buildVxlanProbe({ innerSrc: SRC, innerDst: DST, payload: payload(flowAt(1)) })), ctx))?.flow, flowAt(1));
  t.same(probeOf(classifyProbe(udp(51820, payload(flowAt(2))), ctx))?.flow, flowAt(2));
  t.same(probeOf(classifyProbe(ipip(payload(flowAt(3))), ctx))?.flow, flowAt(3));
});

t.test('re-wrapped or re-sent genuine probes are forgeries', async (t) => {
  const ipipProbe = payload(flowAt(3));
  t.match(classifyProbe(udp(51820, ipipProbe), ctx), { kind: 'forged' }, 'the IP-in-IP probe re-sent as UDP to 51820');
  t.match(classifyProbe(udp(4789, buildVxlanProbe({ innerSrc: SRC, innerDst: DST, payload: payload(flowAt(2)) })), ctx), { kind: 'forged' }, 'the WireGuard probe re-framed as VXLAN to 4789');
  t.match(classifyProbe(udp(51820, payload(flowAt(1))), ctx), { kind: 'forged' }, 'the VXLAN probe bare to 51820');
  t.match(classifyProbe(ipip(payload(flowAt(1))), ctx), { kind: 'forged' }, 'a UDP probe wrapped in IP-in-IP');
  t.match(classifyProbe(ipip(payload(flowAt(3, NODE3)), DST), ctx), { kind: 'forged' }, 'node1 -> node3 probe re-sent to node2');
  t.match(classifyProbe(ipip(payload({ ...flowAt(3), src: NODE3 })), ctx), { kind: 'forged' }, 'claims another source than the one expected at that idx');
  t.match(classifyProbe(ipip(payload({ ...flowAt(3), idx: 9 })), ctx), { kind: 'forged' }, 'an idx the session does not expect');
  t.match(classifyProbe(ipip(payload(flowAt(3), randomBytes(32))), ctx), { kind: 'forged' }, 'a payload under another key');
  t.equal(classifyProbe(ipip(payload(flowAt(3))), { ...ctx, active: [], byId: () => undefined }), null, 'no live session');
});

t.test('outgoing copies: proven against the flows this node was asked to send', async (t) => {
  const s = newSession();
  s.outbound.set(`${DST}/3`, { src: SRC, check: 'ipip', transport: 'ipip', port: null });
  s.outbound.set(`${DST}/0`, { src: SRC, check: 'bgp', transport: 'tcp', port: 179 });
  const out = at(s, { self: SRC, outgoing: true });
  t.same(probeOf(classifyProbe(ipip(payload(flowAt(3))), out))?.flow, flowAt(3));
  t.same(probeOf(classifyProbe(syn(flowAt(0)), out))?.flow, flowAt(0));
  t.equal(classifyProbe(ipip(payload(flowAt(3))), { ...out, self: NODE3 }), null, 'not from this node');
  t.match(classifyProbe(ipip(payload(flowAt(1))), out), { kind: 'forged' }, 'not one this node sent');
});

t.test('a flood shaped like probes spends the session budget and is shed, counted', async (t) => {
  const now = Date.now();
  const s = newSession(new Budget(10, 5, now));
  const c = at(s, { nowMs: now });
  const kinds = Array.from({ length: 8 }, () => classifyProbe(syn(flowAt(0), { k: randomBytes(32) }), c)?.kind);
  t.same(kinds, ['forged', 'forged', 'forged', 'forged', 'forged', 'shed', 'shed', 'shed']);
  t.equal(s.forged, 5);
  t.equal(s.shed, 3);
  t.equal(classifyProbe(syn({ ...flowAt(0), idx: 1000 }), c), null, 'an idx with no flow costs no budget (no HMAC)');
  t.equal(s.shed, 3);
  t.equal(classifyProbe(syn(flowAt(0)), { ...c, nowMs: now + 1000 })?.kind, 'probe', 'the budget refills');
});

t.test('random and truncated bytes never throw and are never probes', async () => {
  const good = ipip(payload(flowAt(3)));
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (b) => classifyProbe(Buffer.from(b), ctx)?.kind !== 'probe'),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.integer({ min: 0, max: good.length - 1 }), (n) => classifyProbe(good.subarray(0, n), ctx)?.kind !== 'probe'),
  );
});

t.test('large mtu probes cut at the snap length are still probes, with their arrived size', async (t) => {
  const { framePacket } = await import('../../src/checks/framing.js');
  const { CATALOGUE } = await import('../../src/checks/catalogue.js');
  const { arrivedSize } = await import('../../src/responder/witness.js');
  for (const carrier of ['ipip', 'vxlan', 'wireguard'] as const) {
    const transport = CATALOGUE[carrier].transport === 'udp' ? 'udp' : 'ipip';
    const port = transport === 'udp' ? 4789 : null;
    const mtuFlow: ExpectedFlow = { src: SRC, check: 'mtu', transport, port };
    const sess = new Session(idBytes.toString('hex'), idBytes, key, new Set([DST]), { vxlan: 4789 }, new Map([[5, mtuFlow]]), 60_000, Date.now(), 0);
    const p = encodeProbePayload({ key, sessionId: idBytes, src: SRC, dst: DST, transport, port, check: 'mtu', idx: 5, attempt: 0, sendTimeMs: 1 });
    const whole = framePacket({ framing: CATALOGUE[carrier].probe.framing, size: 1400, df: true }, { src: SRC, dst: DST, transport, srcPort: 61000, dstPort: port, id: 0, payload: p });
    t.equal(whole.length, 1400);
    const snap = whole.subarray(0, 256);
    const r = classifyProbe(snap, at(sess));
    t.equal(r?.kind === 'probe' ? r.sighting.flow.idx : null, 5, `${carrier}: found in the snap`);
    t.equal(r?.kind === 'probe' ? r.sighting.flow.check : null, 'mtu');
    t.equal(arrivedSize({ data: snap, origLength: 1400 }), 1400, 'the header’s length when all of it was delivered');
    t.equal(arrivedSize({ data: snap, origLength: 900 }), 900, 'a header claiming more than arrived counts what arrived');
    const flow: ProbeFlow = { ...mtuFlow, dst: DST, idx: 5 };
    sess.witness(flow, 'iface', 'eth0', SRC, 1, 1404);
    sess.witness(flow, 'iface', 'eth0', SRC, 2, 600);
    sess.witness(flow, 'socket', null, SRC, 2, 1400);
    t.equal(sess.witnessed.get(5)?.ifaceSize, 1404, 'the largest size per layer is kept');
    t.equal(sess.witnessed.get(5)?.socketSize, 1400);
  }
  t.equal(arrivedSize({ data: Buffer.alloc(2), origLength: 2 }), 0);
});
