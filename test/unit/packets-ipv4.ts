import t from 'tap';
import fc from 'fast-check';
import { DecodeError } from '../../src/packets/errors.js';
import {
  bytesToIp,
  decodeIPv4,
  encodeIPv4,
  internetChecksum,
  ipToBytes,
  isIPv4,
  onesComplementSum,
} from '../../src/packets/ipv4.js';

/** Independent checksum: the one's-complement sum of 16-bit words is their plain sum mod 0xffff (0 ↔ 0xffff). */
function refChecksum(buf: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < buf.length; i += 2) s += ((buf[i] ?? 0) << 8) + (buf[i + 1] ?? 0);
  const folded = s === 0 ? 0 : s % 0xffff === 0 ? 0xffff : s % 0xffff;
  return 0xffff - folded;
}

function decodesOrDecodeError(f: () => unknown): boolean {
  try {
    f();
    return true;
  } catch (err) {
    return err instanceof DecodeError && err.code === 'EDECODE';
  }
}

t.test('addresses', async (t) => {
  for (const ok of ['0.0.0.0', '10.0.0.1', '255.255.255.255', '192.168.0.199']) t.ok(isIPv4(ok), ok);
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.-1', ' 1.2.3.4', '1.2.3.4\n', 'a.b.c.d', '::1']) {
    t.notOk(isIPv4(bad), JSON.stringify(bad));
    t.throws(() => ipToBytes(bad), TypeError);
  }
  t.notOk(isIPv4(17 as unknown));
  t.same([...ipToBytes('192.168.0.199')], [192, 168, 0, 199]);
  t.equal(bytesToIp(Buffer.from([9, 10, 11, 12, 13]), 1), '10.11.12.13');
  t.throws(() => bytesToIp(Buffer.from([1, 2, 3, 4]), 1), DecodeError);
});

t.test('RFC 1071 §3 example', async (t) => {
  const bytes = Buffer.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
  t.equal(onesComplementSum(bytes), 0xddf2);
  t.equal(internetChecksum(bytes), 0x220d);
  t.equal(internetChecksum(Buffer.from([0x00, 0x01, 0xf2])), refChecksum(Buffer.from([0x00, 0x01, 0xf2])), 'odd length');
  t.equal(internetChecksum(Buffer.alloc(0)), 0xffff);
});

// A real header (192.168.0.1 -> 192.168.0.199, UDP, DF, TTL 64), checksum 0xb861.
const CAPTURED = Buffer.from('45000073000040004011b861c0a80001c0a800c7', 'hex');

t.test('captured header checksum', async (t) => {
  t.equal(internetChecksum(CAPTURED), 0, 'a header with its checksum sums to zero');
  const zeroed = Buffer.from(CAPTURED);
  zeroed.writeUInt16BE(0, 10);
  t.equal(internetChecksum(zeroed), 0xb861);
  const packet = Buffer.concat([CAPTURED, Buffer.alloc(0x73 - 20, 0xaa)]);
  const d = decodeIPv4(packet);
  t.match(d, {
    version: 4,
    ihl: 5,
    headerLength: 20,
    totalLength: 0x73,
    id: 0,
    dontFragment: true,
    moreFragments: false,
    fragmentOffset: 0,
    ttl: 64,
    protocol: 17,
    checksum: 0xb861,
    checksumOk: true,
    src: '192.168.0.1',
    dst: '192.168.0.199',
    truncated: false,
  });
  t.equal(d.payload.length, 0x73 - 20);
  const encoded = encodeIPv4({ src: '192.168.0.1', dst: '192.168.0.199', protocol: 17, payload: Buffer.alloc(0x73 - 20, 0xaa) });
  t.same(encoded.subarray(0, 20), CAPTURED, 'encoder reproduces the captured header byte for byte');
});

t.test('encode', async (t) => {
  const p = encodeIPv4({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 4, payload: Buffer.from('abc'), id: 0x1234, ttl: 3, tos: 0xb8, dontFragment: false });
  t.equal(p.length, 23);
  t.equal(p[0], 0x45);
  t.equal(p[1], 0xb8);
  t.equal(p.readUInt16BE(2), 23);
  t.equal(p.readUInt16BE(4), 0x1234);
  t.equal(p.readUInt16BE(6), 0);
  t.equal(p[8], 3);
  t.equal(p[9], 4);
  t.equal(p.readUInt16BE(10), refChecksum(Buffer.concat([p.subarray(0, 10), p.subarray(12, 20)])));
  t.equal(p.subarray(20).toString(), 'abc');
  t.throws(() => encodeIPv4({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 256, payload: Buffer.alloc(0) }), RangeError);
  t.throws(() => encodeIPv4({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 6, ttl: -1, payload: Buffer.alloc(0) }), RangeError);
  t.throws(() => encodeIPv4({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 6, payload: Buffer.alloc(65516) }), RangeError);
  t.throws(() => encodeIPv4({ src: '10.0.0.300', dst: '10.0.0.2', protocol: 6, payload: Buffer.alloc(0) }), TypeError);
});

