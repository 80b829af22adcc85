// Probe identity (DESIGN §3): every probe proves exactly one flow — session, source, destination, family,
// transport, port, check, probe id — under HMAC-SHA256 (RFC 2104, FIPS 180-4) keyed by the session.
// UDP/IP-in-IP probes carry it in a signed payload (MAC truncated to 128 bits); TCP probe SYNs carry a 48-bit
// tag in the sequence number's low half and the timestamps option, and a stamp a kernel filter can check.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { CATALOGUE, checkByCode, checkIds } from '../checks/catalogue.js';
import type { CheckId, Transport } from '../types.js';
import { DecodeError, need } from './errors.js';
import { bytesToIp, ipToBytes } from './ipv4.js';
import { TCP_FLAGS, TCP_HEADER_LENGTH, encodeTcp } from './tcp.js';

export const PROBE_MAGIC = 0x434e5450; // 'CNTP'
/** 2: the payload names source, destination, family, transport and port, and the MAC covers them. */
export const PROBE_VERSION = 2;
export const PROBE_PAYLOAD_LENGTH = 54;
export const PROBE_MAC_LENGTH = 16;
export const SESSION_ID_LENGTH = 8;
/** Bytes covered by the MAC: everything before it. */
const SIGNED_LENGTH = PROBE_PAYLOAD_LENGTH - PROBE_MAC_LENGTH; // 38
/** Offset of the session id in the payload (the witness finds the session's key by it). */
export const PROBE_SESSION_OFFSET = 22;
/** Address family code in the payload and the TCP tag: IPv4. */
export const FAMILY_IPV4 = 4;

/** The built-in checks' wire codes; the catalogue owns them (checks/catalogue.ts), this is its view for readers. */
export const CHECK_CODES: Readonly<Record<CheckId, number>> = Object.fromEntries(
  checkIds().map((id) => [id, CATALOGUE[id].code]),
) as Record<CheckId, number>;

/** The wire code of any check in the catalogue, also one registered at run time; undefined for an unknown id. */
function codeOf(check: CheckId): number | undefined {
  return (CATALOGUE as Record<string, { code: number } | undefined>)[check]?.code;
}

/** Transport codes: the IP protocol numbers. */
export const TRANSPORT_CODES: Readonly<Record<Transport, number>> = { tcp: 6, udp: 17, ipip: 4 };

const TRANSPORT_BY_CODE = new Map<number, Transport>(
  (Object.entries(TRANSPORT_CODES) as [Transport, number][]).map(([id, code]) => [code, id]),
);

