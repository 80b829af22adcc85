// ICMP error messages (RFC 792, RFC 1812 §5.2.7.1 for code 13): decode the packet an error quotes, so a
// reject can be matched to the probe it answers and attributed to the address that sent it.

import { DecodeError, need } from './errors.js';
import { IPPROTO_IPIP, IPPROTO_TCP, IPPROTO_UDP, bytesToIp, decodeIPv4, internetChecksum } from './ipv4.js';

export const ICMP_HEADER_LENGTH = 8;
export const ICMP_DEST_UNREACHABLE = 3;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_PARAMETER_PROBLEM = 12;
/** Destination unreachable code 4: fragmentation needed and DF set (RFC 792; next-hop MTU: RFC 1191). */
export const ICMP_FRAG_NEEDED = 4;

const ERROR_TYPES: ReadonlySet<number> = new Set([ICMP_DEST_UNREACHABLE, ICMP_TIME_EXCEEDED, ICMP_PARAMETER_PROBLEM]);

export function isIcmpError(type: number): boolean {
  return ERROR_TYPES.has(type);
}

export interface IcmpErrorFields {
  type: number;
  code: number;
  /** The offending packet's IP header and at least its first 8 payload bytes. */
  quoted: Uint8Array;
  /** The 32-bit word after the checksum (unused, next-hop MTU, or parameter-problem pointer). */
  rest?: number;
}

export function encodeIcmpError(f: IcmpErrorFields): Buffer {
  const rest = f.rest ?? 0;
  for (const [name, v, max] of [['type', f.type, 0xff], ['code', f.code, 0xff], ['rest', rest, 0xffffffff]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${name} must be an integer 0..${max}, got ${v}`);
  }
  const buf = Buffer.alloc(ICMP_HEADER_LENGTH + f.quoted.length);
  buf[0] = f.type;
  buf[1] = f.code;
  buf.writeUInt32BE(rest, 4);
  buf.set(f.quoted, ICMP_HEADER_LENGTH);
  buf.writeUInt16BE(internetChecksum(buf), 2);
  return buf;
}

/** What an ICMP error tells about the packet that caused it. */
export interface IcmpQuoted {
  src: string;
  dst: string;
  protocol: number;
  id: number;
  ttl: number;
  /** The offending packet's total length as its header says (the quote itself is shorter). */
  totalLength: number;
  /** TCP/UDP ports when the quote holds them (first fragment, ≥ 4 bytes after the IP header). */
  srcPort: number | null;
  dstPort: number | null;
  /** TCP sequence number when the quote holds it (≥ 8 bytes after the IP header). */
  tcpSeq: number | null;
  /** For a quoted IP-in-IP packet, the inner header's addresses when quoted (Linux quotes up to 576 bytes). */
  ipipInner: { src: string; dst: string } | null;
}

export interface IcmpMessage {
  type: number;
  code: number;
  checksumOk: boolean;
  /** The word after the checksum (e.g. next-hop MTU for "fragmentation needed"). */
  rest: number;
  /** Parsed for error types 3, 11 and 12; null for other types or when the quote is not an IPv4 header. */
  quoted: IcmpQuoted | null;
}

export function decodeIcmp(input: Uint8Array): IcmpMessage {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.length);
  need(buf, 0, ICMP_HEADER_LENGTH, 'icmp header');
  const type = buf[0] as number;
  return {
    type,
    code: buf[1] as number,
    checksumOk: internetChecksum(buf) === 0,
    rest: buf.readUInt32BE(4),
    quoted: isIcmpError(type) ? parseQuoted(buf.subarray(ICMP_HEADER_LENGTH)) : null,
  };
}

function parseQuoted(q: Buffer): IcmpQuoted | null {
  // The quoted header's total length describes the original packet, not the quote: always "truncated".
  let ip;
  try {
    ip = decodeIPv4(q, { allowTruncated: true });
  } catch (err) {
    if (err instanceof DecodeError) return null; // a garbled quote is reported as "no quote"
    throw err;
  }
  const l4 = ip.payload;
  const first = ip.fragmentOffset === 0;
  const ports = first && (ip.protocol === IPPROTO_TCP || ip.protocol === IPPROTO_UDP) && l4.length >= 4;
  let ipipInner: IcmpQuoted['ipipInner'] = null;
  if (first && ip.protocol === IPPROTO_IPIP && l4.length >= 20 && (l4[0] as number) >> 4 === 4) {
    ipipInner = { src: bytesToIp(l4, 12), dst: bytesToIp(l4, 16) };
  }
  return {
    src: ip.src,
    dst: ip.dst,
    protocol: ip.protocol,
    id: ip.id,
    ttl: ip.ttl,
    totalLength: ip.totalLength,
    srcPort: ports ? l4.readUInt16BE(0) : null,
    dstPort: ports ? l4.readUInt16BE(2) : null,
    tcpSeq: first && ip.protocol === IPPROTO_TCP && l4.length >= 8 ? l4.readUInt32BE(4) : null,
    ipipInner,
  };
}

/**
 * For a "fragmentation needed and DF set", the next-hop MTU it names (RFC 1191 §4: the low 16 bits of
 * the word after the checksum); null for any other message, and for a pre-RFC 1191 router that sends 0.
 */
export function nextHopMtu(m: Pick<IcmpMessage, 'type' | 'code' | 'rest'>): number | null {
  if (m.type !== ICMP_DEST_UNREACHABLE || m.code !== ICMP_FRAG_NEEDED) return null;
  const mtu = m.rest & 0xffff;
  return mtu === 0 ? null : mtu;
}

const UNREACHABLE: readonly string[] = [
  'network unreachable',
  'host unreachable',
  'protocol unreachable',
  'port unreachable',
  'fragmentation needed and DF set',
  'source route failed',
  'destination network unknown',
  'destination host unknown',
  'source host isolated',
  'network administratively prohibited',
  'host administratively prohibited',
  'network unreachable for TOS',
  'host unreachable for TOS',
  'communication administratively prohibited',
  'host precedence violation',
  'precedence cutoff in effect',
];

/** Human words for an ICMP type/code, as a report shows them. */
export function describeIcmp(type: number, code: number): string {
  switch (type) {
    case 0:
      return 'echo reply';
    case ICMP_DEST_UNREACHABLE:
      return UNREACHABLE[code] ?? `destination unreachable (code ${code})`;
    case 5:
      return 'redirect';
    case 8:
      return 'echo request';
    case ICMP_TIME_EXCEEDED:
      return code === 0 ? 'TTL exceeded in transit' : code === 1 ? 'fragment reassembly time exceeded' : `time exceeded (code ${code})`;
    case ICMP_PARAMETER_PROBLEM:
      return code === 0
        ? 'parameter problem (pointer indicates the error)'
        : code === 1
          ? 'parameter problem (missing a required option)'
          : code === 2
            ? 'parameter problem (bad length)'
            : `parameter problem (code ${code})`;
    default:
      return `ICMP type ${type} code ${code}`;
  }
}
