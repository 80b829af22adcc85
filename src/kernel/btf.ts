// The kernel's own description of its types (BTF, /sys/kernel/btf/vmlinux; linux Documentation/bpf/btf.rst),
// read for the drop watch (src/kernel/drop-watch.ts): where `head` and `network_header` sit in `struct
// sk_buff` on this kernel, and the names of `enum skb_drop_reason`'s values (their numbers differ between
// kernels). Pure: bytes in, answers out; a malformed blob is a BtfError, never a hang or a wrong offset.
import { readFile } from 'node:fs/promises';

export class BtfError extends Error {
  override name = 'BtfError';
}

// Kinds (btf.rst §2.2) and the size of the data each one's header is followed by.
const KIND = { INT: 1, PTR: 2, ARRAY: 3, STRUCT: 4, UNION: 5, ENUM: 6, FWD: 7, TYPEDEF: 8, VOLATILE: 9, CONST: 10, RESTRICT: 11, FUNC: 12, FUNC_PROTO: 13, VAR: 14, DATASEC: 15, FLOAT: 16, DECL_TAG: 17, TYPE_TAG: 18, ENUM64: 19 } as const;

function trailing(kind: number, vlen: number): number {
  switch (kind) {
    case KIND.INT:
      return 4;
    case KIND.ARRAY:
      return 12;
    case KIND.STRUCT:
    case KIND.UNION:
      return 12 * vlen;
    case KIND.ENUM:
      return 8 * vlen;
    case KIND.FUNC_PROTO:
      return 8 * vlen;
    case KIND.VAR:
      return 4;
    case KIND.DATASEC:
      return 12 * vlen;
    case KIND.DECL_TAG:
      return 4;
    case KIND.ENUM64:
      return 12 * vlen;
    case KIND.PTR:
    case KIND.FWD:
    case KIND.TYPEDEF:
    case KIND.VOLATILE:
    case KIND.CONST:
    case KIND.RESTRICT:
    case KIND.FUNC:
    case KIND.FLOAT:
    case KIND.TYPE_TAG:
      return 0;
    default:
      throw new BtfError(`unknown BTF kind ${kind}`);
  }
}

export interface Btf {
  /** Number of types (ids 1..count; 0 is void). */
  readonly count: number;
  kind(id: number): number;
  name(id: number): string;
  /** Find the first type of `kind` named `name` (0: none). */
  find(kind: number, name: string): number;
}

interface Parsed extends Btf {
  view: DataView;
  le: boolean;
  /** Byte offset (in the blob) of each type's header, by id. */
  at: Uint32Array;
  strOff: number;
  strLen: number;
}

const HEADER = 24;

/** Parse a BTF blob: throws BtfError for anything that is not one (bad magic, sections out of bounds, a type running past its section). */
export function parseBtf(blob: Uint8Array): Btf {
  if (blob.byteLength < HEADER) throw new BtfError(`BTF blob of ${blob.byteLength} bytes is shorter than its header`);
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const magic = view.getUint16(0, true);
  const le = magic === 0xeb9f;
  if (!le && magic !== 0x9feb) throw new BtfError(`not BTF: magic 0x${magic.toString(16)} (expected 0xeb9f)`);
  if (view.getUint8(2) !== 1) throw new BtfError(`BTF version ${view.getUint8(2)} (only version 1 is known)`);
  const u32 = (o: number) => view.getUint32(o, le);
  const hdrLen = u32(4);
  if (hdrLen < HEADER || hdrLen > blob.byteLength) throw new BtfError(`BTF header length ${hdrLen} out of bounds`);
  const typeOff = u32(8), typeLen = u32(12), strOff = u32(16), strLen = u32(20);
  const end = blob.byteLength - hdrLen;
  if (typeOff > end || typeLen > end - typeOff) throw new BtfError(`BTF type section (${typeOff}+${typeLen}) runs past the blob (${end} bytes after the header)`);
  if (strOff > end || strLen > end - strOff) throw new BtfError(`BTF string section (${strOff}+${strLen}) runs past the blob (${end} bytes after the header)`);
  const types = hdrLen + typeOff;
  const typesEnd = types + typeLen;
  const offsets: number[] = [0];
  for (let p = types; p < typesEnd; ) {
    if (typesEnd - p < 12) throw new BtfError(`BTF type ${offsets.length} is truncated (${typesEnd - p} bytes left)`);
    const info = u32(p + 4);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    offsets.push(p);
    p += 12 + trailing(kind, vlen);
    if (p > typesEnd) throw new BtfError(`BTF type ${offsets.length - 1} (kind ${kind}, ${vlen} members) runs past the type section`);
  }
  const at = Uint32Array.from(offsets);
  const stringsAt = hdrLen + strOff;
  const str = (off: number): string => {
    if (off >= strLen) throw new BtfError(`BTF string offset ${off} past the string section (${strLen} bytes)`);
    let e = stringsAt + off;
    const limit = stringsAt + strLen;
    while (e < limit && blob[e] !== 0) e++;
    return Buffer.from(blob.buffer, blob.byteOffset + stringsAt + off, e - stringsAt - off).toString('latin1');
  };
  const check = (id: number) => {
    if (!Number.isInteger(id) || id < 1 || id >= at.length) throw new BtfError(`BTF type id ${id} out of range (1..${at.length - 1})`);
  };
  const btf: Parsed = {
    view,
    le,
    at,
    strOff: stringsAt,
    strLen,
    count: at.length - 1,
    kind: (id) => (check(id), (u32(at[id]! + 4) >>> 24) & 0x1f),
    name: (id) => (check(id), str(u32(at[id]!))),
    find(kind, name) {
      for (let id = 1; id < at.length; id++) if (((u32(at[id]! + 4) >>> 24) & 0x1f) === kind && str(u32(at[id]!)) === name) return id;
      return 0;
    },
  };
  return btf;
}

