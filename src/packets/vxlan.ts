// Ethernet II frames (IEEE 802.3) and VXLAN encapsulation (RFC 7348): the framed VXLAN probe and finding it again.

import { DecodeError, need } from './errors.js';
import { IPPROTO_UDP, decodeIPv4, encodeIPv4 } from './ipv4.js';
import { PROBE_PAYLOAD_LENGTH, hasProbeMagic } from './probe.js';
import { UDP_HEADER_LENGTH, encodeUdp } from './udp.js';

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_VLAN = 0x8100;
export const ETHERNET_HEADER_LENGTH = 14;
export const VXLAN_HEADER_LENGTH = 8;
/** The I flag: the VNI field is valid (RFC 7348 §5). */
export const VXLAN_FLAG_VNI = 0x08;

/**
 * VNI of our probes. Calico's VXLAN device uses VNI 4096 (IPv4) and 4097 (IPv6) by default (Felix
 * VXLANVNI), flannel/Canal use 1: a receiving vxlan device has no FDB for 0xCA11C0, so the kernel
 * drops the decapsulated frame instead of delivering it into the overlay, while the raw UDP
 * socket still witnesses the datagram. Mnemonic: "CALLC0".
 */
export const PROBE_VNI = 0xca11c0;

/** Inner MACs: locally administered (bit 1 of the first octet), unicast, so they collide with no real NIC. */
export const PROBE_INNER_SRC_MAC = '02:ca:11:c0:00:01';
export const PROBE_INNER_DST_MAC = '02:ca:11:c0:00:02';
/** Discard (RFC 863): the inner datagram goes to a port nothing should serve. */
export const PROBE_INNER_PORT = 9;

/** Offset of the probe magic inside the outer UDP payload: VXLAN 8 + Ethernet 14 + IPv4 20 + UDP 8. */
export const VXLAN_MAGIC_OFFSET = VXLAN_HEADER_LENGTH + ETHERNET_HEADER_LENGTH + 20 + UDP_HEADER_LENGTH; // 50

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

export function macToBytes(mac: string | Uint8Array): Buffer {
  if (typeof mac === 'string') {
    if (!MAC_RE.test(mac)) throw new TypeError(`MAC address must look like 02:00:00:00:00:01, got ${JSON.stringify(mac)}`);
    return Buffer.from(mac.replace(/:/g, ''), 'hex');
  }
  if (mac.length !== 6) throw new TypeError(`MAC address must be 6 bytes, got ${mac.length}`);
  return Buffer.from(mac);
}

