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
  tcpProbeIdx,
  tcpProbeSeq,
  verifyProbePayload,
} from '../../src/packets/probe.js';
import { TCP_FLAGS, decodeTcp, tcpChecksumOk } from '../../src/packets/tcp.js';

const SECRET = Buffer.from('correct horse battery staple');
const SESSION = Buffer.from('0102030405060708', 'hex');
const KEY = deriveSessionKey(SECRET, SESSION);
const OTHER_KEY = deriveSessionKey(SECRET, Buffer.from('0102030405060709', 'hex'));

const sample = () =>
  encodeProbePayload({ key: KEY, sessionId: SESSION, check: 'vxlan', idx: 0x1234, attempt: 2, sendTimeMs: 1_700_000_000_123.5 });

t.test('constants and check codes', async (t) => {
  t.equal(PROBE_MAGIC, 0x434e5450);
  t.equal(Buffer.from('CNTP').readUInt32BE(0), PROBE_MAGIC);
  t.equal(PROBE_VERSION, 1);
  t.equal(PROBE_PAYLOAD_LENGTH, 42);
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
  t.equal(p.length, 42);
  t.equal(p.toString('latin1', 0, 4), 'CNTP');
  t.equal(p[4], 1, 'version');
  t.equal(p[5], 3, 'check code for vxlan');
  t.equal(p.readUInt16BE(6), 0x1234);
  t.equal(p[8], 2, 'attempt');
  t.equal(p[9], 0, 'reserved');
  t.same(p.subarray(10, 18), SESSION);
  t.equal(p.readDoubleBE(18), 1_700_000_000_123.5);
  const mac = createHmac('sha256', KEY).update(p.subarray(0, 26)).digest().subarray(0, 16);
  t.same(p.subarray(26), mac, 'MAC is the first 16 bytes of HMAC-SHA256 over bytes 0..25');
});

t.test('decode and verify', async (t) => {
  const p = sample();
  const d = decodeProbePayload(p);
  t.equal(d.check, 'vxlan');
  t.equal(d.idx, 0x1234);
  t.equal(d.attempt, 2);
  t.same(d.sessionId, SESSION);
  t.equal(d.sendTimeMs, 1_700_000_000_123.5);
  t.same(d.mac, p.subarray(26));
  t.same(verifyProbePayload(p, KEY), d);
  t.equal(verifyProbePayload(p, OTHER_KEY), null, 'wrong key');
  t.equal(verifyProbePayload(p.subarray(0, 41), KEY), null, 'short');
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
  t.throws(() => decodeProbePayload(p.subarray(0, 41)), DecodeError);
  t.throws(() => decodeProbePayload(mutate(0, 0x44)), DecodeError, 'magic');
  t.throws(() => decodeProbePayload(mutate(4, 2)), DecodeError, 'version');
  t.throws(() => decodeProbePayload(mutate(5, 0)), DecodeError, 'check code 0');
  t.throws(() => decodeProbePayload(mutate(5, 9)), DecodeError, 'check code 9');

  t.throws(() => encodeProbePayload({ key: KEY, sessionId: SESSION, check: 'bgp', idx: 65536, attempt: 0, sendTimeMs: 0 }), RangeError);
  t.throws(() => encodeProbePayload({ key: KEY, sessionId: SESSION, check: 'bgp', idx: 0, attempt: 256, sendTimeMs: 0 }), RangeError);
  t.throws(() => encodeProbePayload({ key: KEY, sessionId: Buffer.alloc(9), check: 'bgp', idx: 0, attempt: 0, sendTimeMs: 0 }), TypeError);
  t.throws(() => encodeProbePayload({ key: KEY, sessionId: SESSION, check: 'nope' as 'bgp', idx: 0, attempt: 0, sendTimeMs: 0 }), TypeError);
});

