import t from 'tap';
import fc from 'fast-check';
import { createHmac } from 'node:crypto';
import { CHECK_IDS } from '../../src/types.js';
import { DecodeError } from '../../src/packets/errors.js';
import {
  CHECK_CODES,
  PROBE_MAGIC,
  PROBE_PAYLOAD_LENGTH,
  PROBE_TCP_MSS,
  PROBE_TCP_SPORT_HI,
  PROBE_TCP_SPORT_LO,
  PROBE_VERSION,
  checkFromCode,
  decodeProbePayload,
  deriveSessionKey,
  encodeProbePayload,
  encodeProbeSyn,
  hasProbeMagic,
  padProbe,
  sameFlow,
  tcpProbeTag,
  tcpSeqIdx,
  verifyProbePayload,
  verifyTcpProbe,
  type ProbeFlow,
} from '../../src/packets/probe.js';
import { TCP_FLAGS, decodeTcp, tcpChecksumOk } from '../../src/packets/tcp.js';

const SECRET = Buffer.from('correct horse battery staple');
const SESSION = Buffer.from('0102030405060708', 'hex');
const KEY = deriveSessionKey(SECRET, SESSION);
const OTHER_KEY = deriveSessionKey(SECRET, Buffer.from('0102030405060709', 'hex'));

const VXLAN_FLOW: ProbeFlow = { src: '10.0.0.1', dst: '10.0.0.2', transport: 'udp', port: 4789, check: 'vxlan', idx: 0x1234 };
const sample = () => encodeProbePayload({ key: KEY, sessionId: SESSION, ...VXLAN_FLOW, attempt: 2, sendTimeMs: 1_700_000_000_123.5 });
const BGP: ProbeFlow = { src: '10.0.0.1', dst: '10.0.0.2', transport: 'tcp', port: 179, check: 'bgp', idx: 0xabcd };

t.test('constants and check codes', async (t) => {
  t.equal(PROBE_MAGIC, 0x434e5450);
  t.equal(Buffer.from('CNTP').readUInt32BE(0), PROBE_MAGIC);
  t.equal(PROBE_VERSION, 2);
  t.equal(PROBE_PAYLOAD_LENGTH, 54);
  t.same(CHECK_CODES, { bgp: 1, ipip: 2, vxlan: 3, wireguard: 4, typha: 5, etcd: 6, apiserver: 7, mtu: 8 });
  t.same(Object.keys(CHECK_CODES).sort(), [...CHECK_IDS].sort(), 'every check has a code');
  for (const id of CHECK_IDS) t.equal(checkFromCode(CHECK_CODES[id]), id);
  t.equal(checkFromCode(0), null);
  t.equal(checkFromCode(9), null);
});

t.test('session key', async (t) => {
  const expected = createHmac('sha256', SECRET).update('calico-nettest session 0102030405060708').digest();
  t.same(KEY, expected);
  t.equal(KEY.length, 32);
  t.notSame(KEY, OTHER_KEY);
  t.throws(() => deriveSessionKey(SECRET, Buffer.alloc(7)), TypeError);
});

t.test('payload layout', async (t) => {
  const p = sample();
  t.equal(p.length, 54);
  t.equal(p.toString('latin1', 0, 4), 'CNTP');
  t.equal(p[4], 2, 'version');
  t.equal(p[5], 4, 'family: IPv4');
  t.equal(p[6], 3, 'check code for vxlan');
  t.equal(p[7], 17, 'transport: UDP');
  t.equal(p.readUInt16BE(8), 0x1234, 'idx');
  t.equal(p.readUInt16BE(10), 4789, 'port');
  t.equal(p[12], 2, 'attempt');
  t.equal(p[13], 0, 'reserved');
  t.same([...p.subarray(14, 18)], [10, 0, 0, 1], 'source');
  t.same([...p.subarray(18, 22)], [10, 0, 0, 2], 'destination');
  t.same(p.subarray(22, 30), SESSION);
  t.equal(p.readDoubleBE(30), 1_700_000_000_123.5);
  const mac = createHmac('sha256', KEY).update(p.subarray(0, 38)).digest().subarray(0, 16);
  t.same(p.subarray(38), mac, 'MAC is the first 16 bytes of HMAC-SHA256 over bytes 0..37');
  const ipip = encodeProbePayload({ key: KEY, sessionId: SESSION, ...VXLAN_FLOW, check: 'ipip', transport: 'ipip', port: null, attempt: 0, sendTimeMs: 0 });
  t.equal(ipip[7], 4, 'transport: IP-in-IP');
  t.equal(ipip.readUInt16BE(10), 0, 'no port');
  t.equal(decodeProbePayload(ipip).port, null);
});

