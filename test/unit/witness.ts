// classifyProbe: genuine probes of a live session are recognised (TCP by the tag in the ISN, UDP/VXLAN
// and IP-in-IP by the signed payload); real traffic, garbage and forgeries are not — and it never throws.
import t from 'tap';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { classifyProbe, withinExpect } from '../../src/responder/witness.js';
import { Session } from '../../src/responder/sessions.js';
import { PROBE_TCP_MSS, PROBE_TCP_SPORT_LO, deriveSessionKey, encodeProbePayload, encodeProbeSyn, tcpProbeSeq } from '../../src/packets/probe.js';
import { encodeIPv4 } from '../../src/packets/ipv4.js';
import { encodeTcp, TCP_FLAGS } from '../../src/packets/tcp.js';
import { encodeUdp } from '../../src/packets/udp.js';
import { buildVxlanProbe } from '../../src/packets/vxlan.js';
import { buildIpipInner } from '../../src/packets/ipip.js';

const secret = randomBytes(32);
const idBytes = randomBytes(8);
const key = deriveSessionKey(secret, idBytes);
const session = new Session(idBytes.toString('hex'), idBytes, key, new Set(['198.18.2.2']), { bgp: 179, vxlan: 4789 }, Date.now() + 60_000, 100);
const lookup = { active: [session], byId: (b: Buffer) => (b.equals(idBytes) ? session : undefined) };
const SRC = '198.18.1.2';
const DST = '198.18.2.2';

/** A probe SYN as the prober sends it (encodeProbeSyn: the stamp); other `flags`: the same stamp with those flags. */
const syn = (seq: number, port = 179, flags: number = TCP_FLAGS.SYN) => {
  const f = { srcAddr: SRC, dstAddr: DST, srcPort: PROBE_TCP_SPORT_LO, dstPort: port, seq };
  const seg = flags === TCP_FLAGS.SYN ? encodeProbeSyn(f) : encodeTcp({ ...f, flags, mss: PROBE_TCP_MSS });
  return encodeIPv4({ src: SRC, dst: DST, protocol: 6, payload: seg });
};
const payload = (idx: number, k = key, check: 'vxlan' | 'ipip' | 'wireguard' = 'vxlan') => encodeProbePayload({ key: k, sessionId: idBytes, check, idx, attempt: 0, sendTimeMs: 1 });

t.test('TCP SYN with the session tag -> its idx and check', async (t) => {
  const s = classifyProbe(syn(tcpProbeSeq(key, DST, 179, 42)), lookup);
  t.equal(s?.idx, 42);
  t.equal(s?.check, 'bgp');
  t.equal(s?.src, SRC);
  t.equal(s?.transport, 'tcp');
});

t.test('TCP: wrong port, wrong key, SYN-ACK, idx beyond what the session expects -> null', async (t) => {
  t.equal(classifyProbe(syn(tcpProbeSeq(key, DST, 179, 42), 180), lookup), null);
  t.equal(classifyProbe(syn(tcpProbeSeq(randomBytes(32), DST, 179, 42)), lookup), null);
  t.equal(classifyProbe(syn(tcpProbeSeq(key, DST, 179, 42), 179, TCP_FLAGS.SYN | TCP_FLAGS.ACK), lookup), null);
  const beyond = classifyProbe(syn(tcpProbeSeq(key, DST, 179, 100)), lookup);
  t.equal(beyond?.idx, 100);
  t.notOk(withinExpect(beyond!), 'idx 100 >= expect 100: not accepted as an incoming probe');
  t.ok(withinExpect(classifyProbe(syn(tcpProbeSeq(key, DST, 179, 99)), lookup)!));
});

t.test('VXLAN-framed UDP probe and plain UDP probe', async (t) => {
  const vx = encodeIPv4({ src: SRC, dst: DST, protocol: 17, payload: encodeUdp({ srcAddr: SRC, dstAddr: DST, srcPort: 61001, dstPort: 4789, payload: buildVxlanProbe({ innerSrc: SRC, innerDst: DST, payload: payload(7) }) }) });
  t.match(classifyProbe(vx, lookup), { idx: 7, check: 'vxlan', transport: 'udp', dstPort: 4789 });
  const wg = encodeIPv4({ src: SRC, dst: DST, protocol: 17, payload: encodeUdp({ srcAddr: SRC, dstAddr: DST, srcPort: 61001, dstPort: 51820, payload: payload(8, key, 'wireguard') }) });
  t.match(classifyProbe(wg, lookup), { idx: 8, check: 'wireguard' });
});

