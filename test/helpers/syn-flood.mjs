// Run inside a lab's router namespace: spoofed TCP SYNs shaped exactly like probe SYNs (data offset 9, MSS 1380,
// NOP NOP timestamps) from SRC to DST:PORT, with probe indexes 0..IDX-1 in the sequence number's high half and
// random tag bits: a blind brute force of the 48-bit tag, or (many indexes) a flood shaped to pass the filter.
// Bounded: COUNT packets or MS milliseconds, whichever first. Prints { sent, ms, pps } as one JSON line.
//   node syn-flood.mjs SRC DST PORT COUNT MS [IDX]
import { randomBytes } from 'node:crypto';
const [src, dst, portText, countText, msText, idxText = '4'] = process.argv.slice(2);
if (!src?.startsWith('198.18.') || !dst?.startsWith('198.18.')) throw new Error('lab addresses only (198.18.0.0/15)');
const count = Math.min(Number(countText), 2_000_000);
const ms = Math.min(Number(msText), 60_000);
const idxRange = Math.max(1, Math.min(65536, Number(idxText)));
const { loadNative } = await import('../../dist/native.js');
const { encodeIPv4 } = await import('../../dist/packets/ipv4.js');
const { encodeTcp, TCP_FLAGS } = await import('../../dist/packets/tcp.js');

const { internetChecksum, pseudoHeaderSum } = await import('../../dist/packets/ipv4.js');
const tx = loadNative().open({ kind: 'raw', protocol: 255, hdrincl: true });
const port = Number(portText);
// One pool of packets built up front; each round re-draws their tag bits in place (and fixes the TCP checksum),
// so every packet sent is a new guess and the loop costs little more than the send.
const POOL = 4096;
const pool = Array.from({ length: POOL }, (_, i) =>
  encodeIPv4({ src, dst, protocol: 6, id: i, payload: encodeTcp({ srcAddr: src, dstAddr: dst, srcPort: 61000 + (i % 4000), dstPort: port, seq: 0, flags: TCP_FLAGS.SYN, mss: 1380, timestamp: { val: 0, ecr: 0 } }) }),
);
const pseudo = pseudoHeaderSum(src, dst, 6, 36);
const redraw = (pkt, r, o) => {
  const seg = pkt.subarray(20);
  seg.writeUInt16BE(r.readUInt16BE(o) % idxRange, 4); // idx: the sequence number's high half
  seg.writeUInt16BE(r.readUInt16BE(o + 2), 6); // 16 tag bits
  seg.writeUInt32BE(r.readUInt32BE(o + 4), 28); // 32 tag bits: TSval
  seg.writeUInt16BE(0, 16);
  seg.writeUInt16BE(internetChecksum(seg, pseudo), 16);
};
const t0 = performance.now();
let sent = 0;
let stop = false;
process.on('SIGTERM', () => (stop = true));
while (!stop && sent < count && performance.now() - t0 < ms) {
  const r = randomBytes(POOL * 8);
  for (let i = 0; i < POOL && sent < count; i++, sent++) {
    redraw(pool[i], r, i * 8);
    try {
      tx.send(pool[i], dst);
    } catch {
      // ENOBUFS under load: the flood is best effort.
    }
  }
  await new Promise((res) => setImmediate(res));
}
const took = performance.now() - t0;
tx.close();
process.stdout.write(`${JSON.stringify({ sent, ms: Math.round(took), pps: Math.round((sent * 1000) / took) })}\n`);