function parsed(b: Btf): Parsed {
  if (!('at' in b)) throw new BtfError('not a parsed BTF');
  return b as Parsed;
}

/** Follow typedefs and qualifiers (const, volatile, restrict, type tags) to the type they name. */
function resolve(b: Parsed, id: number): number {
  for (let hops = 0; hops < 64; hops++) {
    if (id === 0) return 0;
    const k = b.kind(id);
    if (k !== KIND.TYPEDEF && k !== KIND.VOLATILE && k !== KIND.CONST && k !== KIND.RESTRICT && k !== KIND.TYPE_TAG) return id;
    id = b.view.getUint32(b.at[id]! + 8, b.le);
  }
  throw new BtfError(`BTF type ${id}: a loop of typedefs / qualifiers`);
}

interface Member {
  bitOffset: number;
  bitSize: number;
  type: number;
}

/** A member of a struct / union by name, looking inside anonymous structs and unions (struct_group); its offset in bits from the start. */
function member(b: Parsed, id: number, name: string, depth = 0, searched = new Set<number>()): Member | null {
  if (depth > 16) throw new BtfError(`BTF type ${id}: anonymous members nested deeper than 16`);
  // Each type is searched once: a crafted blob of anonymous members sharing types cannot make this exponential.
  if (searched.has(id)) return null;
  searched.add(id);
  const u32 = (o: number) => b.view.getUint32(o, b.le);
  const head = b.at[id]!;
  const info = u32(head + 4);
  const kindFlag = info >>> 31 === 1;
  const vlen = info & 0xffff;
  for (let i = 0; i < vlen; i++) {
    const m = head + 12 + 12 * i;
    const nameOff = u32(m);
    const type = u32(m + 4);
    const raw = u32(m + 8);
    const bitOffset = kindFlag ? raw & 0xffffff : raw;
    const bitSize = kindFlag ? raw >>> 24 : 0;
    if (nameOff !== 0) {
      if (readName(b, nameOff) === name) return { bitOffset, bitSize, type };
      continue;
    }
    const inner = resolve(b, type);
    if (inner === 0) continue;
    const k = b.kind(inner);
    if (k !== KIND.STRUCT && k !== KIND.UNION) continue;
    const found = member(b, inner, name, depth + 1, searched);
    if (found) return { ...found, bitOffset: found.bitOffset + bitOffset };
  }
  return null;
}

function readName(b: Parsed, off: number): string {
  if (off >= b.strLen) throw new BtfError(`BTF string offset ${off} past the string section (${b.strLen} bytes)`);
  const bytes = new Uint8Array(b.view.buffer, b.view.byteOffset, b.view.byteLength);
  let e = b.strOff + off;
  const limit = b.strOff + b.strLen;
  while (e < limit && bytes[e] !== 0) e++;
  return Buffer.from(bytes.buffer, bytes.byteOffset + b.strOff + off, e - b.strOff - off).toString('latin1');
}

/**
 * Byte offset of member `name` of struct `structName`, checking what it is: 'ptr' (a pointer), or an
 * unsigned integer of `bytes` bytes. `name` may be a path into embedded structs ('nd_net.net', 'ns.inum').
 */