t.test('IP-in-IP probe', async (t) => {
  const pkt = encodeIPv4({ src: SRC, dst: DST, protocol: 4, payload: buildIpipInner({ innerSrc: SRC, innerDst: DST, payload: payload(9, key, 'ipip') }) });
  t.match(classifyProbe(pkt, lookup), { idx: 9, check: 'ipip', transport: 'ipip' });
});

t.test('a forged payload (another key) and an unknown session are refused', async (t) => {
  const forged = encodeIPv4({ src: SRC, dst: DST, protocol: 4, payload: buildIpipInner({ innerSrc: SRC, innerDst: DST, payload: payload(9, randomBytes(32), 'ipip') }) });
  t.equal(classifyProbe(forged, lookup), null);
  t.equal(classifyProbe(forged, { active: [], byId: () => undefined }), null);
});

t.test('random and truncated bytes never throw and are never probes', async () => {
  const good = encodeIPv4({ src: SRC, dst: DST, protocol: 4, payload: buildIpipInner({ innerSrc: SRC, innerDst: DST, payload: payload(9, key, 'ipip') }) });
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (b) => classifyProbe(Buffer.from(b), lookup) === null),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.integer({ min: 0, max: good.length - 1 }), (n) => {
      const r = classifyProbe(good.subarray(0, n), lookup);
      return r === null;
    }),
  );
});

t.test('large mtu probes cut at the snap length are still probes, with their arrived size', async (t) => {
  const { framePacket } = await import('../../src/checks/framing.js');
  const { CATALOGUE } = await import('../../src/checks/catalogue.js');
  const encodeSizedProbe = (f: { framing: 'ipip' | 'vxlan' | 'wireguard'; src: string; dst: string; size: number; payload: Uint8Array; srcPort: number; dstPort: number }) =>
    framePacket({ framing: CATALOGUE[f.framing].probe.framing, size: f.size, df: true }, { src: f.src, dst: f.dst, transport: CATALOGUE[f.framing].transport === 'udp' ? 'udp' : 'ipip', srcPort: f.srcPort, dstPort: f.dstPort, id: 0, payload: f.payload });
  const { arrivedSize } = await import('../../src/responder/witness.js');
  const p = encodeProbePayload({ key, sessionId: idBytes, check: 'mtu', idx: 5, attempt: 0, sendTimeMs: 1 });
  for (const framing of ['ipip', 'vxlan', 'wireguard'] as const) {
    const whole = encodeSizedProbe({ framing, src: SRC, dst: DST, size: 1400, payload: p, srcPort: 61000, dstPort: 4789 });
    const snap = whole.subarray(0, 256);
    const s = classifyProbe(snap, lookup);
    t.equal(s?.idx, 5, `${framing}: found in the snap`);
    t.equal(s?.check, 'mtu');
    t.equal(arrivedSize({ data: snap, origLength: 1400 }), 1400, 'the header’s length when all of it was delivered');
    t.equal(arrivedSize({ data: snap, origLength: 900 }), 900, 'a header claiming more than arrived counts what arrived');
  }
  t.equal(arrivedSize({ data: Buffer.alloc(2), origLength: 2 }), 0);
  const sess = new Session('x', idBytes, key, new Set(), {}, Date.now() + 1000);
  sess.witness(1, 'iface', 'mtu', 'eth0', SRC, 1, 1404);
  sess.witness(1, 'iface', 'mtu', 'eth0', SRC, 2, 600);
  sess.witness(1, 'socket', 'mtu', null, SRC, 2, 1400);
  t.equal(sess.witnessed.get(1)?.ifaceSize, 1404, 'the largest size per layer is kept');
  t.equal(sess.witnessed.get(1)?.socketSize, 1400);
});
