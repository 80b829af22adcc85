import t from 'tap';
import fc from 'fast-check';
import { DecodeError } from '../../src/packets/errors.js';
import { decodeUdp, encodeUdp, udpChecksumOk } from '../../src/packets/udp.js';

function refUdpChecksum(src: string, dst: string, datagram: Buffer): number {
  const d = Buffer.from(datagram);
  d.writeUInt16BE(0, 6);
  const bytes = Buffer.concat([
    Buffer.from(src.split('.').map(Number)),
    Buffer.from(dst.split('.').map(Number)),
    Buffer.from([0, 17, d.length >> 8, d.length & 0xff]),
    d,
  ]);
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) s += ((bytes[i] ?? 0) << 8) + (bytes[i + 1] ?? 0);
  const c = 0xffff - (s === 0 ? 0 : s % 0xffff === 0 ? 0xffff : s % 0xffff);
  return c === 0 ? 0xffff : c;
}

t.test('layout and checksum', async (t) => {
  const d = encodeUdp({ srcAddr: '10.1.0.1', dstAddr: '10.1.0.2', srcPort: 33333, dstPort: 51820, payload: Buffer.from('probe') });
  t.equal(d.length, 13);
  t.equal(d.toString('hex', 0, 6), '8235' + 'ca6c' + '000d');
  t.equal(d.readUInt16BE(6), refUdpChecksum('10.1.0.1', '10.1.0.2', d));
  t.ok(udpChecksumOk('10.1.0.1', '10.1.0.2', d));
  t.notOk(udpChecksumOk('10.1.0.9', '10.1.0.2', d));
  const dec = decodeUdp(d);
  t.same({ ...dec, payload: dec.payload.toString() }, { srcPort: 33333, dstPort: 51820, length: 13, checksum: d.readUInt16BE(6), payload: 'probe' });
});

t.test('a computed checksum of 0 is sent as 0xffff', async (t) => {
  const args = { srcAddr: '10.0.0.1', dstAddr: '10.0.0.2', srcPort: 1000, dstPort: 2000 };
  const probe = encodeUdp({ ...args, payload: Buffer.alloc(2) });
  // Choosing the payload word equal to the zero-payload checksum makes the sum all ones.
  const payload = Buffer.alloc(2);
  payload.writeUInt16BE(probe.readUInt16BE(6));
  const d = encodeUdp({ ...args, payload });
  t.equal(d.readUInt16BE(6), 0xffff);
  t.ok(udpChecksumOk(args.srcAddr, args.dstAddr, d));
  const none = Buffer.from(d);
  none.writeUInt16BE(0, 6);
  t.ok(udpChecksumOk(args.srcAddr, args.dstAddr, none), 'zero means no checksum');
  t.notOk(udpChecksumOk(args.srcAddr, args.dstAddr, d.subarray(0, 7)));
});

t.test('decode bounds and errors', async (t) => {
  const d = encodeUdp({ srcAddr: '1.1.1.1', dstAddr: '2.2.2.2', srcPort: 1, dstPort: 2, payload: Buffer.alloc(4, 7) });
  t.equal(decodeUdp(Buffer.concat([d, Buffer.alloc(6)])).payload.length, 4, 'bounded by the length field');
  t.throws(() => decodeUdp(d.subarray(0, 7)), DecodeError);
  t.throws(() => decodeUdp(d.subarray(0, 11)), DecodeError, 'length exceeds the buffer');
  const short = Buffer.from(d);
  short.writeUInt16BE(7, 4);
  t.throws(() => decodeUdp(short), DecodeError);
  t.throws(() => encodeUdp({ srcAddr: '1.1.1.1', dstAddr: '2.2.2.2', srcPort: -1, dstPort: 2, payload: Buffer.alloc(0) }), RangeError);
  t.throws(() => encodeUdp({ srcAddr: '1.1.1.1', dstAddr: '2.2.2.2', srcPort: 1, dstPort: 2, payload: Buffer.alloc(65528) }), RangeError);
});

const fields = fc.record({
  srcAddr: fc.ipV4(),
  dstAddr: fc.ipV4(),
  srcPort: fc.integer({ min: 0, max: 0xffff }),
  dstPort: fc.integer({ min: 0, max: 0xffff }),
  payload: fc.uint8Array({ maxLength: 100 }),
});

t.test('property: round trip and checksum', async (t) => {
  fc.assert(
    fc.property(fields, (f) => {
      const d = encodeUdp(f);
      const dec = decodeUdp(d);
      return (
        dec.srcPort === f.srcPort &&
        dec.dstPort === f.dstPort &&
        dec.length === 8 + f.payload.length &&
        Buffer.from(f.payload).equals(dec.payload) &&
        dec.checksum === refUdpChecksum(f.srcAddr, f.dstAddr, d) &&
        udpChecksumOk(f.srcAddr, f.dstAddr, d)
      );
    }),
  );
  t.pass();
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
  fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), (b) => ok(() => decodeUdp(b))), { numRuns: 2000 });
  fc.assert(fc.property(fields, fc.nat(), (f, cut) => {
    const d = encodeUdp(f);
    return ok(() => decodeUdp(d.subarray(0, cut % (d.length + 1))));
  }));
  t.pass();
});
