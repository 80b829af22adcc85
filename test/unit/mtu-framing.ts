// Sized mtu probes: the catalogue's framing of each carrier (IP-in-IP, VXLAN, WireGuard) padded to an exact
// outer length with DF, the probe still found and verified at its usual place (also from a 256-byte snap),
// the frag-needed next-hop MTU, truncated UDP decoding.
import t from 'tap';
import fc from 'fast-check';
import { decodeIPv4, encodeIPv4, internetChecksum, onesComplementSum } from '../../src/packets/ipv4.js';
import { encodeIcmpError, decodeIcmp, nextHopMtu } from '../../src/packets/icmp.js';
import { CATALOGUE } from '../../src/checks/catalogue.js';
import { framePacket, MAX_PROBE_SIZE, minFramedSize } from '../../src/checks/framing.js';
import { deriveSessionKey, encodeProbePayload, PROBE_PAYLOAD_LENGTH, verifyProbePayload } from '../../src/packets/probe.js';
import { findProbeInIpip } from '../../src/packets/ipip.js';
import { findProbeInVxlan } from '../../src/packets/vxlan.js';
import { decodeUdp, udpChecksumOk } from '../../src/packets/udp.js';
import { SNAPLEN } from '../../src/packets/bpf.js';

const SRC = '198.18.1.2';
const DST = '198.18.2.2';
const sessionId = Buffer.from('0011223344556677', 'hex');
const key = deriveSessionKey(Buffer.from('secret'), sessionId);
const payload = encodeProbePayload({ key, sessionId, src: SRC, dst: DST, transport: 'ipip', port: null, check: 'mtu', idx: 7, attempt: 0, sendTimeMs: 1 });
type MtuFraming = 'ipip' | 'vxlan' | 'wireguard';
const FRAMINGS: MtuFraming[] = ['ipip', 'vxlan', 'wireguard'];
const transportOf = (c: MtuFraming) => (CATALOGUE[c].transport === 'udp' ? 'udp' : 'ipip');
const minProbeSize = (c: MtuFraming) => minFramedSize(CATALOGUE[c].probe.framing, transportOf(c));

/** A DF probe of exactly `size` bytes in carrier `framing`'s shape, as the mtu prober sends it. */
function encodeSizedProbe(f: { framing: MtuFraming; src: string; dst: string; size: number; payload: Uint8Array; srcPort?: number; dstPort?: number; id?: number }): Buffer {
  const p = framePacket({ framing: CATALOGUE[f.framing].probe.framing, size: f.size, df: true }, { src: f.src, dst: f.dst, transport: transportOf(f.framing), srcPort: f.srcPort ?? 0, dstPort: f.dstPort ?? 0, id: f.id ?? 0, payload: f.payload });
  if (p.length !== f.size) throw new RangeError(`${f.framing}: asked ${f.size}, got ${p.length}`);
  return p;
}

function findProbe(framing: MtuFraming, packet: Buffer): Buffer | null {
  const ip = decodeIPv4(packet, { allowTruncated: true });
  if (framing === 'ipip') return findProbeInIpip(ip.payload);
  const udp = decodeUdp(ip.payload, { allowTruncated: true });
  return framing === 'vxlan' ? findProbeInVxlan(udp.payload) : udp.payload.subarray(0, PROBE_PAYLOAD_LENGTH);
}

t.test('exact size, DF, valid headers, probe verifiable whole and from a snap', async (t) => {
  // Headers around the payload: outer IPv4 + inner IPv4 + UDP + the 2-byte checksum-neutral pad (so a REJECT
  // of IP-in-IP answers, packets/ipip.ts); outer IPv4 + UDP + VXLAN + Ethernet + IPv4 + UDP; IPv4 + UDP.
  t.same(FRAMINGS.map(minProbeSize), [50, 78, 28].map((h) => h + PROBE_PAYLOAD_LENGTH));
  fc.assert(
    fc.property(fc.constantFrom(...FRAMINGS), fc.integer({ min: 0, max: 9000 }), (framing, extra) => {
      const size = minProbeSize(framing) + extra;
      const p = encodeSizedProbe({ framing, src: SRC, dst: DST, size, payload, srcPort: 61000, dstPort: framing === 'vxlan' ? 4789 : 51820, id: 9 });
      const ip = decodeIPv4(p);
      if (p.length !== size || ip.totalLength !== size || !ip.dontFragment || !ip.checksumOk) return false;
      if (framing !== 'ipip' && !udpChecksumOk(SRC, DST, ip.payload)) return false;
      // Sized IP-in-IP stays checksum-neutral (the pad after the padded inner packet): REJECTs of it still answer.
      if (framing === 'ipip' && onesComplementSum(ip.payload) !== 0xffff) return false;
      const whole = findProbe(framing, p);
      const snap = findProbe(framing, p.subarray(0, Math.min(SNAPLEN, p.length)));
      return !!whole && !!snap && verifyProbePayload(whole, key)?.idx === 7 && verifyProbePayload(snap, key)?.check === 'mtu';
    }),
    { numRuns: 300 },
  );
});

t.test('a size below the framing\'s smallest packet gives that packet; one past the IPv4 maximum is refused', async (t) => {
  for (const framing of FRAMINGS) {
    t.throws(() => encodeSizedProbe({ framing, src: SRC, dst: DST, size: minProbeSize(framing) - 1, payload }), RangeError);
    t.throws(() => encodeSizedProbe({ framing, src: SRC, dst: DST, size: MAX_PROBE_SIZE + 1, payload }));
  }
});

t.test('fragmentation needed: next-hop MTU and the quoted size', async (t) => {
  const probe = encodeSizedProbe({ framing: 'ipip', src: SRC, dst: DST, size: 1500, payload, id: 77 });
  const msg = decodeIcmp(encodeIcmpError({ type: 3, code: 4, rest: 1400, quoted: probe.subarray(0, 576 - 28) }));
  t.equal(nextHopMtu(msg), 1400);
  t.equal(msg.quoted?.totalLength, 1500, 'the quote says which size was too big');
  t.equal(msg.quoted?.id, 77);
  t.equal(nextHopMtu({ type: 3, code: 4, rest: 0 }), null, 'a pre-RFC 1191 router names no MTU');
  t.equal(nextHopMtu({ type: 3, code: 3, rest: 1400 }), null, 'not frag-needed');
  t.equal(nextHopMtu({ type: 11, code: 0, rest: 1400 }), null);
  t.equal(nextHopMtu({ type: 3, code: 4, rest: 0x12340578 }), 1400, 'the high 16 bits are unused');
});

t.test('decodeUdp with allowTruncated reads what a snap holds', async (t) => {
  const probe = encodeSizedProbe({ framing: 'wireguard', src: SRC, dst: DST, size: 1400, payload, srcPort: 1, dstPort: 2 });
  const ip = decodeIPv4(probe.subarray(0, 256), { allowTruncated: true });
  t.throws(() => decodeUdp(ip.payload));
  const u = decodeUdp(ip.payload, { allowTruncated: true });
  t.equal(u.length, 1380);
  t.equal(u.payload.length, 256 - 28);
  t.equal(internetChecksum(probe.subarray(0, 20)), 0);
  t.ok(encodeIPv4({ src: SRC, dst: DST, protocol: 17, payload: Buffer.alloc(0) }));
});
