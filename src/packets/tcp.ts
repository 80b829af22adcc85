// TCP segments: encode a probe SYN (with pseudo-header checksum and MSS option) and decode replies (RFC 9293).

import { DecodeError, need } from './errors.js';
import { IPPROTO_TCP, internetChecksum, pseudoHeaderSum } from './ipv4.js';

export const TCP_FLAGS = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

export const TCP_HEADER_LENGTH = 20;

export interface TcpFields {
  srcAddr: string;
  dstAddr: string;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack?: number;
  flags: number;
  window?: number;
  /** Adds an MSS option (kind 2) when given. */
  mss?: number;
  /** Adds NOP, NOP, a timestamps option (kind 8, RFC 7323) after the MSS when given. */
  timestamp?: { val: number; ecr: number };
  payload?: Uint8Array;
}

function checkUint(name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${name} must be an integer 0..${max}, got ${v}`);
}

export function encodeTcp(f: TcpFields): Buffer {
  const { ack = 0, window = 64240, mss, timestamp, payload = Buffer.alloc(0) } = f;
  checkUint('srcPort', f.srcPort, 0xffff);
  checkUint('dstPort', f.dstPort, 0xffff);
  checkUint('seq', f.seq, 0xffffffff);
  checkUint('ack', ack, 0xffffffff);
  checkUint('flags', f.flags, 0xff);
  checkUint('window', window, 0xffff);
  if (mss !== undefined) checkUint('mss', mss, 0xffff);
  if (timestamp) {
    checkUint('timestamp.val', timestamp.val, 0xffffffff);
    checkUint('timestamp.ecr', timestamp.ecr, 0xffffffff);
  }
  const mssAt = TCP_HEADER_LENGTH;
  const tsAt = mssAt + (mss === undefined ? 0 : 4);
  const headerLength = tsAt + (timestamp ? 12 : 0);
  const seg = Buffer.alloc(headerLength + payload.length);
  seg.writeUInt16BE(f.srcPort, 0);
  seg.writeUInt16BE(f.dstPort, 2);
  seg.writeUInt32BE(f.seq, 4);
  seg.writeUInt32BE(ack, 8);
  seg[12] = (headerLength / 4) << 4;
  seg[13] = f.flags;
  seg.writeUInt16BE(window, 14);
  if (mss !== undefined) {
    seg[mssAt] = 2; // kind: maximum segment size
    seg[mssAt + 1] = 4;
    seg.writeUInt16BE(mss, mssAt + 2);
  }
  if (timestamp) {
    seg[tsAt] = 1; // NOP, NOP: align the 10-byte option as every stack does
    seg[tsAt + 1] = 1;
    seg[tsAt + 2] = 8; // kind: timestamps
    seg[tsAt + 3] = 10;
    seg.writeUInt32BE(timestamp.val, tsAt + 4);
    seg.writeUInt32BE(timestamp.ecr, tsAt + 8);
  }
  seg.set(payload, headerLength);
  const sum = pseudoHeaderSum(f.srcAddr, f.dstAddr, IPPROTO_TCP, seg.length);
  seg.writeUInt16BE(internetChecksum(seg, sum), 16);
  return seg;
}

export interface TcpSynFields {
  srcAddr: string;
  dstAddr: string;
  srcPort: number;
  dstPort: number;
  seq: number;
  window?: number;
  /** Default 1460; a SYN without MSS makes some middleboxes suspicious. */
  mss?: number;
}

export function encodeTcpSyn(f: TcpSynFields): Buffer {
  return encodeTcp({ ...f, flags: TCP_FLAGS.SYN, ack: 0, mss: f.mss ?? 1460 });
}

export interface TcpSegment {
  srcPort: number;
  dstPort: number;
  seq: number;
  ackNumber: number;
  headerLength: number;
  flags: number;
  isSyn: boolean;
  isAck: boolean;
  isRst: boolean;
  isFin: boolean;
  window: number;
  checksum: number;
  /** MSS option value, null when absent (malformed options are ignored, not fatal). */
  mss: number | null;
  /** Timestamps option (RFC 7323), null when absent or malformed. */
  timestamp: { val: number; ecr: number } | null;
  payload: Buffer;
}

export function decodeTcp(input: Uint8Array): TcpSegment {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.length);
  need(buf, 0, TCP_HEADER_LENGTH, 'tcp header');
  const dataOffset = (buf[12] as number) >> 4;
  if (dataOffset < 5) throw new DecodeError('tcp header', 12, `data offset ${dataOffset} is below 5`);
  const headerLength = dataOffset * 4;
  need(buf, 0, headerLength, 'tcp header with options');
  const flags = buf[13] as number;
  return {
    srcPort: buf.readUInt16BE(0),
    dstPort: buf.readUInt16BE(2),
    seq: buf.readUInt32BE(4),
    ackNumber: buf.readUInt32BE(8),
    headerLength,
    flags,
    isSyn: (flags & TCP_FLAGS.SYN) !== 0,
    isAck: (flags & TCP_FLAGS.ACK) !== 0,
    isRst: (flags & TCP_FLAGS.RST) !== 0,
    isFin: (flags & TCP_FLAGS.FIN) !== 0,
    window: buf.readUInt16BE(14),
    checksum: buf.readUInt16BE(16),
    mss: findOption(buf, headerLength, 2, 4)?.readUInt16BE(0) ?? null,
    timestamp: timestampOf(findOption(buf, headerLength, 8, 10)),
    payload: buf.subarray(headerLength),
  };
}

function timestampOf(o: Buffer | null): { val: number; ecr: number } | null {
  return o ? { val: o.readUInt32BE(0), ecr: o.readUInt32BE(4) } : null;
}

/** The value bytes of the first option of kind `want` and total length `wantLen`, or null. */
function findOption(buf: Buffer, headerLength: number, want: number, wantLen: number): Buffer | null {
  let i = TCP_HEADER_LENGTH;
  while (i < headerLength) {
    const kind = buf[i] as number;
    if (kind === 0) return null; // end of option list
    if (kind === 1) {
      i += 1; // no-operation
      continue;
    }
    if (i + 1 >= headerLength) return null;
    const len = buf[i + 1] as number;
    if (len < 2 || i + len > headerLength) return null;
    if (kind === want && len === wantLen) return buf.subarray(i + 2, i + len);
    i += len;
  }
  return null;
}

/** True when the segment's checksum is right for this address pair (the segment includes its checksum). */
export function tcpChecksumOk(srcAddr: string, dstAddr: string, segment: Uint8Array): boolean {
  if (segment.length > 0xffff) return false;
  return internetChecksum(segment, pseudoHeaderSum(srcAddr, dstAddr, IPPROTO_TCP, segment.length)) === 0;
}
