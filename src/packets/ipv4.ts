// IPv4 addresses, the Internet checksum and the IPv4 header: encode and decode (RFC 791, checksum RFC 1071).

import { DecodeError, need } from './errors.js';

export const IPPROTO_ICMP = 1;
export const IPPROTO_IPIP = 4;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Strict dotted quad: four decimal octets 0..255, no leading zeros (which some parsers read as octal). */
export function isIPv4(s: unknown): s is string {
  return typeof s === 'string' && IPV4_RE.test(s);
}

export function ipToBytes(a: string): Buffer {
  if (!isIPv4(a)) throw new TypeError(`address must be a dotted-quad IPv4 address, got ${JSON.stringify(a)}`);
  return Buffer.from(a.split('.').map(Number));
}

export function bytesToIp(buf: Uint8Array, off = 0): string {
  need(buf, off, 4, 'ipv4 address');
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

/** One's-complement sum of 16-bit big-endian words, folded to 16 bits (odd trailing byte padded with zero). */
export function onesComplementSum(buf: Uint8Array, initial = 0): number {
  let sum = initial;
  const even = buf.length & ~1;
  for (let i = 0; i < even; i += 2) sum += ((buf[i] as number) << 8) | (buf[i + 1] as number);
  if (even !== buf.length) sum += (buf[even] as number) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** RFC 1071 Internet checksum. Over a buffer that already contains its correct checksum, this is 0. */
export function internetChecksum(buf: Uint8Array, initial = 0): number {
  return ~onesComplementSum(buf, initial) & 0xffff;
}

/** Sum of the TCP/UDP pseudo-header (RFC 9293 §3.1, RFC 768), to seed internetChecksum. */
export function pseudoHeaderSum(srcAddr: string, dstAddr: string, protocol: number, length: number): number {
  const ph = Buffer.alloc(12);
  ipToBytes(srcAddr).copy(ph, 0);
  ipToBytes(dstAddr).copy(ph, 4);
  ph[9] = protocol;
  ph.writeUInt16BE(length, 10);
  return onesComplementSum(ph);
}

export interface IPv4Fields {
  src: string;
  dst: string;
  protocol: number;
  payload: Uint8Array;
  id?: number;
  ttl?: number;
  tos?: number;
  dontFragment?: boolean;
}

export const IPV4_HEADER_LENGTH = 20;

function checkUint(name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${name} must be an integer 0..${max}, got ${v}`);
}

/** IPv4 header without options (IHL 5) + payload, with total length and header checksum filled in. */
export function encodeIPv4(f: IPv4Fields): Buffer {
  const { id = 0, ttl = 64, tos = 0, dontFragment = true } = f;
  checkUint('protocol', f.protocol, 0xff);
  checkUint('id', id, 0xffff);
  checkUint('ttl', ttl, 0xff);
  checkUint('tos', tos, 0xff);
  const total = IPV4_HEADER_LENGTH + f.payload.length;
  if (total > 0xffff) throw new RangeError(`IPv4 packet too long: ${total} bytes`);
  const buf = Buffer.alloc(total);
  buf[0] = 0x45;
  buf[1] = tos;
  buf.writeUInt16BE(total, 2);
  buf.writeUInt16BE(id, 4);
  buf.writeUInt16BE(dontFragment ? 0x4000 : 0, 6);
  buf[8] = ttl;
  buf[9] = f.protocol;
  ipToBytes(f.src).copy(buf, 12);
  ipToBytes(f.dst).copy(buf, 16);
  buf.writeUInt16BE(internetChecksum(buf.subarray(0, IPV4_HEADER_LENGTH)), 10);
  buf.set(f.payload, IPV4_HEADER_LENGTH);
  return buf;
}

export interface IPv4Packet {
  version: number;
  ihl: number;
  headerLength: number;
  tos: number;
  totalLength: number;
  id: number;
  dontFragment: boolean;
  moreFragments: boolean;
  /** In bytes (the header field counts 8-byte units). */
  fragmentOffset: number;
  ttl: number;
  protocol: number;
  checksum: number;
  checksumOk: boolean;
  src: string;
  dst: string;
  /** Bounded by totalLength (link-layer padding is not payload); by the buffer when truncated. */
  payload: Buffer;
  /** The buffer ends before totalLength (only possible with allowTruncated, e.g. a snap-length capture). */
  truncated: boolean;
}

export interface DecodeIPv4Options {
  /**
   * Accept a buffer shorter than totalLength (a capture cut at the filter's snap length, or the header
   * quoted in an ICMP error) instead of throwing; the payload is then what the buffer holds.
   */
  allowTruncated?: boolean;
}

export function decodeIPv4(input: Uint8Array, opts: DecodeIPv4Options = {}): IPv4Packet {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.length);
  need(buf, 0, IPV4_HEADER_LENGTH, 'ipv4 header');
  const b0 = buf[0] as number;
  const version = b0 >> 4;
  const ihl = b0 & 0x0f;
  if (version !== 4) throw new DecodeError('ipv4 header', 0, `version is ${version}, not 4`);
  if (ihl < 5) throw new DecodeError('ipv4 header', 0, `IHL ${ihl} is below 5`);
  const headerLength = ihl * 4;
  need(buf, 0, headerLength, 'ipv4 header with options');
  const totalLength = buf.readUInt16BE(2);
  if (totalLength < headerLength) {
    throw new DecodeError('ipv4 header', 2, `total length ${totalLength} is shorter than the header (${headerLength})`);
  }
  const truncated = totalLength > buf.length;
  if (truncated && !opts.allowTruncated) {
    throw new DecodeError('ipv4 packet', 2, `total length ${totalLength} exceeds the ${buf.length} bytes present`);
  }
  const frag = buf.readUInt16BE(6);
  return {
    version,
    ihl,
    headerLength,
    tos: buf[1] as number,
    totalLength,
    id: buf.readUInt16BE(4),
    dontFragment: (frag & 0x4000) !== 0,
    moreFragments: (frag & 0x2000) !== 0,
    fragmentOffset: (frag & 0x1fff) * 8,
    ttl: buf[8] as number,
    protocol: buf[9] as number,
    checksum: buf.readUInt16BE(10),
    checksumOk: internetChecksum(buf.subarray(0, headerLength)) === 0,
    src: bytesToIp(buf, 12),
    dst: bytesToIp(buf, 16),
    payload: buf.subarray(headerLength, Math.min(totalLength, buf.length)),
    truncated,
  };
}