t.test('decode and verify', async (t) => {
  const p = sample();
  const d = decodeProbePayload(p);
  t.match(d, { ...VXLAN_FLOW, attempt: 2, sendTimeMs: 1_700_000_000_123.5 });
  t.ok(sameFlow(d, VXLAN_FLOW), 'the payload names its flow');
  for (const other of [{ dst: '10.0.0.3' }, { src: '10.0.0.9' }, { port: 51820 }, { check: 'wireguard' as const }, { transport: 'ipip' as const }, { idx: 1 }])
    t.notOk(sameFlow(d, { ...VXLAN_FLOW, ...other }), `another flow: ${JSON.stringify(other)}`);
  t.same(d.sessionId, SESSION);
  t.same(d.mac, p.subarray(38));
  t.same(verifyProbePayload(p, KEY), d);
  t.equal(verifyProbePayload(p, OTHER_KEY), null, 'wrong key');
  t.equal(verifyProbePayload(p.subarray(0, 53), KEY), null, 'short');
  t.ok(verifyProbePayload(padProbe(p, 148), KEY), 'padding after the payload is ignored');
  t.ok(hasProbeMagic(p));
  t.ok(hasProbeMagic(Buffer.concat([Buffer.alloc(3), p]), 3));
  t.notOk(hasProbeMagic(p, 1));
  t.notOk(hasProbeMagic(p.subarray(0, 3)));

  const mutate = (at: number, v: number) => {
    const b = Buffer.from(p);
    b[at] = v;
    return b;
  };
  t.throws(() => decodeProbePayload(p.subarray(0, 53)), DecodeError);
  t.throws(() => decodeProbePayload(mutate(0, 0x44)), DecodeError, 'magic');
  t.throws(() => decodeProbePayload(mutate(4, 1)), DecodeError, 'version 1 (no flow identity) is refused');
  t.throws(() => decodeProbePayload(mutate(5, 6)), DecodeError, 'family 6');
  t.throws(() => decodeProbePayload(mutate(6, 0)), DecodeError, 'check code 0');
  t.throws(() => decodeProbePayload(mutate(6, 9)), DecodeError, 'check code 9');
  t.throws(() => decodeProbePayload(mutate(7, 1)), DecodeError, 'transport code 1');
  t.throws(() => decodeProbePayload(mutate(7, 4)), DecodeError, 'IP-in-IP with a port');

  const base = { key: KEY, sessionId: SESSION, ...VXLAN_FLOW, attempt: 0, sendTimeMs: 0 };
  t.throws(() => encodeProbePayload({ ...base, idx: 65536 }), RangeError);
  t.throws(() => encodeProbePayload({ ...base, attempt: 256 }), RangeError);
  t.throws(() => encodeProbePayload({ ...base, port: null }), RangeError, 'UDP needs a port');
  t.throws(() => encodeProbePayload({ ...base, transport: 'ipip' }), RangeError, 'IP-in-IP has none');
  t.throws(() => encodeProbePayload({ ...base, sessionId: Buffer.alloc(9) }), TypeError);
  t.throws(() => encodeProbePayload({ ...base, check: 'nope' as 'bgp' }), TypeError);
  t.throws(() => encodeProbePayload({ ...base, transport: 'sctp' as 'udp' }), TypeError);
});

