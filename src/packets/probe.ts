// Probe identity (DESIGN §3): the authenticated UDP/IP-in-IP probe payload and the TCP SYN sequence tag.
// HMAC-SHA256 (RFC 2104, FIPS 180-4) truncated to 128 bits for payloads, to 16 bits for TCP sequence tags.
// TCP probe SYNs also carry a stamp a kernel filter can check (source port range + one distinctive MSS option).

import { createHmac, timingSafeEqual } from 'node:crypto';
import type { CheckId } from '../types.js';
import { DecodeError, need } from './errors.js';
import { ipToBytes } from './ipv4.js';
import { TCP_FLAGS, TCP_HEADER_LENGTH, encodeTcp } from './tcp.js';

export const PROBE_MAGIC = 0x434e5450; // 'CNTP'
export const PROBE_VERSION = 1;
export const PROBE_PAYLOAD_LENGTH = 42;
export const PROBE_MAC_LENGTH = 16;
export const SESSION_ID_LENGTH = 8;
/** Bytes covered by the MAC: everything before it. */
const SIGNED_LENGTH = PROBE_PAYLOAD_LENGTH - PROBE_MAC_LENGTH; // 26

export const CHECK_CODES: Readonly<Record<CheckId, number>> = {
  bgp: 1,
  ipip: 2,
  vxlan: 3,
  wireguard: 4,
  typha: 5,
  etcd: 6,
  apiserver: 7,
  mtu: 8,
};

const CHECK_BY_CODE = new Map<number, CheckId>(
  (Object.entries(CHECK_CODES) as [CheckId, number][]).map(([id, code]) => [code, id]),
);

export function checkFromCode(code: number): CheckId | null {
  return CHECK_BY_CODE.get(code) ?? null;
}

function checkSessionId(sessionId: Uint8Array): void {
  if (sessionId.length !== SESSION_ID_LENGTH) {
    throw new TypeError(`sessionId must be ${SESSION_ID_LENGTH} bytes, got ${sessionId.length}`);
  }
}

