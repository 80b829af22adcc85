// IP-in-IP probes (RFC 2003): the inner packet carried in an outer IPv4 packet of protocol 4, and finding the probe in it.

import { DecodeError } from './errors.js';
import { IPPROTO_UDP, decodeIPv4, encodeIPv4, onesComplementSum } from './ipv4.js';
import { PROBE_PAYLOAD_LENGTH, hasProbeMagic } from './probe.js';
import { UDP_HEADER_LENGTH, encodeUdp } from './udp.js';

/** Discard (RFC 863). A tunl0 device on the destination decapsulates the inner packet and delivers it locally. */
export const IPIP_INNER_PORT = 9;

/** Offset of the probe magic inside the outer IP payload: inner IPv4 20 + UDP 8. */
export const IPIP_MAGIC_OFFSET = 20 + UDP_HEADER_LENGTH; // 28

export interface IpipInnerFields {
  /** Normally the sender's own address. */
  innerSrc: string;
  /** The destination node itself, so a decapsulating tunl0 delivers it to a harmless local port. */
  innerDst: string;
  payload: Uint8Array;
  port?: number;
}

/** The outer IP payload of an IP-in-IP probe: inner IPv4 (IHL 5) + UDP to an unused port + probe payload. */
export function buildIpipInner(f: IpipInnerFields): Buffer {
  const port = f.port ?? IPIP_INNER_PORT;
  const udp = encodeUdp({ srcAddr: f.innerSrc, dstAddr: f.innerDst, srcPort: port, dstPort: port, payload: f.payload });
  return encodeIPv4({ src: f.innerSrc, dst: f.innerDst, protocol: IPPROTO_UDP, payload: udp });
}

/**
 * The probe payload inside an IP-in-IP outer payload, or null. Reads the inner IHL (options allowed) and
 * tolerates a capture truncated after the probe payload. Authenticity is not checked here.
 */
export function findProbeInIpip(outerPayload: Uint8Array): Buffer | null {
  try {
    const inner = decodeIPv4(outerPayload, { allowTruncated: true });
    if (inner.protocol !== IPPROTO_UDP || inner.fragmentOffset !== 0) return null;
    const start = UDP_HEADER_LENGTH;
    if (inner.payload.length < start + PROBE_PAYLOAD_LENGTH || !hasProbeMagic(inner.payload, start)) return null;
    return inner.payload.subarray(start, start + PROBE_PAYLOAD_LENGTH);
  } catch (err) {
    if (err instanceof DecodeError) return null;
    throw err;
  }
}

/**
 * The outer payload made checksum-neutral: two bytes appended so that its 16-bit one's-complement sum is
 * 0xffff. Linux's REJECT target first verifies a checksum over a protocol-4 payload (nf_reject_verify_csum
 * / nf_ip_checksum) and sends no ICMP when it fails; with this padding a REJECT of IP-in-IP becomes
 * visible. The inner packet's own total length stays authoritative, so a decapsulating node ignores the
 * two bytes (ip_rcv trims to it), and so does findProbeInIpip.
 */
export function checksumNeutral(inner: Uint8Array): Buffer {
  const out = Buffer.alloc(inner.length + 2);
  out.set(inner, 0);
  const sum = onesComplementSum(out); // the two zero bytes add nothing
  const need = 0xffff - sum; // one's-complement difference to 0xffff (0 when already there)
  // The pad's two bytes form one 16-bit word when they start at an even offset; at an odd one they land
  // in two words, low byte first (the sum is byte-order independent up to a swap).
  if (inner.length % 2 === 0) out.writeUInt16BE(need, inner.length);
  else {
    out[inner.length] = need & 0xff;
    out[inner.length + 1] = need >> 8;
  }
  return out;
}
