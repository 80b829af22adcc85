// UDP datagrams: encode with pseudo-header checksum, decode (RFC 768).

import { DecodeError, need } from './errors.js';
import { IPPROTO_UDP, internetChecksum, pseudoHeaderSum } from './ipv4.js';

export const UDP_HEADER_LENGTH = 8;

export interface UdpFields {
  srcAddr: string;
  dstAddr: string;
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

function checkPort(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError(`${name} must be an integer 0..65535, got ${v}`);
}

export function encodeUdp(f: UdpFields): Buffer {
  checkPort('srcPort', f.srcPort);
  checkPort('dstPort', f.dstPort);
  const length = UDP_HEADER_LENGTH + f.payload.length;
  if (length > 0xffff) throw new RangeError(`UDP datagram too long: ${length} bytes`);
  const buf = Buffer.alloc(length);
  buf.writeUInt16BE(f.srcPort, 0);
  buf.writeUInt16BE(f.dstPort, 2);
  buf.writeUInt16BE(length, 4);
  buf.set(f.payload, UDP_HEADER_LENGTH);
  const sum = internetChecksum(buf, pseudoHeaderSum(f.srcAddr, f.dstAddr, IPPROTO_UDP, length));
  // A computed 0 is sent as all ones: 0 on the wire means "no checksum" (RFC 768).
  buf.writeUInt16BE(sum === 0 ? 0xffff : sum, 6);
  return buf;
}

export interface UdpDatagram {
  srcPort: number;
  dstPort: number;
  length: number;
  checksum: number;
  /** Bounded by the length field. */
  payload: Buffer;
}

export interface DecodeUdpOptions {
  /** Accept a datagram cut short (a snap-length capture of a large probe): the payload is what is there. */
  allowTruncated?: boolean;
}

export function decodeUdp(input: Uint8Array, opts: DecodeUdpOptions = {}): UdpDatagram {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.length);
  need(buf, 0, UDP_HEADER_LENGTH, 'udp header');
  const length = buf.readUInt16BE(4);
  if (length < UDP_HEADER_LENGTH) throw new DecodeError('udp header', 4, `length ${length} is below 8`);
  if (length > buf.length && !opts.allowTruncated) {
    throw new DecodeError('udp datagram', 4, `length ${length} exceeds the ${buf.length} bytes present`);
  }
  return {
    srcPort: buf.readUInt16BE(0),
    dstPort: buf.readUInt16BE(2),
    length,
    checksum: buf.readUInt16BE(6),
    payload: buf.subarray(UDP_HEADER_LENGTH, Math.min(length, buf.length)),
  };
}

/** True when the checksum is right, or absent (0). `datagram` is bounded by its length field. */
export function udpChecksumOk(srcAddr: string, dstAddr: string, datagram: Uint8Array): boolean {
  if (datagram.length < UDP_HEADER_LENGTH || datagram.length > 0xffff) return false;
  if ((datagram[6] as number) === 0 && (datagram[7] as number) === 0) return true;
  return internetChecksum(datagram, pseudoHeaderSum(srcAddr, dstAddr, IPPROTO_UDP, datagram.length)) === 0;
}