t.test('every single-bit flip fails verification', async (t) => {
  const p = sample();
  let rejected = 0;
  for (let bit = 0; bit < p.length * 8; bit++) {
    const b = Buffer.from(p);
    b[bit >> 3] = (b[bit >> 3] as number) ^ (1 << (bit & 7));
    if (verifyProbePayload(b, KEY) === null) rejected++;
  }
  t.equal(rejected, 42 * 8);
});

t.test('padProbe', async (t) => {
  const p = sample();
  const padded = padProbe(p, 148);
  t.equal(padded.length, 148);
  t.same(padded.subarray(0, 42), p);
  t.ok(padded.subarray(42).every((b) => b === 0));
  t.same(padProbe(p, 42), p);
  t.throws(() => padProbe(p, 41), RangeError);
});

const probeFields = fc.record({
  check: fc.constantFrom(...CHECK_IDS),
  idx: fc.integer({ min: 0, max: 0xffff }),
  attempt: fc.integer({ min: 0, max: 255 }),
  sessionId: fc.uint8Array({ minLength: 8, maxLength: 8 }),
  sendTimeMs: fc.double(),
  secret: fc.uint8Array({ minLength: 1, maxLength: 32 }),
});

t.test('property: encode → verify round trip; bit flips and other keys are refused', async (t) => {
  fc.assert(
    fc.property(probeFields, fc.nat(42 * 8 - 1), (f, bit) => {
      const key = deriveSessionKey(f.secret, f.sessionId);
      const p = encodeProbePayload({ ...f, key });
      const v = verifyProbePayload(p, key);
      if (v === null) return false;
      const same =
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
    fc.property(fc.uint8Array({ maxLength: 60 }), fc.boolean(), (b, withMagic) => {
      const buf = Buffer.from(b);
      if (withMagic && buf.length >= 6) {
        buf.writeUInt32BE(PROBE_MAGIC, 0);
        buf[4] = 1;
        buf[5] = 1 + ((buf[5] as number) % 7);
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

t.test('TCP sequence tag', async (t) => {
  const seq = tcpProbeSeq(KEY, '10.0.0.2', 179, 0xabcd);
  t.equal(seq >>> 16, 0xabcd, 'idx in the high half');
  t.ok(seq >= 0 && seq <= 0xffffffff && Number.isInteger(seq), 'unsigned 32-bit');
  const msg = Buffer.concat([Buffer.from('tcp'), Buffer.from([10, 0, 0, 2, 0, 179, 0xab, 0xcd])]);
  t.equal(seq & 0xffff, createHmac('sha256', KEY).update(msg).digest().readUInt16BE(0), 'tag is HMAC(key, tcp|dst|port|idx)[0..1]');
  t.equal(tcpProbeIdx(KEY, '10.0.0.2', 179, seq), 0xabcd);
  for (let bit = 0; bit < 16; bit++) t.equal(tcpProbeIdx(KEY, '10.0.0.2', 179, (seq ^ (1 << bit)) >>> 0), null, `tag bit ${bit}`);
  t.equal(tcpProbeIdx(KEY, '10.0.0.2', 179, -1), null);
  t.equal(tcpProbeIdx(KEY, '10.0.0.2', 179, 2 ** 32), null);
  t.equal(tcpProbeIdx(KEY, '10.0.0.2', 179, 1.5), null);
  t.throws(() => tcpProbeSeq(KEY, '10.0.0.2', 179, 65536), RangeError);
  t.throws(() => tcpProbeSeq(KEY, '10.0.0.2', 65536, 0), RangeError);
  t.equal(tcpProbeSeq(KEY, '10.0.0.2', 179, 0xffff) >>> 16, 0xffff, 'no sign trouble at the top');
});

// Other inputs match a tag by chance with probability 2^-16; the seed keeps the run reproducible.
t.test('property: tcpProbeIdx round trips and refuses other port, destination, key or idx', async (t) => {
  let refused = 0;
  let tried = 0;
  fc.assert(
    fc.property(
      fc.ipV4(),
      fc.integer({ min: 1, max: 65535 }),
      fc.integer({ min: 0, max: 0xffff }),
      fc.ipV4(),
      fc.integer({ min: 1, max: 65535 }),
      (dst, port, idx, otherDst, otherPort) => {
        const seq = tcpProbeSeq(KEY, dst, port, idx);
        if (tcpProbeIdx(KEY, dst, port, seq) !== idx) return false;
        const wrong = [tcpProbeIdx(OTHER_KEY, dst, port, seq), tcpProbeIdx(KEY, dst, port, (seq ^ 0x10000) >>> 0)];
        if (port !== otherPort) wrong.push(tcpProbeIdx(KEY, dst, otherPort, seq));
        if (dst !== otherDst) wrong.push(tcpProbeIdx(KEY, otherDst, port, seq));
        tried += wrong.length;
        refused += wrong.filter((w) => w === null).length;
        return true;
      },
    ),
    { seed: 20240601, numRuns: 500 },
  );
  t.ok(refused >= tried - 1, `refused ${refused} of ${tried}`);
});

t.test('encodeProbeSyn: the stamp a kernel filter can check', async (t) => {
  t.equal(PROBE_TCP_SPORT_LO, 61000);
  t.equal(PROBE_TCP_SPORT_HI, 64999);
  t.ok(PROBE_TCP_SPORT_LO > 60999, "above Linux's default ephemeral range 32768..60999");
  t.equal(PROBE_TCP_MSS, 1380);
  const seq = tcpProbeSeq(KEY, '10.0.0.2', 179, 7);
  const seg = encodeProbeSyn({ srcAddr: '10.0.0.1', dstAddr: '10.0.0.2', srcPort: 61234, dstPort: 179, seq });
  t.equal(seg.length, 24, 'fixed header + one option, no payload');
  t.equal((seg[12] as number) >> 4, 6, 'data offset 6');
  t.equal(seg[12]! & 0x0f, 0, 'reserved bits clear');
  t.equal(seg[13], TCP_FLAGS.SYN, 'SYN only');
  t.same([...seg.subarray(20, 24)], [0x02, 0x04, 0x05, 0x64], 'the one option: MSS 1380');
  t.ok(tcpChecksumOk('10.0.0.1', '10.0.0.2', seg), 'checksum right for the address pair');
  t.notOk(tcpChecksumOk('10.0.0.1', '10.0.0.3', seg), 'and only for it');
  const d = decodeTcp(seg);
  t.match(d, { srcPort: 61234, dstPort: 179, seq, ackNumber: 0, headerLength: 24, isSyn: true, isAck: false, mss: PROBE_TCP_MSS });
  t.equal(d.payload.length, 0);
  t.equal(tcpProbeIdx(KEY, '10.0.0.2', 179, d.seq), 7, 'the sequence tag rides along unchanged');
  for (const srcPort of [PROBE_TCP_SPORT_LO, PROBE_TCP_SPORT_HI]) {
    t.equal(decodeTcp(encodeProbeSyn({ srcAddr: '10.0.0.1', dstAddr: '10.0.0.2', srcPort, dstPort: 6443, seq: 0xffffffff })).srcPort, srcPort, `edge ${srcPort}`);
  }
  for (const srcPort of [60999, 65000, 40000, 0, 65536, 61000.5, NaN]) {
    t.throws(() => encodeProbeSyn({ srcAddr: '10.0.0.1', dstAddr: '10.0.0.2', srcPort, dstPort: 179, seq }), RangeError, `srcPort ${srcPort}`);
  }
  t.throws(() => encodeProbeSyn({ srcAddr: '10.0.0.1', dstAddr: '10.0.0.2', srcPort: 61000, dstPort: 65536, seq }), RangeError, 'dstPort');
  t.throws(() => encodeProbeSyn({ srcAddr: '10.0.0.1', dstAddr: '10.0.0.2', srcPort: 61000, dstPort: 179, seq: 2 ** 32 }), RangeError, 'seq');
});