function checkUint(name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${name} must be an integer 0..${max}, got ${v}`);
}

/** Per-session key, so a key leaked from one session's packets says nothing about the shared secret. */
export function deriveSessionKey(secret: Uint8Array, sessionId: Uint8Array): Buffer {
  checkSessionId(sessionId);
  return createHmac('sha256', secret)
    .update('calico-nettest session ' + Buffer.from(sessionId).toString('hex'))
    .digest();
}

export interface ProbeFields {
  key: Uint8Array;
  sessionId: Uint8Array;
  check: CheckId;
  /** Per-destination probe index, 0..65535. */
  idx: number;
  /** 0..255. */
  attempt: number;
  sendTimeMs: number;
}

function mac(key: Uint8Array, signed: Uint8Array): Buffer {
  return createHmac('sha256', key).update(signed).digest().subarray(0, PROBE_MAC_LENGTH);
}

/**
 * Layout (big-endian): magic u32 | version u8 | check u8 | idx u16 | attempt u8 | reserved u8 |
 * sessionId 8 | sendTimeMs f64 | mac 16 (HMAC-SHA256(key, bytes 0..25), first 16 bytes).
 */
export function encodeProbePayload(f: ProbeFields): Buffer {
  checkSessionId(f.sessionId);
  checkUint('idx', f.idx, 0xffff);
  checkUint('attempt', f.attempt, 0xff);
  const code = CHECK_CODES[f.check];
  if (code === undefined) throw new TypeError(`unknown check ${JSON.stringify(f.check)}`);
  const buf = Buffer.alloc(PROBE_PAYLOAD_LENGTH);
  buf.writeUInt32BE(PROBE_MAGIC, 0);
  buf[4] = PROBE_VERSION;
  buf[5] = code;
  buf.writeUInt16BE(f.idx, 6);
  buf[8] = f.attempt;
  buf[9] = 0;
  buf.set(f.sessionId, 10);
  buf.writeDoubleBE(f.sendTimeMs, 18);
  mac(f.key, buf.subarray(0, SIGNED_LENGTH)).copy(buf, SIGNED_LENGTH);
  return buf;
}

export interface ProbePayload {
  check: CheckId;
  idx: number;
  attempt: number;
  sessionId: Buffer;
  sendTimeMs: number;
  mac: Buffer;
}

/** True when `buf` holds the probe magic at `offset` (cheap pre-filter; proves nothing). */
export function hasProbeMagic(buf: Uint8Array, offset = 0): boolean {
  return (
    offset >= 0 &&
    buf.length >= offset + 4 &&
    Buffer.from(buf.buffer, buf.byteOffset, buf.length).readUInt32BE(offset) === PROBE_MAGIC
  );
}

/** Structural decode only: says nothing about authenticity (see verifyProbePayload). Trailing padding is ignored. */
export function decodeProbePayload(input: Uint8Array): ProbePayload {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.length);
  need(buf, 0, PROBE_PAYLOAD_LENGTH, 'probe payload');
  if (buf.readUInt32BE(0) !== PROBE_MAGIC) throw new DecodeError('probe payload', 0, 'no probe magic');
  if (buf[4] !== PROBE_VERSION) throw new DecodeError('probe payload', 4, `unsupported version ${buf[4]}`);
  const check = checkFromCode(buf[5] as number);
  if (check === null) throw new DecodeError('probe payload', 5, `unknown check code ${buf[5]}`);
  return {
    check,
    idx: buf.readUInt16BE(6),
    attempt: buf[8] as number,
    sessionId: buf.subarray(10, 18),
    sendTimeMs: buf.readDoubleBE(18),
    mac: buf.subarray(SIGNED_LENGTH, PROBE_PAYLOAD_LENGTH),
  };
}

/** The decoded probe when it is one and its MAC is right under `key`; null otherwise (never throws on bytes). */
export function verifyProbePayload(buf: Uint8Array, key: Uint8Array): ProbePayload | null {
  let decoded: ProbePayload;
  try {
    decoded = decodeProbePayload(buf);
  } catch (err) {
    if (err instanceof DecodeError) return null;
    throw err;
  }
  const expected = mac(key, buf.subarray(0, SIGNED_LENGTH));
  return timingSafeEqual(expected, decoded.mac) ? decoded : null;
}

/** Zero-pads a payload to `size` bytes (e.g. 148, a WireGuard handshake initiation, so middleboxes see a plausible size). */
export function padProbe(payload: Uint8Array, size: number): Buffer {
  checkUint('size', size, 0xffff);
  if (size < payload.length) throw new RangeError(`cannot pad ${payload.length} bytes down to ${size}`);
  const buf = Buffer.alloc(size);
  buf.set(payload, 0);
  return buf;
}

function tcpTag(key: Uint8Array, dstAddr: string, dstPort: number, idx: number): number {
  const msg = Buffer.alloc(3 + 4 + 2 + 2);
  msg.write('tcp', 0, 'latin1');
  ipToBytes(dstAddr).copy(msg, 3);
  msg.writeUInt16BE(dstPort, 7);
  msg.writeUInt16BE(idx, 9);
  return createHmac('sha256', key).update(msg).digest().readUInt16BE(0);
}

/**
 * Initial sequence number of a TCP probe SYN: (idx << 16) | tag16. It survives NAT (ports and addresses may be
 * rewritten, the sequence number is not), and the 16-bit tag makes a stray SYN unlikely to pass for a probe.
 * The reply's acknowledgement number is this + 1.
 */
export function tcpProbeSeq(key: Uint8Array, dstAddr: string, dstPort: number, idx: number): number {
  checkUint('dstPort', dstPort, 0xffff);
  checkUint('idx', idx, 0xffff);
  return ((idx << 16) | tcpTag(key, dstAddr, dstPort, idx)) >>> 0;
}

/** The probe index encoded in `seq` when its tag is right for (key, dstAddr, dstPort); null otherwise. */
export function tcpProbeIdx(key: Uint8Array, dstAddr: string, dstPort: number, seq: number): number | null {
  if (!Number.isInteger(seq) || seq < 0 || seq > 0xffffffff) return null;
  if (!Number.isInteger(dstPort) || dstPort < 0 || dstPort > 0xffff) return null;
  const idx = seq >>> 16;
  return tcpTag(key, dstAddr, dstPort, idx) === (seq & 0xffff) ? idx : null;
}

// ---------------------------------------------------------------------------------------------
// The TCP probe stamp. The HMAC tag in the sequence number is what proves a SYN is ours, but a classic
// BPF filter cannot compute an HMAC, and a filter that lets every SYN to 179/5473/2379/6443 through
// costs the responder as much as no filter at all under a SYN flood or on a busy apiserver. So a probe
// SYN is also shaped in a way the filter can test in a few instructions and real clients never are:
// a source port in [PROBE_TCP_SPORT_LO, PROBE_TCP_SPORT_HI], and a 24-byte header whose only option
// is MSS = PROBE_TCP_MSS. The stamp only keeps noise out of user space; it proves nothing — the
// HMAC tag still decides what is a probe.

/**
 * Source ports of TCP probes: above Linux's default ephemeral range (32768–60999, net.ipv4.ip_local_port_range),
 * so no real client connection uses them.
 */
export const PROBE_TCP_SPORT_LO = 61000;
export const PROBE_TCP_SPORT_HI = 64999;
/**
 * The MSS option value of a probe SYN: a distinctive value rather than the usual 1460 / 1448 / 8960. Harmless:
 * only our own SYN carries it, and the half-open handshake never carries data (the SYN-ACK or reset it draws is
 * the whole exchange), so no segment is ever sized by it.
 */
export const PROBE_TCP_MSS = 1380;
/** Header length of a probe SYN: the fixed 20 bytes + one MSS option (data offset 6). */
export const PROBE_TCP_HEADER_LENGTH = TCP_HEADER_LENGTH + 4;

export interface ProbeSynFields {
  srcAddr: string;
  dstAddr: string;
  /** PROBE_TCP_SPORT_LO..PROBE_TCP_SPORT_HI. */
  srcPort: number;
  dstPort: number;
  /** The tagged sequence number (tcpProbeSeq). */
  seq: number;
}

/** A TCP probe SYN carrying the stamp: SYN only, 24-byte header, one option (MSS = PROBE_TCP_MSS), no payload. */
export function encodeProbeSyn(f: ProbeSynFields): Buffer {
  if (!Number.isInteger(f.srcPort) || f.srcPort < PROBE_TCP_SPORT_LO || f.srcPort > PROBE_TCP_SPORT_HI) {
    throw new RangeError(`probe srcPort must be an integer ${PROBE_TCP_SPORT_LO}..${PROBE_TCP_SPORT_HI}, got ${f.srcPort}`);
  }
  const seg = encodeTcp({ srcAddr: f.srcAddr, dstAddr: f.dstAddr, srcPort: f.srcPort, dstPort: f.dstPort, seq: f.seq, flags: TCP_FLAGS.SYN, mss: PROBE_TCP_MSS });
  // The filter checks data offset 6 and the option bytes at 20..23: encodeTcp must keep that shape.
  if (seg.length !== PROBE_TCP_HEADER_LENGTH || (seg[12] as number) >> 4 !== PROBE_TCP_HEADER_LENGTH / 4) {
    throw new Error(`probe SYN came out ${seg.length} bytes with data offset ${(seg[12] as number) >> 4}`);
  }
  return seg;
}
