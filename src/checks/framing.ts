// Probe framing (the catalogue's `probe.framing`): how a probe payload is wrapped into a packet, padded to a
// size with the DF bit as its shape says, and how a witness finds the payload again. Pure.
import { encodeIPv4 } from '../packets/ipv4.js';
import { findProbeInIpip, buildIpipInner, checksumNeutral } from '../packets/ipip.js';
import { PROBE_PAYLOAD_LENGTH, padProbe } from '../packets/probe.js';
import { encodeUdp } from '../packets/udp.js';
import { buildVxlanProbe, findProbeInVxlan } from '../packets/vxlan.js';
import type { Transport } from '../types.js';
import type { Framing, ProbeShape } from './catalogue.js';

/** Framings a datagram of each transport can carry (a request may pick any of them, e.g. the mtu check). */
export const FRAMINGS_OF: Readonly<Record<Transport, readonly Framing[]>> = { tcp: ['syn'], udp: ['bare', 'vxlan'], ipip: ['ipip'] };

export interface DatagramFields {
  src: string;
  dst: string;
  transport: 'udp' | 'ipip';
  /** UDP only. */
  srcPort: number | null;
  dstPort: number | null;
  id: number;
  payload: Uint8Array;
  /** The outer header's TTL (default 64): the mtu check's TTL-limited probes find the hop that limits. */
  ttl?: number;
}

function build(framing: Framing, f: DatagramFields, payload: Uint8Array, df: boolean): Buffer {
  if (f.transport === 'ipip') {
    if (framing !== 'ipip') throw new TypeError(`an IP-in-IP probe cannot be framed '${framing}'`);
    // Checksum-neutral, so a REJECT of IP-in-IP answers with ICMP instead of silence (see checksumNeutral).
    const inner = checksumNeutral(buildIpipInner({ innerSrc: f.src, innerDst: f.dst, payload }));
    return encodeIPv4({ src: f.src, dst: f.dst, protocol: 4, id: f.id, ttl: f.ttl, dontFragment: df, payload: inner });
  }
  let body: Uint8Array;
  if (framing === 'bare') body = payload;
  else if (framing === 'vxlan') body = buildVxlanProbe({ innerSrc: f.src, innerDst: f.dst, payload });
  else throw new TypeError(`a UDP probe cannot be framed '${framing}'`);
  const dgram = encodeUdp({ srcAddr: f.src, dstAddr: f.dst, srcPort: f.srcPort ?? 0, dstPort: f.dstPort ?? 0, payload: body });
  return encodeIPv4({ src: f.src, dst: f.dst, protocol: 17, id: f.id, ttl: f.ttl, dontFragment: df, payload: dgram });
}

/**
 * The IPv4 packet of a UDP / IP-in-IP probe in `shape`: framed, and padded (zeros after the probe payload)
 * so that the whole packet is `shape.size` bytes when a size is given and larger than the bare packet.
 */
export function framePacket(shape: ProbeShape, f: DatagramFields): Buffer {
  const bare = build(shape.framing, f, f.payload, shape.df);
  if (shape.size === null || shape.size <= bare.length) return bare;
  return build(shape.framing, f, padProbe(f.payload, f.payload.length + shape.size - bare.length), shape.df);
}

/** The probe payload inside a transport payload framed `framing` (unverified), or null. */
export function unframe(framing: Framing, transportPayload: Buffer): Buffer | null {
  switch (framing) {
    case 'bare':
      return transportPayload;
    case 'vxlan':
      return findProbeInVxlan(transportPayload);
    case 'ipip':
      return findProbeInIpip(transportPayload);
    default:
      return null;
  }
}

/** The largest IPv4 packet: the top of any size a probe may be asked for. */
export const MAX_PROBE_SIZE = 0xffff;

/** The smallest packet a probe framed `framing` over `transport` can be (its size with no padding). */
export function minFramedSize(framing: Framing, transport: 'udp' | 'ipip'): number {
  const f: DatagramFields = { src: '0.0.0.0', dst: '0.0.0.0', transport, srcPort: 0, dstPort: 0, id: 0, payload: new Uint8Array(PROBE_PAYLOAD_LENGTH) };
  return build(framing, f, f.payload, true).length;
}
