import t from 'tap';
import fc from 'fast-check';
import { DecodeError } from '../../src/packets/errors.js';
import { TCP_FLAGS, decodeTcp, encodeTcp, encodeTcpSyn, tcpChecksumOk } from '../../src/packets/tcp.js';

/** Independent TCP checksum: pseudo-header built by hand, plain sum mod 0xffff. */
function refTcpChecksum(src: string, dst: string, segment: Buffer): number {
  const seg = Buffer.from(segment);
  seg.writeUInt16BE(0, 16);
  const bytes = Buffer.concat([
    Buffer.from(src.split('.').map(Number)),
    Buffer.from(dst.split('.').map(Number)),
    Buffer.from([0, 6, seg.length >> 8, seg.length & 0xff]),
    seg,
  ]);
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) s += ((bytes[i] ?? 0) << 8) + (bytes[i + 1] ?? 0);
  return 0xffff - (s === 0 ? 0 : s % 0xffff === 0 ? 0xffff : s % 0xffff);
}

function decodesOrDecodeError(f: () => unknown): boolean {
  try {
    f();
    return true;
  } catch (err) {
    return err instanceof DecodeError;
  }
}

t.test('flags', async (t) => {
  t.same(TCP_FLAGS, { FIN: 1, SYN: 2, RST: 4, PSH: 8, ACK: 16, URG: 32, ECE: 64, CWR: 128 });
});

t.test('SYN layout', async (t) => {
  const seg = encodeTcpSyn({ srcAddr: '10.0.0.1', dstAddr: '10.0.0.2', srcPort: 40000, dstPort: 179, seq: 0xdeadbeef });
  t.equal(seg.length, 24);
  t.equal(seg.toString('hex', 0, 16), '9c4000b3deadbeef0000000060' + '02' + 'faf0');
  t.equal(seg.toString('hex', 18, 24), '0000' + '020405b4', 'urgent 0, MSS 1460');
  t.equal(seg.readUInt16BE(16), refTcpChecksum('10.0.0.1', '10.0.0.2', seg));
  t.ok(tcpChecksumOk('10.0.0.1', '10.0.0.2', seg));
  t.notOk(tcpChecksumOk('10.0.0.1', '10.0.0.3', seg), 'pseudo-header covers the addresses');
  const flipped = Buffer.from(seg);
  flipped[4] = (flipped[4] as number) ^ 0x01;
  t.notOk(tcpChecksumOk('10.0.0.1', '10.0.0.2', flipped));

  const d = decodeTcp(seg);
  t.match(d, {
    srcPort: 40000,
    dstPort: 179,
    seq: 0xdeadbeef,
    ackNumber: 0,
    headerLength: 24,
    flags: TCP_FLAGS.SYN,
    isSyn: true,
    isAck: false,
    isRst: false,
    isFin: false,
    window: 64240,
    mss: 1460,
  });
  t.equal(d.payload.length, 0);
});

t.test('other segments', async (t) => {
  const rst = encodeTcp({
    srcAddr: '192.0.2.1',
    dstAddr: '192.0.2.2',
    srcPort: 6443,
    dstPort: 50000,
    seq: 0,
    ack: 0xffffffff,
    flags: TCP_FLAGS.RST | TCP_FLAGS.ACK,
    window: 0,
    payload: Buffer.from('hello'),
  });
  t.equal(rst.length, 25);
  t.equal(rst[12], 0x50);
  const d = decodeTcp(rst);
  t.equal(d.ackNumber, 0xffffffff);
  t.ok(d.isRst && d.isAck && !d.isSyn);
  t.equal(d.mss, null);
  t.equal(d.payload.toString(), 'hello');
  t.equal(rst.readUInt16BE(16), refTcpChecksum('192.0.2.1', '192.0.2.2', rst));
  t.ok(tcpChecksumOk('192.0.2.1', '192.0.2.2', rst), 'odd-length segment');

  t.throws(() => encodeTcp({ srcAddr: '1.1.1.1', dstAddr: '2.2.2.2', srcPort: 65536, dstPort: 1, seq: 0, flags: 2 }), RangeError);
  t.throws(() => encodeTcp({ srcAddr: '1.1.1.1', dstAddr: '2.2.2.2', srcPort: 1, dstPort: 1, seq: 2 ** 32, flags: 2 }), RangeError);
  t.throws(() => encodeTcp({ srcAddr: '1.1.1.1', dstAddr: '2.2.2.2', srcPort: 1, dstPort: 1, seq: 0, flags: 256 }), RangeError);
  t.throws(() => encodeTcp({ srcAddr: 'x', dstAddr: '2.2.2.2', srcPort: 1, dstPort: 1, seq: 0, flags: 2 }), TypeError);
});