t.test('decode errors and bounds', async (t) => {
  const good = encodeIPv4({ src: '1.2.3.4', dst: '5.6.7.8', protocol: 6, payload: Buffer.alloc(10, 1) });
  const err = (buf: Buffer, offset: number) => {
    try {
      decodeIPv4(buf);
    } catch (e) {
      t.type(e, DecodeError);
      t.equal((e as DecodeError).offset, offset);
      return;
    }
    t.fail('expected DecodeError');
  };
  err(good.subarray(0, 19), 0);
  const v6 = Buffer.from(good);
  v6[0] = 0x65;
  err(v6, 0);
  const ihl4 = Buffer.from(good);
  ihl4[0] = 0x44;
  err(ihl4, 0);
  const ihl15 = Buffer.from(good);
  ihl15[0] = 0x4f; // 60-byte header claimed, 30 bytes present
  err(ihl15, 0);
  const shortTotal = Buffer.from(good);
  shortTotal.writeUInt16BE(19, 2);
  err(shortTotal, 2);
  const longTotal = Buffer.from(good);
  longTotal.writeUInt16BE(31, 2);
  err(longTotal, 2);
  const cut = decodeIPv4(good.subarray(0, 25), { allowTruncated: true });
  t.equal(cut.truncated, true);
  t.equal(cut.payload.length, 5);

  const padded = Buffer.concat([good, Buffer.alloc(30, 0xee)]); // Ethernet minimum-frame padding
  t.equal(decodeIPv4(padded).payload.length, 10, 'payload bounded by total length');

  const frag = Buffer.from(good);
  frag.writeUInt16BE(0x2000 | 185, 6);
  const f = decodeIPv4(frag);
  t.equal(f.moreFragments, true);
  t.equal(f.dontFragment, false);
  t.equal(f.fragmentOffset, 1480);
  t.equal(f.checksumOk, false, 'header changed after the checksum');

  const withOptions = Buffer.concat([Buffer.from(good.subarray(0, 20)), Buffer.from([1, 1, 1, 0]), good.subarray(20)]);
  withOptions[0] = 0x46;
  withOptions.writeUInt16BE(34, 2);
  const o = decodeIPv4(withOptions);
  t.equal(o.headerLength, 24);
  t.same(o.payload, Buffer.alloc(10, 1));
});

const fields = fc.record({
  src: fc.ipV4(),
  dst: fc.ipV4(),
  protocol: fc.integer({ min: 0, max: 255 }),
  payload: fc.uint8Array({ maxLength: 300 }),
  id: fc.integer({ min: 0, max: 0xffff }),
  ttl: fc.integer({ min: 0, max: 255 }),
  tos: fc.integer({ min: 0, max: 255 }),
  dontFragment: fc.boolean(),
});

t.test('property: encode → decode round trip, checksum agrees with the reference', async (t) => {
  fc.assert(
    fc.property(fields, (f) => {
      const p = encodeIPv4(f);
      const d = decodeIPv4(p);
      const zeroed = Buffer.from(p.subarray(0, 20));
      zeroed.writeUInt16BE(0, 10);
      return (
        d.src === f.src &&
        d.dst === f.dst &&
        d.protocol === f.protocol &&
        d.id === f.id &&
        d.ttl === f.ttl &&
        d.tos === f.tos &&
        d.dontFragment === f.dontFragment &&
        d.totalLength === 20 + f.payload.length &&
        d.checksumOk &&
        d.checksum === refChecksum(zeroed) &&
        Buffer.from(f.payload).equals(d.payload)
      );
    }),
  );
  t.pass('round trips');
});

t.test('property: any checksum over random bytes agrees with the reference', async (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => internetChecksum(b) === refChecksum(b)));
  t.pass();
});

t.test('property: random bytes and truncations decode or throw DecodeError', async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), fc.boolean(), (b, allowTruncated) => {
      // Bias towards version 4 so the deeper checks are exercised.
      const buf = Buffer.from(b);
      if (buf.length > 0 && allowTruncated) buf[0] = 0x40 | ((buf[0] as number) & 0x0f);
      return decodesOrDecodeError(() => decodeIPv4(buf, { allowTruncated }));
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fields, fc.nat(), (f, cut) => {
      const p = encodeIPv4(f);
      const n = cut % (p.length + 1);
      const ok = decodesOrDecodeError(() => decodeIPv4(p.subarray(0, n)));
      const strict = n === p.length ? decodeIPv4(p.subarray(0, n)).truncated === false : true;
      return ok && strict;
    }),
  );
  t.pass();
});