export function memberOffset(btf: Btf, structName: string, name: string, shape: 'ptr' | { intBytes: number }): number {
  const b = parsed(btf);
  let id = b.find(KIND.STRUCT, structName);
  if (!id) throw new BtfError(`BTF has no struct ${structName}`);
  let bits = 0;
  let m: Member | null = null;
  const path = name.split('.');
  for (const [i, part] of path.entries()) {
    m = member(b, id, part);
    if (!m) throw new BtfError(`struct ${structName} has no member ${path.slice(0, i + 1).join('.')}`);
    if (m.bitSize !== 0 || m.bitOffset % 8 !== 0) throw new BtfError(`${structName}.${name} is a bitfield (bit ${m.bitOffset}, ${m.bitSize} bits)`);
    bits += m.bitOffset;
    if (i < path.length - 1) {
      id = resolve(b, m.type);
      const k = id === 0 ? 0 : b.kind(id);
      if (k !== KIND.STRUCT && k !== KIND.UNION) throw new BtfError(`${structName}.${path.slice(0, i + 1).join('.')} is not a struct or union (BTF kind ${k})`);
    }
  }
  const t = resolve(b, m!.type);
  const k = t === 0 ? 0 : b.kind(t);
  if (shape === 'ptr') {
    if (k !== KIND.PTR) throw new BtfError(`${structName}.${name} is not a pointer (BTF kind ${k})`);
  } else {
    const size = k === KIND.INT || k === KIND.ENUM ? b.view.getUint32(b.at[t]! + 8, b.le) : -1;
    if (size !== shape.intBytes) throw new BtfError(`${structName}.${name} is not a ${shape.intBytes}-byte integer (BTF kind ${k}, size ${size})`);
  }
  return bits / 8;
}

/** The values of enum `name` (ENUM or ENUM64), without `prefix`: number -> name. */
export function enumValues(btf: Btf, name: string, prefix = ''): Map<number, string> {
  const b = parsed(btf);
  let id = b.find(KIND.ENUM, name);
  const is64 = !id && (id = b.find(KIND.ENUM64, name)) !== 0;
  if (!id) throw new BtfError(`BTF has no enum ${name}`);
  const u32 = (o: number) => b.view.getUint32(o, b.le);
  const head = b.at[id]!;
  const info = u32(head + 4);
  const signed = info >>> 31 === 1;
  const vlen = info & 0xffff;
  const out = new Map<number, string>();
  for (let i = 0; i < vlen; i++) {
    const m = head + 12 + (is64 ? 12 : 8) * i;
    const n = readName(b, u32(m));
    const lo = u32(m + 4);
    const v = is64 ? (signed ? b.view.getInt32(m + 8, b.le) : u32(m + 8)) * 2 ** 32 + lo : signed ? b.view.getInt32(m + 4, b.le) : lo;
    out.set(v, n.startsWith(prefix) ? n.slice(prefix.length) : n);
  }
  return out;
}

/** What the drop watch needs from this kernel's BTF. */
export interface SkbLayout {
  /** Byte offsets in struct sk_buff of `head` (a pointer) and `network_header` (u16). */
  head: number;
  networkHeader: number;
  /** The namespace a packet is in: sk_buff.dev (a pointer), net_device.nd_net.net (a pointer), net.ns.inum (u32, the namespace's inode number). */
  dev: number;
  devNet: number;
  netInum: number;
  /** enum skb_drop_reason: number -> name without SKB_DROP_REASON_ (NETFILTER_DROP, IP_RPFILTER, …); empty when BTF has no such enum. */
  reasons: Map<number, string>;
}

export function skbLayout(btf: Btf): SkbLayout {
  return {
    head: memberOffset(btf, 'sk_buff', 'head', 'ptr'),
    networkHeader: memberOffset(btf, 'sk_buff', 'network_header', { intBytes: 2 }),
    dev: memberOffset(btf, 'sk_buff', 'dev', 'ptr'),
    devNet: memberOffset(btf, 'net_device', 'nd_net.net', 'ptr'),
    netInum: memberOffset(btf, 'net', 'ns.inum', { intBytes: 4 }),
    reasons: dropReasonsOf(btf),
  };
}

/** enum skb_drop_reason's names; empty when this BTF has no such enum (the caller falls back to tracefs). */
function dropReasonsOf(btf: Btf): Map<number, string> {
  const b = parsed(btf);
  if (!b.find(KIND.ENUM, 'skb_drop_reason') && !b.find(KIND.ENUM64, 'skb_drop_reason')) return new Map();
  return enumValues(btf, 'skb_drop_reason', 'SKB_DROP_REASON_');
}

export const KERNEL_BTF = '/sys/kernel/btf/vmlinux';

/** Read and parse this kernel's BTF (throws BtfError, or the read's error). */
export async function readSkbLayout(path = KERNEL_BTF): Promise<SkbLayout> {
  return skbLayout(parseBtf(await readFile(path)));
}

export { KIND as BTF_KIND };