export function bytesToMac(buf: Uint8Array, off = 0): string {
  need(buf, off, 6, 'mac address');
  return Array.from(buf.subarray(off, off + 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}

export interface EthernetFields {
  dst: string | Uint8Array;
  src: string | Uint8Array;
  etherType: number;
  payload: Uint8Array;
}

export function encodeEthernet(f: EthernetFields): Buffer {
  if (!Number.isInteger(f.etherType) || f.etherType < 0 || f.etherType > 0xffff) {
    throw new RangeError(`etherType must be an integer 0..65535, got ${f.etherType}`);
  }
  const buf = Buffer.alloc(ETHERNET_HEADER_LENGTH + f.payload.length);
  macToBytes(f.dst).copy(buf, 0);
  macToBytes(f.src).copy(buf, 6);
  buf.writeUInt16BE(f.etherType, 12);
  buf.set(f.payload, ETHERNET_HEADER_LENGTH);
  return buf;
}

export interface EthernetFrame {
  dst: string;
  src: string;
  /** After any 802.1Q tag. */
  etherType: number;
  /** 802.1Q VLAN id, null when untagged. */
  vlan: number | null;
  payload: Buffer;
}

export function decodeEthernet(input: Uint8Array): EthernetFrame {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.length);
  need(buf, 0, ETHERNET_HEADER_LENGTH, 'ethernet header');
  let etherType = buf.readUInt16BE(12);
  let vlan: number | null = null;
  let start = ETHERNET_HEADER_LENGTH;
  if (etherType === ETHERTYPE_VLAN) {
    need(buf, 0, ETHERNET_HEADER_LENGTH + 4, 'ethernet 802.1Q header');
    vlan = buf.readUInt16BE(14) & 0x0fff;
    etherType = buf.readUInt16BE(16);
    start += 4;
  }
  return { dst: bytesToMac(buf, 0), src: bytesToMac(buf, 6), etherType, vlan, payload: buf.subarray(start) };
}

function checkVni(vni: number): void {
  if (!Number.isInteger(vni) || vni < 0 || vni > 0xffffff) throw new RangeError(`vni must be an integer 0..16777215, got ${vni}`);
}

export function encodeVxlan(f: { vni: number; payload: Uint8Array }): Buffer {
  checkVni(f.vni);
  const buf = Buffer.alloc(VXLAN_HEADER_LENGTH + f.payload.length);
  buf[0] = VXLAN_FLAG_VNI;
  buf.writeUIntBE(f.vni, 4, 3);
  buf.set(f.payload, VXLAN_HEADER_LENGTH);
  return buf;
}

export interface VxlanPacket {
  flags: number;
  vni: number;
  /** The inner Ethernet frame. */
  payload: Buffer;
}

/** Throws DecodeError when the I flag is clear: RFC 7348 receivers discard such packets. */
export function decodeVxlan(input: Uint8Array): VxlanPacket {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.length);
  need(buf, 0, VXLAN_HEADER_LENGTH, 'vxlan header');
  const flags = buf[0] as number;
  if ((flags & VXLAN_FLAG_VNI) === 0) throw new DecodeError('vxlan header', 0, 'I flag (valid VNI) is clear');
  return { flags, vni: buf.readUIntBE(4, 3), payload: buf.subarray(VXLAN_HEADER_LENGTH) };
}

export interface VxlanProbeFields {
  innerSrc: string;
  innerDst: string;
  /** The probe payload (probe.ts), possibly padded. */
  payload: Uint8Array;
  vni?: number;
}

/** The outer UDP payload of a VXLAN probe: VXLAN + Ethernet + IPv4 (IHL 5) + UDP to port 9 + probe payload. */
export function buildVxlanProbe(f: VxlanProbeFields): Buffer {
  const udp = encodeUdp({
    srcAddr: f.innerSrc,
    dstAddr: f.innerDst,
    srcPort: PROBE_INNER_PORT,
    dstPort: PROBE_INNER_PORT,
    payload: f.payload,
  });
  const ip = encodeIPv4({ src: f.innerSrc, dst: f.innerDst, protocol: IPPROTO_UDP, payload: udp });
  const frame = encodeEthernet({
    dst: PROBE_INNER_DST_MAC,
    src: PROBE_INNER_SRC_MAC,
    etherType: ETHERTYPE_IPV4,
    payload: ip,
  });
  return encodeVxlan({ vni: f.vni ?? PROBE_VNI, payload: frame });
}

/**
 * The probe payload (first PROBE_PAYLOAD_LENGTH bytes of the inner UDP payload) inside a VXLAN-framed
 * UDP payload, or null. Parses the headers rather than trusting offset 50, so inner IP options are
 * handled; tolerates a capture truncated after the probe payload. Authenticity is not checked here.
 */
export function findProbeInVxlan(udpPayload: Uint8Array): Buffer | null {
  try {
    const vx = decodeVxlan(udpPayload);
    const eth = decodeEthernet(vx.payload);
    if (eth.etherType !== ETHERTYPE_IPV4) return null;
    const ip = decodeIPv4(eth.payload, { allowTruncated: true });
    if (ip.protocol !== IPPROTO_UDP || ip.fragmentOffset !== 0) return null;
    const start = UDP_HEADER_LENGTH;
    if (ip.payload.length < start + PROBE_PAYLOAD_LENGTH || !hasProbeMagic(ip.payload, start)) return null;
    return ip.payload.subarray(start, start + PROBE_PAYLOAD_LENGTH);
  } catch (err) {
    if (err instanceof DecodeError) return null;
    throw err;
  }
}
