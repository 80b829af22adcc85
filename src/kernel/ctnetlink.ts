// Conntrack over netlink (ctnetlink; linux/netfilter/nfnetlink_conntrack.h): the request messages for an
// IPv4 dump and a delete by original tuple, and the parser of the kernel's answers. Pure (bytes in, data
// out); the addon's netlinkTransact() carries them. Netlink headers are in host byte order (little
// endian on every machine this runs on), addresses in network order.
import { endianness } from 'node:os';

export const NETLINK_NETFILTER = 12;
const NFNL_SUBSYS_CTNETLINK = 1;
const IPCTNL_MSG_CT_NEW = 0;
const IPCTNL_MSG_CT_GET = 1;
const IPCTNL_MSG_CT_DELETE = 2;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_DUMP = 0x300; // NLM_F_ROOT | NLM_F_MATCH
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff; // without NLA_F_NESTED and NLA_F_NET_BYTEORDER
const AF_INET = 2;
// enum ctattr_type, ctattr_tuple, ctattr_ip, ctattr_l4proto
const CTA_TUPLE_ORIG = 1;
const CTA_TUPLE_IP = 1;
const CTA_TUPLE_PROTO = 2;
const CTA_IP_V4_SRC = 1;
const CTA_IP_V4_DST = 2;
const CTA_PROTO_NUM = 1;
const NLMSG_HDRLEN = 16;
const NFGENMSG_LEN = 4;

if (endianness() !== 'LE') throw new Error('ctnetlink.ts writes netlink headers little-endian; this machine is big-endian');

export interface CtTuple {
  proto: number;
  src: string;
  dst: string;
}

const align4 = (n: number) => (n + 3) & ~3;

function attr(type: number, payload: Buffer): Buffer {
  const b = Buffer.alloc(align4(4 + payload.length));
  b.writeUInt16LE(4 + payload.length, 0);
  b.writeUInt16LE(type, 2);
  payload.copy(b, 4);
  return b;
}
const nested = (type: number, ...children: Buffer[]) => attr(type | NLA_F_NESTED, Buffer.concat(children));

function ipv4(a: string): Buffer {
  const parts = a.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new TypeError(`not an IPv4 address: ${a}`);
  return Buffer.from(parts);
}

function message(msg: number, flags: number, seq: number, body: Buffer): Buffer {
  const b = Buffer.alloc(NLMSG_HDRLEN + NFGENMSG_LEN + body.length);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt16LE((NFNL_SUBSYS_CTNETLINK << 8) | msg, 4);
  b.writeUInt16LE(NLM_F_REQUEST | flags, 6);
  b.writeUInt32LE(seq >>> 0, 8);
  b.writeUInt32LE(0, 12); // nlmsg_pid: the kernel fills in ours
  b.writeUInt8(AF_INET, 16); // nfgen_family
  b.writeUInt8(0, 17); // NFNETLINK_V0
  b.writeUInt16BE(0, 18); // res_id
  body.copy(b, 20);
  return b;
}

/** Delete the entry whose original tuple is `t` (addresses only: IP-in-IP and other port-less protocols), acked. */
export function encodeDelete(t: CtTuple, seq = 1): Buffer {
  if (!Number.isInteger(t.proto) || t.proto < 0 || t.proto > 255) throw new TypeError(`not an IP protocol number: ${t.proto}`);
  const tuple = nested(
    CTA_TUPLE_ORIG,
    nested(CTA_TUPLE_IP, attr(CTA_IP_V4_SRC, ipv4(t.src)), attr(CTA_IP_V4_DST, ipv4(t.dst))),
    nested(CTA_TUPLE_PROTO, attr(CTA_PROTO_NUM, Buffer.from([t.proto]))),
  );
  return message(IPCTNL_MSG_CT_DELETE, NLM_F_ACK, seq, tuple);
}

/** Dump every IPv4 entry of this network namespace's table. */
export function encodeDump(seq = 1): Buffer {
  return message(IPCTNL_MSG_CT_GET, NLM_F_DUMP, seq, Buffer.alloc(0));
}

export interface CtAnswer {
  /** Original tuples of the entries dumped (IPv4). */
  entries: CtTuple[];
  /** The kernel's errno from NLMSG_ERROR (0: acked), null when none came. */
  errno: number | null;
  done: boolean;
  /** Bytes that were not a whole message or attribute were skipped. */
  malformed: boolean;
}

/** The attributes in `b[start, end)`: type (flags masked off) → payload; false when one overruns. */
function attrs(b: Buffer, start: number, end: number, out: Map<number, Buffer>): boolean {
  let o = start;
  while (o + 4 <= end) {
    const len = b.readUInt16LE(o);
    if (len < 4 || o + len > end) return false;
    out.set(b.readUInt16LE(o + 2) & NLA_TYPE_MASK, b.subarray(o + 4, o + len));
    o += align4(len);
  }
  return o >= end || end - o < 4;
}

function sub(p: Buffer | undefined, into: Map<number, Buffer>): boolean {
  return p !== undefined && attrs(p, 0, p.length, into);
}

const dotted = (p: Buffer | undefined) => (p && p.length === 4 ? `${p[0]}.${p[1]}.${p[2]}.${p[3]}` : null);

/** Everything the kernel answered to one request (netlinkTransact's bytes). Never throws. */
export function parseCtAnswer(b: Buffer): CtAnswer {
  const out: CtAnswer = { entries: [], errno: null, done: false, malformed: false };
  let o = 0;
  while (o + NLMSG_HDRLEN <= b.length) {
    const len = b.readUInt32LE(o);
    const type = b.readUInt16LE(o + 4);
    if (len < NLMSG_HDRLEN || o + len > b.length) {
      out.malformed = true;
      return out;
    }
    if (type === NLMSG_ERROR) {
      if (len >= NLMSG_HDRLEN + 4) out.errno = -b.readInt32LE(o + NLMSG_HDRLEN);
      else out.malformed = true;
    } else if (type === NLMSG_DONE) out.done = true;
    else if (type === ((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW) && len >= NLMSG_HDRLEN + NFGENMSG_LEN) {
      const top = new Map<number, Buffer>();
      const tuple = new Map<number, Buffer>();
      const ip = new Map<number, Buffer>();
      const proto = new Map<number, Buffer>();
      const ok = attrs(b, o + NLMSG_HDRLEN + NFGENMSG_LEN, o + len, top) && sub(top.get(CTA_TUPLE_ORIG), tuple) && sub(tuple.get(CTA_TUPLE_IP), ip) && sub(tuple.get(CTA_TUPLE_PROTO), proto);
      const src = dotted(ip.get(CTA_IP_V4_SRC));
      const dst = dotted(ip.get(CTA_IP_V4_DST));
      const num = proto.get(CTA_PROTO_NUM);
      if (ok && src && dst && num && num.length >= 1) out.entries.push({ proto: num[0]!, src, dst });
      else out.malformed = true;
    }
    o += align4(len);
  }
  if (o < b.length) out.malformed = true;
  return out;
}
