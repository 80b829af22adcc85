import t from 'tap';
import fc from 'fast-check';
import { DecodeError } from '../../src/packets/errors.js';
import { encodeIPv4 } from '../../src/packets/ipv4.js';
import { decodeIcmp, describeIcmp, encodeIcmpError, isIcmpError } from '../../src/packets/icmp.js';
import { buildIpipInner } from '../../src/packets/ipip.js';
import { encodeTcpSyn } from '../../src/packets/tcp.js';
import { encodeUdp } from '../../src/packets/udp.js';

function refChecksum(buf: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < buf.length; i += 2) s += ((buf[i] ?? 0) << 8) + (buf[i + 1] ?? 0);
  return 0xffff - (s === 0 ? 0 : s % 0xffff === 0 ? 0xffff : s % 0xffff);
}

const SRC = '10.0.0.1';
const DST = '10.0.0.2';
const syn = encodeIPv4({
  src: SRC,
  dst: DST,
  protocol: 6,
  id: 0x4242,
  ttl: 1,
  payload: encodeTcpSyn({ srcAddr: SRC, dstAddr: DST, srcPort: 45000, dstPort: 179, seq: 0x12345678 }),
});
const udp = encodeIPv4({ src: SRC, dst: DST, protocol: 17, payload: encodeUdp({ srcAddr: SRC, dstAddr: DST, srcPort: 40001, dstPort: 4789, payload: Buffer.alloc(50) }) });
const ipip = encodeIPv4({ src: SRC, dst: DST, protocol: 4, payload: buildIpipInner({ innerSrc: SRC, innerDst: DST, payload: Buffer.alloc(54) }) });

t.test('encode: checksum over header and quote', async (t) => {
  const m = encodeIcmpError({ type: 3, code: 13, quoted: syn.subarray(0, 28) });
  t.equal(m.length, 36);
  t.equal(m[0], 3);
  t.equal(m[1], 13);
  t.equal(m.readUInt32BE(4), 0);
  const zeroed = Buffer.from(m);
  zeroed.writeUInt16BE(0, 2);
  t.equal(m.readUInt16BE(2), refChecksum(zeroed));
  t.equal(encodeIcmpError({ type: 3, code: 4, quoted: syn.subarray(0, 28), rest: 1400 }).readUInt32BE(4), 1400);
  t.throws(() => encodeIcmpError({ type: 256, code: 0, quoted: Buffer.alloc(0) }), RangeError);
});

t.test('decode a reject of a TCP SYN', async (t) => {
  const d = decodeIcmp(encodeIcmpError({ type: 3, code: 13, quoted: syn.subarray(0, 28) }));
  t.same(d, {
    type: 3,
    code: 13,
    checksumOk: true,
    rest: 0,
    quoted: { src: SRC, dst: DST, protocol: 6, id: 0x4242, ttl: 1, totalLength: 44, srcPort: 45000, dstPort: 179, tcpSeq: 0x12345678, ipipInner: null },
  });
  const short = decodeIcmp(encodeIcmpError({ type: 11, code: 0, quoted: syn.subarray(0, 24) }));
  t.match(short.quoted, { srcPort: 45000, dstPort: 179, tcpSeq: null }, 'only 4 bytes quoted: ports, no sequence');
  const tiny = decodeIcmp(encodeIcmpError({ type: 11, code: 0, quoted: syn.subarray(0, 22) }));
  t.match(tiny.quoted, { protocol: 6, srcPort: null, dstPort: null, tcpSeq: null });
  const corrupted = encodeIcmpError({ type: 3, code: 3, quoted: syn.subarray(0, 28) });
  corrupted[20] = (corrupted[20] as number) ^ 1;
  t.equal(decodeIcmp(corrupted).checksumOk, false);
});

t.test('decode UDP and IP-in-IP quotes', async (t) => {
  const u = decodeIcmp(encodeIcmpError({ type: 3, code: 3, quoted: udp.subarray(0, 28) }));
  t.match(u.quoted, { protocol: 17, srcPort: 40001, dstPort: 4789, tcpSeq: null, ipipInner: null });
  const whole = decodeIcmp(encodeIcmpError({ type: 3, code: 10, quoted: ipip }));
  t.same(whole.quoted?.ipipInner, { src: SRC, dst: DST });
  t.equal(whole.quoted?.srcPort, null, 'IP-in-IP has no ports');
  const eight = decodeIcmp(encodeIcmpError({ type: 3, code: 2, quoted: ipip.subarray(0, 28) }));
  t.equal(eight.quoted?.protocol, 4);
  t.equal(eight.quoted?.ipipInner, null, 'RFC 792 minimum quote cannot hold the inner addresses');
});

t.test('quotes that cannot be read', async (t) => {
  t.equal(decodeIcmp(encodeIcmpError({ type: 0, code: 0, quoted: syn })).quoted, null, 'echo reply is not an error');
  t.equal(decodeIcmp(encodeIcmpError({ type: 3, code: 1, quoted: Buffer.alloc(28) })).quoted, null, 'not an IPv4 header');
  t.equal(decodeIcmp(encodeIcmpError({ type: 3, code: 1, quoted: syn.subarray(0, 19) })).quoted, null, 'short');
  const frag = Buffer.from(syn.subarray(0, 28));
  frag.writeUInt16BE(0x0010, 6);
  t.match(decodeIcmp(encodeIcmpError({ type: 11, code: 1, quoted: frag })).quoted, { protocol: 6, srcPort: null, tcpSeq: null }, 'non-first fragment has no ports');
  t.throws(() => decodeIcmp(Buffer.alloc(7)), DecodeError);
  for (const ty of [3, 11, 12]) t.ok(isIcmpError(ty));
  for (const ty of [0, 4, 5, 8]) t.notOk(isIcmpError(ty));
});

t.test('describeIcmp', async (t) => {
  t.equal(describeIcmp(3, 3), 'port unreachable');
  t.equal(describeIcmp(3, 13), 'communication administratively prohibited');
  t.equal(describeIcmp(3, 1), 'host unreachable');
  t.equal(describeIcmp(3, 0), 'network unreachable');
  t.equal(describeIcmp(3, 10), 'host administratively prohibited');
  t.equal(describeIcmp(3, 4), 'fragmentation needed and DF set');
  t.equal(describeIcmp(3, 99), 'destination unreachable (code 99)');
  t.equal(describeIcmp(11, 0), 'TTL exceeded in transit');
  t.equal(describeIcmp(11, 1), 'fragment reassembly time exceeded');
  t.match(describeIcmp(12, 0), /^parameter problem/);
  t.equal(describeIcmp(42, 7), 'ICMP type 42 code 7');
});

t.test('property: random bytes and truncations decode or throw DecodeError', async (t) => {
  const ok = (f: () => unknown) => {
    try {
      f();
      return true;
    } catch (err) {
      return err instanceof DecodeError;
    }
  };
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 90 }), fc.constantFrom(0, 3, 11, 12), fc.boolean(), (b, type, v4) => {
      const buf = Buffer.from(b);
      if (buf.length > 0) buf[0] = type;
      if (v4 && buf.length > 8) buf[8] = 0x40 | ((buf[8] as number) & 0x0f);
      return ok(() => decodeIcmp(buf));
    }),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(fc.constantFrom(syn, udp, ipip), fc.nat(), (pkt, cut) => {
      const m = encodeIcmpError({ type: 3, code: 3, quoted: pkt });
      return ok(() => decodeIcmp(m.subarray(0, cut % (m.length + 1))));
    }),
  );
  t.pass();
});
