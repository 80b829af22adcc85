// Packet surgery shared by the codec and filter tests.
import { internetChecksum } from '../../src/packets/ipv4.js';

/**
 * Insert `words` 4-byte words of NOP options into the IHL-5 IPv4 header that starts at `at`, fixing the
 * total length and the header checksum.
 */
export function withIpOptions(pkt: Buffer, words: number, at = 0): Buffer {
  const out = Buffer.concat([pkt.subarray(0, at + 20), Buffer.alloc(words * 4, 1), pkt.subarray(at + 20)]);
  out[at] = 0x45 + words;
  out.writeUInt16BE(out.length - at, at + 2);
  out.writeUInt16BE(0, at + 10);
  out.writeUInt16BE(internetChecksum(out.subarray(at, at + 20 + words * 4)), at + 10);
  return out;
}