t.test('every single-bit flip fails verification', async (t) => {
  const p = sample();
  let rejected = 0;
  for (let bit = 0; bit < p.length * 8; bit++) {
    const b = Buffer.from(p);
    b[bit >> 3] = (b[bit >> 3] as number) ^ (1 << (bit & 7));
    if (verifyProbePayload(b, KEY) === null) rejected++;
  }
  t.equal(rejected, 54 * 8);
});

t.test('padProbe', async (t) => {
  const p = sample();
  const padded = padProbe(p, 148);
  t.equal(padded.length, 148);
  t.same(padded.subarray(0, 54), p);
  t.ok(padded.subarray(54).every((b) => b === 0));
  t.same(padProbe(p, 54), p);
  t.throws(() => padProbe(p, 53), RangeError);
});

const probeFields = fc.record({
  check: fc.constantFrom(...CHECK_IDS),
  src: fc.ipV4(),
  dst: fc.ipV4(),
  transport: fc.constantFrom('udp' as const, 'ipip' as const),
  port: fc.integer({ min: 1, max: 65535 }),
  idx: fc.integer({ min: 0, max: 0xffff }),
  attempt: fc.integer({ min: 0, max: 255 }),
  sessionId: fc.uint8Array({ minLength: 8, maxLength: 8 }),
  sendTimeMs: fc.double(),
  secret: fc.uint8Array({ minLength: 1, maxLength: 32 }),
});

t.test('property: encode → verify round trip; bit flips and other keys are refused', async (t) => {
  fc.assert(
    fc.property(probeFields, fc.nat(54 * 8 - 1), (g, bit) => {
      const f = { ...g, port: g.transport === 'ipip' ? null : g.port };
      const key = deriveSessionKey(f.secret, f.sessionId);
      const p = encodeProbePayload({ ...f, key });
      const v = verifyProbePayload(p, key);
      if (v === null) return false;
      const same =
        sameFlow(v, f) &&
        v.check === f.check &&
        v.idx === f.idx &&
        v.attempt === f.attempt &&
        Buffer.from(f.sessionId).equals(v.sessionId) &&
        Object.is(v.sendTimeMs, f.sendTimeMs);
      const flipped = Buffer.from(p);
      flipped[bit >> 3] = (flipped[bit >> 3] as number) ^ (1 << (bit & 7));
      const otherKey = Buffer.from(key);
      otherKey[0] = (otherKey[0] as number) ^ 1;
      return same && verifyProbePayload(flipped, key) === null && verifyProbePayload(p, otherKey) === null;
    }),
  );
  t.pass();
});