t.test('options and decode errors', async (t) => {
  const base = encodeTcp({ srcAddr: '1.1.1.1', dstAddr: '2.2.2.2', srcPort: 1, dstPort: 2, seq: 3, flags: 0x12 });
  const withOpts = (opts: number[]) => {
    const b = Buffer.concat([base, Buffer.from(opts)]);
    b[12] = ((20 + opts.length) / 4) << 4;
    return b;
  };
  t.equal(decodeTcp(withOpts([1, 1, 2, 4, 0x05, 0x78, 1, 0])).mss, 1400, 'NOP NOP MSS');
  t.equal(decodeTcp(withOpts([4, 2, 2, 4, 0x05, 0x78, 0, 0])).mss, 1400, 'SACK-permitted then MSS');
  t.equal(decodeTcp(withOpts([0, 0, 2, 4, 0x05, 0x78, 0, 0])).mss, null, 'after end of list');
  t.equal(decodeTcp(withOpts([2, 1, 0, 0])).mss, null, 'malformed length');
  t.equal(decodeTcp(withOpts([3, 9, 2, 4])).mss, null, 'option overruns the header');
  t.equal(decodeTcp(withOpts([1, 1, 1, 2])).mss, null, 'kind without length byte');

  t.throws(() => decodeTcp(base.subarray(0, 19)), DecodeError);
  const off4 = Buffer.from(base);
  off4[12] = 0x40;
  t.throws(() => decodeTcp(off4), DecodeError);
  const off6 = Buffer.from(base);
  off6[12] = 0x60;
  t.throws(() => decodeTcp(off6), DecodeError, 'data offset past the end');
  t.equal(decodeTcp(Buffer.concat([off6, Buffer.alloc(4)])).headerLength, 24);
});

const segFields = fc.record({
  srcAddr: fc.ipV4(),
  dstAddr: fc.ipV4(),
  srcPort: fc.integer({ min: 0, max: 0xffff }),
  dstPort: fc.integer({ min: 0, max: 0xffff }),
  seq: fc.integer({ min: 0, max: 0xffffffff }),
  ack: fc.integer({ min: 0, max: 0xffffffff }),
  flags: fc.integer({ min: 0, max: 0xff }),
  window: fc.integer({ min: 0, max: 0xffff }),
  mss: fc.option(fc.integer({ min: 0, max: 0xffff }), { nil: undefined }),
  payload: fc.uint8Array({ maxLength: 64 }),
});

t.test('property: round trip and checksum', async (t) => {
  fc.assert(
    fc.property(segFields, (f) => {
      const seg = encodeTcp(f);
      const d = decodeTcp(seg);
      return (
        d.srcPort === f.srcPort &&
        d.dstPort === f.dstPort &&
        d.seq === f.seq &&
        d.ackNumber === f.ack &&
        d.flags === f.flags &&
        d.isSyn === ((f.flags & 2) !== 0) &&
        d.isAck === ((f.flags & 16) !== 0) &&
        d.isRst === ((f.flags & 4) !== 0) &&
        d.isFin === ((f.flags & 1) !== 0) &&
        d.window === f.window &&
        d.mss === (f.mss ?? null) &&
        d.headerLength === (f.mss === undefined ? 20 : 24) &&
        Buffer.from(f.payload).equals(d.payload) &&
        seg.readUInt16BE(16) === refTcpChecksum(f.srcAddr, f.dstAddr, seg) &&
        tcpChecksumOk(f.srcAddr, f.dstAddr, seg)
      );
    }),
  );
  t.pass();
});

t.test('property: random bytes and truncations decode or throw DecodeError', async (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), (b) => decodesOrDecodeError(() => decodeTcp(b))), { numRuns: 2000 });
  fc.assert(
    fc.property(segFields, fc.nat(), (f, cut) => {
      const seg = encodeTcp(f);
      return decodesOrDecodeError(() => decodeTcp(seg.subarray(0, cut % (seg.length + 1))));
    }),
  );
  t.pass();
});