/** The check a payload's code names (any check in the catalogue, also one added at run time), or null. */
export function checkFromCode(code: number): CheckId | null {
  return checkByCode(code)?.id ?? null;
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

/** The flow a probe belongs to (the session is the key's). `port` is null for IP-in-IP. */
export interface ProbeFlow {
  src: string;
  dst: string;
  transport: Transport;
  port: number | null;
  check: CheckId;
  /** Per-destination probe index, 0..65535. */
  idx: number;
}

/** True when both name the same flow. */
export function sameFlow(a: ProbeFlow, b: ProbeFlow): boolean {
  return a.idx === b.idx && a.check === b.check && a.transport === b.transport && a.port === b.port && a.src === b.src && a.dst === b.dst;
}

function checkFlow(f: ProbeFlow): void {
  checkUint('idx', f.idx, 0xffff);
  if (codeOf(f.check) === undefined) throw new TypeError(`unknown check ${JSON.stringify(f.check)}`);
  if (TRANSPORT_CODES[f.transport] === undefined) throw new TypeError(`unknown transport ${JSON.stringify(f.transport)}`);
  if (f.transport === 'ipip' ? f.port !== null : !Number.isInteger(f.port) || (f.port as number) < 1 || (f.port as number) > 0xffff) {
    throw new RangeError(`port ${String(f.port)} is wrong for ${f.transport}`);
  }
}

export interface ProbeFields extends ProbeFlow {
  key: Uint8Array;
  sessionId: Uint8Array;
  /** 0..255. */
  attempt: number;
  sendTimeMs: number;
}

function mac(key: Uint8Array, signed: Uint8Array): Buffer {
  return createHmac('sha256', key).update(signed).digest().subarray(0, PROBE_MAC_LENGTH);
}

/**
 * Layout (big-endian): magic u32 | version u8 | family u8 | check u8 | transport u8 | idx u16 | port u16 (0: none) |
 * attempt u8 | reserved u8 | src 4 | dst 4 | sessionId 8 | sendTimeMs f64 | mac 16 (HMAC-SHA256(key, bytes 0..37), first 16 bytes).
 */
export function encodeProbePayload(f: ProbeFields): Buffer {
  checkSessionId(f.sessionId);
  checkFlow(f);
  checkUint('attempt', f.attempt, 0xff);
  const buf = Buffer.alloc(PROBE_PAYLOAD_LENGTH);
  buf.writeUInt32BE(PROBE_MAGIC, 0);
  buf[4] = PROBE_VERSION;
  buf[5] = FAMILY_IPV4;
  buf[6] = codeOf(f.check) as number;
  buf[7] = TRANSPORT_CODES[f.transport];
  buf.writeUInt16BE(f.idx, 8);
  buf.writeUInt16BE(f.port ?? 0, 10);
  buf[12] = f.attempt;
  buf[13] = 0;
  ipToBytes(f.src).copy(buf, 14);
  ipToBytes(f.dst).copy(buf, 18);
  buf.set(f.sessionId, PROBE_SESSION_OFFSET);
  buf.writeDoubleBE(f.sendTimeMs, 30);
  mac(f.key, buf.subarray(0, SIGNED_LENGTH)).copy(buf, SIGNED_LENGTH);
  return buf;
}

export interface ProbePayload extends ProbeFlow {
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
  if (buf[5] !== FAMILY_IPV4) throw new DecodeError('probe payload', 5, `unsupported address family ${buf[5]}`);
  const check = checkFromCode(buf[6] as number);
  if (check === null) throw new DecodeError('probe payload', 6, `unknown check code ${buf[6]}`);
  const transport = TRANSPORT_BY_CODE.get(buf[7] as number);
  if (transport === undefined) throw new DecodeError('probe payload', 7, `unknown transport code ${buf[7]}`);
  const port = buf.readUInt16BE(10);
  if ((transport === 'ipip') !== (port === 0)) throw new DecodeError('probe payload', 10, `port ${port} is wrong for ${transport}`);
  return {
    check,
    transport,
    idx: buf.readUInt16BE(8),
    port: port === 0 ? null : port,
    attempt: buf[12] as number,
    src: bytesToIp(buf, 14),
    dst: bytesToIp(buf, 18),
    sessionId: buf.subarray(PROBE_SESSION_OFFSET, PROBE_SESSION_OFFSET + SESSION_ID_LENGTH),
    sendTimeMs: buf.readDoubleBE(30),
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

/** The 48-bit TCP tag of a flow: 16 bits for the sequence number's low half, 32 for the timestamp value. */
function tcpTag(key: Uint8Array, f: ProbeFlow): { seqLow: number; tsVal: number } {
  const msg = Buffer.alloc(4 + 1 + 4 + 4 + 2 + 1 + 2);
  msg.write('tcp2', 0, 'latin1');
  msg[4] = FAMILY_IPV4;
  ipToBytes(f.src).copy(msg, 5);
  ipToBytes(f.dst).copy(msg, 9);
  msg.writeUInt16BE(f.port ?? 0, 13);
  msg[15] = codeOf(f.check) as number;
  msg.writeUInt16BE(f.idx, 16);
  const h = createHmac('sha256', key).update(msg).digest();
  return { seqLow: h.readUInt16BE(0), tsVal: h.readUInt32BE(2) };
}

/** The tag bits of a TCP probe: 48, so a blind guess wins once in 2^48 (years of a saturated link per flow). */
export const TCP_TAG_BITS = 48;

export interface TcpProbeTag {
  /** Initial sequence number: (idx << 16) | 16 tag bits. The reply's acknowledgement number is this + 1. */
  seq: number;
  /** The timestamps option's value: 32 more tag bits (its echo field stays 0, as RFC 7323 wants in a SYN). */
  tsVal: number;
}

/**
 * The tag a TCP probe SYN of flow `f` carries. Sequence number and timestamp survive NAT (ports and addresses
 * may be rewritten, these are not) and MSS clamping; the idx in the high half lets the witness find the flow.
 */
export function tcpProbeTag(key: Uint8Array, f: ProbeFlow): TcpProbeTag {
  checkFlow(f);
  if (f.transport !== 'tcp') throw new TypeError(`a TCP tag is for a tcp flow, not ${f.transport}`);
  const t = tcpTag(key, f);
  return { seq: ((f.idx << 16) | t.seqLow) >>> 0, tsVal: t.tsVal };
}

/** The probe index a TCP SYN's sequence number names (its high half); which flow that is, the session knows. */
export const tcpSeqIdx = (seq: number): number => seq >>> 16;

/** True when (seq, tsVal) is the tag of flow `f` under `key`. Never throws on numbers. */
export function verifyTcpProbe(key: Uint8Array, f: ProbeFlow, seq: number, tsVal: number): boolean {
  if (!Number.isInteger(seq) || seq < 0 || seq > 0xffffffff || !Number.isInteger(tsVal) || tsVal < 0 || tsVal > 0xffffffff) return false;
  if (f.transport !== 'tcp' || tcpSeqIdx(seq) !== f.idx) return false;
  const t = tcpTag(key, f);
  // Constant time is moot for a 48-bit tag checked per packet, but cheap.
  return ((t.seqLow ^ (seq & 0xffff)) | (t.tsVal ^ tsVal)) === 0;
}

// ---------------------------------------------------------------------------------------------
// The TCP probe stamp. The HMAC tag in the sequence number and timestamp is what proves a SYN is ours, but a
// classic BPF filter cannot compute an HMAC, and a filter that lets every SYN to 179/5473/2379/6443 through
// costs the responder as much as no filter at all under a SYN flood or on a busy apiserver. So a probe
// SYN is also shaped in a way the filter can test in a few instructions and real clients never are:
// a 36-byte header whose options are exactly MSS = PROBE_TCP_MSS, NOP, NOP, timestamps (no SACK, no
// window scale: every real stack sends those too). The stamp only keeps noise out of user space; it
// proves nothing — the 48-bit HMAC tag decides what is a probe, and a flood shaped like the stamp is
// shed by the witness's per-session budget.

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
/** Header length of a probe SYN: the fixed 20 bytes + MSS (4) + NOP NOP timestamps (12): data offset 9. */
export const PROBE_TCP_HEADER_LENGTH = TCP_HEADER_LENGTH + 4 + 12;
/** The option word at offset 24 of a probe SYN: NOP, NOP, kind 8, length 10. */
export const PROBE_TCP_TS_WORD = 0x0101080a;

export interface ProbeSynFields {
  srcAddr: string;
  dstAddr: string;
  /** PROBE_TCP_SPORT_LO..PROBE_TCP_SPORT_HI. */
  srcPort: number;
  dstPort: number;
  /** The flow's tag (tcpProbeTag). */
  tag: TcpProbeTag;
}

/** A TCP probe SYN carrying the stamp: SYN only, 36-byte header (MSS = PROBE_TCP_MSS, NOP, NOP, timestamps), no payload. */
export function encodeProbeSyn(f: ProbeSynFields): Buffer {
  if (!Number.isInteger(f.srcPort) || f.srcPort < PROBE_TCP_SPORT_LO || f.srcPort > PROBE_TCP_SPORT_HI) {
    throw new RangeError(`probe srcPort must be an integer ${PROBE_TCP_SPORT_LO}..${PROBE_TCP_SPORT_HI}, got ${f.srcPort}`);
  }
  const seg = encodeTcp({
    srcAddr: f.srcAddr,
    dstAddr: f.dstAddr,
    srcPort: f.srcPort,
    dstPort: f.dstPort,
    seq: f.tag.seq,
    flags: TCP_FLAGS.SYN,
    mss: PROBE_TCP_MSS,
    timestamp: { val: f.tag.tsVal, ecr: 0 },
  });
  // The filter checks data offset 9 and the option bytes at 20..27: encodeTcp must keep that shape.
  if (seg.length !== PROBE_TCP_HEADER_LENGTH || (seg[12] as number) >> 4 !== PROBE_TCP_HEADER_LENGTH / 4 || seg.readUInt32BE(24) !== PROBE_TCP_TS_WORD) {
    throw new Error(`probe SYN came out ${seg.length} bytes with data offset ${(seg[12] as number) >> 4}`);
  }
  return seg;
}