t.test('property: random bytes never verify and decode only throws DecodeError', async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 72 }), fc.boolean(), (b, withMagic) => {
      const buf = Buffer.from(b);
      if (withMagic && buf.length >= 12) {
        buf.writeUInt32BE(PROBE_MAGIC, 0);
        buf[4] = 2;
        buf[5] = 4;
        buf[6] = 1 + ((buf[6] as number) % 7);
        buf[7] = [4, 6, 17][(buf[7] as number) % 3]!;
      }
      let ok: boolean;
      try {
        decodeProbePayload(buf);
        ok = true;
      } catch (err) {
        ok = err instanceof DecodeError;
      }
      return ok && verifyProbePayload(buf, KEY) === null;
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

t.test('TCP tag: 48 bits over the whole flow, in the sequence number and the timestamp', async (t) => {
  const tag = tcpProbeTag(KEY, BGP);
  t.equal(tcpSeqIdx(tag.seq), 0xabcd, 'idx in the high half');
  t.ok(tag.seq >= 0 && tag.seq <= 0xffffffff && Number.isInteger(tag.seq), 'unsigned 32-bit');
  const msg = Buffer.concat([Buffer.from('tcp2'), Buffer.from([4, 10, 0, 0, 1, 10, 0, 0, 2, 0, 179, 1, 0xab, 0xcd])]);
  const h = createHmac('sha256', KEY).update(msg).digest();
  t.equal(tag.seq & 0xffff, h.readUInt16BE(0), 'seq low half: HMAC(key, tcp2|family|src|dst|port|check|idx)[0..1]');
  t.equal(tag.tsVal, h.readUInt32BE(2), 'timestamp: its next 4 bytes');
  t.ok(verifyTcpProbe(KEY, BGP, tag.seq, tag.tsVal));
  for (let bit = 0; bit < 16; bit++) t.notOk(verifyTcpProbe(KEY, BGP, (tag.seq ^ (1 << bit)) >>> 0, tag.tsVal), `seq tag bit ${bit}`);
  for (let bit = 0; bit < 32; bit++) t.notOk(verifyTcpProbe(KEY, BGP, tag.seq, (tag.tsVal ^ (1 << bit)) >>> 0), `timestamp bit ${bit}`);
  t.notOk(verifyTcpProbe(KEY, BGP, (tag.seq ^ 0x10000) >>> 0, tag.tsVal), 'idx bit');
  t.notOk(verifyTcpProbe(OTHER_KEY, BGP, tag.seq, tag.tsVal), 'other session');
  for (const other of [{ dst: '10.0.0.3' }, { src: '10.0.0.9' }, { port: 5473 }, { check: 'typha' as const }])
    t.notOk(verifyTcpProbe(KEY, { ...BGP, ...other }, tag.seq, tag.tsVal), `another flow: ${JSON.stringify(other)}`);
  t.notOk(verifyTcpProbe(KEY, { ...BGP, transport: 'udp' }, tag.seq, tag.tsVal), 'not a tcp flow');
  for (const bad of [-1, 2 ** 32, 1.5, NaN]) {
    t.notOk(verifyTcpProbe(KEY, BGP, bad, tag.tsVal), `seq ${bad}`);
    t.notOk(verifyTcpProbe(KEY, BGP, tag.seq, bad), `tsVal ${bad}`);
  }
  t.throws(() => tcpProbeTag(KEY, { ...BGP, idx: 65536 }), RangeError);
  t.throws(() => tcpProbeTag(KEY, { ...BGP, port: 65536 }), RangeError);
  t.throws(() => tcpProbeTag(KEY, { ...BGP, transport: 'udp', check: 'vxlan', port: 4789 }), TypeError);
  t.equal(tcpSeqIdx(tcpProbeTag(KEY, { ...BGP, idx: 0xffff }).seq), 0xffff, 'no sign trouble at the top');
});

// A different flow matches a 48-bit tag by chance with probability 2^-48: none of these may.
t.test('property: a TCP tag verifies for its flow and for no other flow, key or tag', async (t) => {
  const flow = fc.record({
    src: fc.ipV4(),
    dst: fc.ipV4(),
    transport: fc.constant('tcp' as const),
    port: fc.integer({ min: 1, max: 65535 }),
    check: fc.constantFrom('bgp' as const, 'typha' as const, 'etcd' as const, 'apiserver' as const),
    idx: fc.integer({ min: 0, max: 0xffff }),
  });
  fc.assert(
    fc.property(flow, flow, fc.integer({ min: 0, max: 0xffffffff }), (f, g, guess) => {
      const tag = tcpProbeTag(KEY, f);
      if (!verifyTcpProbe(KEY, f, tag.seq, tag.tsVal)) return false;
      if (verifyTcpProbe(OTHER_KEY, f, tag.seq, tag.tsVal)) return false;
      if (!sameFlow(f, g) && verifyTcpProbe(KEY, { ...g, idx: f.idx }, tag.seq, tag.tsVal) && !sameFlow({ ...g, idx: f.idx }, f)) return false;
      return guess === tag.tsVal || !verifyTcpProbe(KEY, f, tag.seq, guess);
    }),
    { seed: 20240601, numRuns: 1000 },
  );
  t.pass();
});

t.test('encodeProbeSyn: the stamp a kernel filter can check', async (t) => {
  t.equal(PROBE_TCP_SPORT_LO, 61000);
  t.equal(PROBE_TCP_SPORT_HI, 64999);
  t.ok(PROBE_TCP_SPORT_LO > 60999, "above Linux's default ephemeral range 32768..60999");
  t.equal(PROBE_TCP_MSS, 1380);
  const tag = tcpProbeTag(KEY, { ...BGP, idx: 7 });
  const seg = encodeProbeSyn({ srcAddr: '10.0.0.1', dstAddr: '10.0.0.2', srcPort: 61234, dstPort: 179, tag });
  t.equal(seg.length, 36, 'fixed header + MSS + NOP NOP timestamps, no payload');
  t.equal((seg[12] as number) >> 4, 9, 'data offset 9');
  t.equal(seg[12]! & 0x0f, 0, 'reserved bits clear');
  t.equal(seg[13], TCP_FLAGS.SYN, 'SYN only');
  t.same([...seg.subarray(20, 24)], [0x02, 0x04, 0x05, 0x64], 'first option: MSS 1380');
  t.same([...seg.subarray(24, 28)], [0x01, 0x01, 0x08, 0x0a], 'then NOP NOP timestamps');
  t.equal(seg.readUInt32BE(28), tag.tsVal, 'TSval: 32 tag bits');
  t.equal(seg.readUInt32BE(32), 0, 'TSecr 0, as RFC 7323 wants in a SYN');
  t.ok(tcpChecksumOk('10.0.0.1', '10.0.0.2', seg), 'checksum right for the address pair');
  t.notOk(tcpChecksumOk('10.0.0.1', '10.0.0.3', seg), 'and only for it');
  const d = decodeTcp(seg);
  t.match(d, { srcPort: 61234, dstPort: 179, seq: tag.seq, ackNumber: 0, headerLength: 36, isSyn: true, isAck: false, mss: PROBE_TCP_MSS, timestamp: { val: tag.tsVal, ecr: 0 } });
  t.equal(d.payload.length, 0);
  t.ok(verifyTcpProbe(KEY, { ...BGP, idx: 7 }, d.seq, d.timestamp!.val), 'the tag rides along unchanged');
  const top = { seq: 0xffffffff, tsVal: 0xffffffff };
  for (const srcPort of [PROBE_TCP_SPORT_LO, PROBE_TCP_SPORT_HI]) {
    t.equal(decodeTcp(encodeProbeSyn({ srcAddr: '10.0.0.1', dstAddr: '10.0.0.2', srcPort, dstPort: 6443, tag: top })).srcPort, srcPort, `edge ${srcPort}`);
  }
  for (const srcPort of [60999, 65000, 40000, 0, 65536, 61000.5, NaN]) {
    t.throws(() => encodeProbeSyn({ srcAddr: '10.0.0.1', dstAddr: '10.0.0.2', srcPort, dstPort: 179, tag }), RangeError, `srcPort ${srcPort}`);
  }
  t.throws(() => encodeProbeSyn({ srcAddr: '10.0.0.1', dstAddr: '10.0.0.2', srcPort: 61000, dstPort: 65536, tag }), RangeError, 'dstPort');
  t.throws(() => encodeProbeSyn({ srcAddr: '10.0.0.1', dstAddr: '10.0.0.2', srcPort: 61000, dstPort: 179, tag: { seq: 2 ** 32, tsVal: 0 } }), RangeError, 'seq');
  t.throws(() => encodeProbeSyn({ srcAddr: '10.0.0.1', dstAddr: '10.0.0.2', srcPort: 61000, dstPort: 179, tag: { seq: 0, tsVal: -1 } }), RangeError, 'tsVal');
});
