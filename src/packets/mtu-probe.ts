// Probes of an exact outer size for the mtu check: a complete, authenticated probe in the framing of
// one Calico encapsulation (IP-in-IP, VXLAN, WireGuard's UDP), zero-padded after the signed payload so
// the outer IPv4 packet (DF set) is `size` bytes. The witness finds the probe at the usual offset.
import { IPPROTO_IPIP, IPPROTO_UDP, IPV4_HEADER_LENGTH, encodeIPv4 } from './ipv4.js';
import { buildIpipInner } from './ipip.js';
import { PROBE_PAYLOAD_LENGTH, padProbe } from './probe.js';
import { UDP_HEADER_LENGTH, encodeUdp } from './udp.js';
import { VXLAN_MAGIC_OFFSET, buildVxlanProbe } from './vxlan.js';

export type MtuFraming = 'ipip' | 'vxlan' | 'wireguard';

/** Bytes between the outer IPv4 header and the probe payload, per framing. */
const FRAMING_BYTES: Readonly<Record<MtuFraming, number>> = {
  ipip: IPV4_HEADER_LENGTH + UDP_HEADER_LENGTH, // inner IPv4 + UDP
  vxlan: UDP_HEADER_LENGTH + VXLAN_MAGIC_OFFSET, // outer UDP + VXLAN + Ethernet + inner IPv4 + UDP
  wireguard: UDP_HEADER_LENGTH,
};

/** The smallest outer packet a framing can carry a probe in. */
export function minProbeSize(framing: MtuFraming): number {
  return IPV4_HEADER_LENGTH + FRAMING_BYTES[framing] + PROBE_PAYLOAD_LENGTH;
}

export const MAX_PROBE_SIZE = 0xffff;

export interface SizedProbeFields {
  framing: MtuFraming;
  src: string;
  dst: string;
  /** Outer IPv4 total length, bytes. */
  size: number;
  /** The signed probe payload (encodeProbePayload). */
  payload: Uint8Array;
  /** UDP framings: ports of the outer datagram. */
  srcPort?: number;
  dstPort?: number;
  id?: number;
  ttl?: number;
}

/** The outer IPv4 packet, DF set, exactly `size` bytes long. */
export function encodeSizedProbe(f: SizedProbeFields): Buffer {
  const min = minProbeSize(f.framing);
  if (!Number.isInteger(f.size) || f.size < min || f.size > MAX_PROBE_SIZE) {
    throw new RangeError(`a ${f.framing} probe is ${min}..${MAX_PROBE_SIZE} bytes, got ${f.size}`);
  }
  const padded = padProbe(f.payload, f.size - min + f.payload.length);
  const common = { src: f.src, dst: f.dst, id: f.id ?? 0, ttl: f.ttl ?? 64, dontFragment: true };
  if (f.framing === 'ipip') {
    return encodeIPv4({ ...common, protocol: IPPROTO_IPIP, payload: buildIpipInner({ innerSrc: f.src, innerDst: f.dst, payload: padded }) });
  }
  const body = f.framing === 'vxlan' ? buildVxlanProbe({ innerSrc: f.src, innerDst: f.dst, payload: padded }) : padded;
  const dgram = encodeUdp({ srcAddr: f.src, dstAddr: f.dst, srcPort: f.srcPort ?? 0, dstPort: f.dstPort ?? 0, payload: body });
  return encodeIPv4({ ...common, protocol: IPPROTO_UDP, payload: dgram });
}
