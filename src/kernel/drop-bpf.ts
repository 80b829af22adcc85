// The drop watch's eBPF program (linux Documentation/bpf/standardization/instruction-set.rst), hand-assembled
// like the cBPF filters of src/packets/bpf.ts: a BPF_PROG_TYPE_RAW_TRACEPOINT program on `kfree_skb`
// (ctx: u64 args skb, location, reason, rx_sk) that, while the "enabled" array map's one entry is set, reads
// the dropped skb's IPv4 header (skb->head + skb->network_header, offsets from BTF) and the 4 bytes of
// ports after it, keeps packets from or to this node's own address, and counts them in a hash map keyed by
// {saddr, daddr, proto, sport, dport} with the last reason. Pure: the bytes, the map layouts, the decoders.

export const BPF_PROG_TYPE_RAW_TRACEPOINT = 17;
export const BPF_MAP_TYPE_HASH = 1;
export const BPF_MAP_TYPE_ARRAY = 2;
export const BPF_PSEUDO_MAP_FD = 1;
/** Helper numbers (linux/bpf.h `enum bpf_func_id`). */
export const HELPER = { mapLookupElem: 1, mapUpdateElem: 2, probeReadKernel: 113 } as const;

// Classes, sizes, modes, operations (eBPF).
const LD = 0x00, LDX = 0x01, ST = 0x02, STX = 0x03, JMP = 0x05, JMP32 = 0x06, ALU64 = 0x07;
const W = 0x00, H = 0x08, B = 0x10, DW = 0x18;
const IMM = 0x00, MEM = 0x60, ATOMIC = 0xc0;
const ADD = 0x00, AND = 0x50, LSH = 0x60, RSH = 0x70, MOV = 0xb0;
const K = 0x00, X = 0x08;
const JA = 0x00, JEQ = 0x10, JNE = 0x50, JSET = 0x40, CALL = 0x80, EXIT = 0x90;
export const OPCODE = { LD_IMM64: LD | DW | IMM, CALL: JMP | CALL, EXIT: JMP | EXIT, ATOMIC_ADD_DW: STX | DW | ATOMIC, JMP32_JEQ_K: JMP32 | JEQ | K, JMP32_JNE_K: JMP32 | JNE | K } as const;

/** The keys and values of the drops map (bytes): key {saddr u32, daddr u32 (network order), proto u8, pad u8, sport u16, dport u16 (network order), pad u16}; value {reason u32, pad u32, count u64}. */
export const DROP_KEY_SIZE = 16;
export const DROP_VALUE_SIZE = 16;
export const DROP_MAP_ENTRIES = 8192;

type Label = string;
interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number | Label;
  imm: number;
}

class Asm {
  readonly insns: (Insn | { label: Label })[] = [];
  readonly mapRefs: Record<string, number[]> = {};
  private n = 0;
  op(code: number, dst: number, src: number, off: number | Label, imm: number): this {
    this.insns.push({ code, dst, src, off, imm });
    this.n++;
    return this;
  }
  label(l: Label): this {
    this.insns.push({ label: l });
    return this;
  }
  /** BPF_LD_IMM64 of a map's fd (two instructions; patched by patchMapFds). */
  loadMap(dst: number, map: string): this {
    (this.mapRefs[map] ??= []).push(this.n);
    this.op(OPCODE.LD_IMM64, dst, BPF_PSEUDO_MAP_FD, 0, 0);
    return this.op(0, 0, 0, 0, 0);
  }
  movK = (dst: number, imm: number) => this.op(ALU64 | MOV | K, dst, 0, 0, imm);
  movX = (dst: number, src: number) => this.op(ALU64 | MOV | X, dst, src, 0, 0);
  addK = (dst: number, imm: number) => this.op(ALU64 | ADD | K, dst, 0, 0, imm);
  addX = (dst: number, src: number) => this.op(ALU64 | ADD | X, dst, src, 0, 0);
  ldx = (size: number, dst: number, src: number, off: number) => this.op(LDX | size | MEM, dst, src, off, 0);
  stx = (size: number, dst: number, off: number, src: number) => this.op(STX | size | MEM, dst, src, off, 0);
  st = (size: number, dst: number, off: number, imm: number) => this.op(ST | size | MEM, dst, 0, off, imm);
  jK = (op: number, dst: number, imm: number, to: Label, cls = JMP) => this.op(cls | op | K, dst, 0, to, imm);
  ja = (to: Label) => this.op(JMP | JA, 0, 0, to, 0);
  call = (helper: number) => this.op(JMP | CALL, 0, 0, 0, helper);

  bytes(): Buffer {
    const at = new Map<Label, number>();
    let pc = 0;
    for (const i of this.insns) if ('label' in i) at.set(i.label, pc);
    else pc++;
    const out = Buffer.alloc(pc * 8);
    pc = 0;
    for (const i of this.insns) {
      if ('label' in i) continue;
      let off = i.off;
      if (typeof off === 'string') {
        const to = at.get(off);
        if (to === undefined) throw new Error(`drop-bpf: no label ${off}`);
        off = to - pc - 1;
      }
      out.writeUInt8(i.code, pc * 8);
      out.writeUInt8(((i.src & 0xf) << 4) | (i.dst & 0xf), pc * 8 + 1);
      out.writeInt16LE(off, pc * 8 + 2);
      out.writeInt32LE(i.imm | 0, pc * 8 + 4);
      pc++;
    }
    return out;
  }
}

export interface DropProgramInput {
  /** Byte offsets in struct sk_buff (from BTF: src/kernel/btf.ts). */
  headOffset: number;
  networkHeaderOffset: number;
  /** The packet's namespace: sk_buff.dev, net_device.nd_net.net, net.ns.inum (from BTF). */
  devOffset: number;
  devNetOffset: number;
  netInumOffset: number;
  /** The responder's network namespace (the inode number of /proc/self/ns/net): the same address in another namespace is another node. */
  netns: number;
  /** The responder's own IPv4 address: only packets from or to it are counted. */
  self: string;
}

export interface DropProgram {
  insns: Buffer;
  /** Instruction indices of the BPF_LD_IMM64 that load each map's fd. */
  mapRefs: { enabled: number[]; drops: number[] };
}

/** The address's 4 bytes as the u32 a little-endian load of them gives (what the program compares with). */
export function addressWord(address: string): number {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`not an IPv4 address: ${address}`);
  return Buffer.from(parts).readInt32LE(0);
}

// Stack layout (offsets from r10).
const S_KEY0 = -4, S_HEAD = -16, S_NH = -24, S_IP = -48, S_PORTS = -56, S_KEY = -72, S_VALUE = -88, S_PTR = -96, S_INUM = -100;

/** Assemble the program (little-endian hosts: the instruction encoding and the address comparison assume it). */
export function dropWatchProgram(i: DropProgramInput): DropProgram {
  for (const n of ['headOffset', 'networkHeaderOffset', 'devOffset', 'devNetOffset', 'netInumOffset'] as const) {
    const v = i[n];
    if (!Number.isInteger(v) || v < 0 || v > 8192) throw new Error(`drop-bpf: ${n} ${v} is not a plausible offset`);
  }
  if (!Number.isInteger(i.netns) || i.netns <= 0 || i.netns > 0xffffffff) throw new Error(`drop-bpf: netns ${i.netns} is not a namespace inode number`);
  const self = addressWord(i.self);
  const a = new Asm();
  a.movX(6, 1); // r6 = ctx
  // Only while enabled: lookup(enabled, 0) and its value non-zero.
  a.st(W, 10, S_KEY0, 0);
  a.movX(2, 10).addK(2, S_KEY0);
  a.loadMap(1, 'enabled');
  a.call(HELPER.mapLookupElem);
  a.jK(JEQ, 0, 0, 'out');
  a.ldx(W, 1, 0, 0);
  a.jK(JEQ, 1, 0, 'out');
  a.ldx(DW, 7, 6, 0); // r7 = skb
  a.ldx(DW, 8, 6, 16); // r8 = reason
  a.jK(JEQ, 7, 0, 'out');
  // Only in this namespace: skb->dev->nd_net.net->ns.inum (no device: not a packet of ours).
  a.movX(1, 10).addK(1, S_PTR).movK(2, 8).movX(3, 7).addK(3, i.devOffset).call(HELPER.probeReadKernel);
  a.jK(JNE, 0, 0, 'out');
  a.ldx(DW, 3, 10, S_PTR);
  a.jK(JEQ, 3, 0, 'out');
  a.addK(3, i.devNetOffset);
  a.movX(1, 10).addK(1, S_PTR).movK(2, 8).call(HELPER.probeReadKernel);
  a.jK(JNE, 0, 0, 'out');
  a.ldx(DW, 3, 10, S_PTR);
  a.jK(JEQ, 3, 0, 'out');
  a.addK(3, i.netInumOffset);
  a.movX(1, 10).addK(1, S_INUM).movK(2, 4).call(HELPER.probeReadKernel);
  a.jK(JNE, 0, 0, 'out');
  a.ldx(W, 1, 10, S_INUM);
  a.jK(JNE, 1, i.netns | 0, 'out', JMP32);
  // head, network_header
  a.movX(1, 10).addK(1, S_HEAD).movK(2, 8).movX(3, 7).addK(3, i.headOffset).call(HELPER.probeReadKernel);
  a.jK(JNE, 0, 0, 'out');
  a.movX(1, 10).addK(1, S_NH).movK(2, 2).movX(3, 7).addK(3, i.networkHeaderOffset).call(HELPER.probeReadKernel);
  a.jK(JNE, 0, 0, 'out');
  a.ldx(DW, 9, 10, S_HEAD);
  a.jK(JEQ, 9, 0, 'out');
  a.ldx(H, 1, 10, S_NH);
  a.jK(JEQ, 1, 0xffff, 'out'); // never set (~0)
  a.addX(9, 1); // r9 = the IPv4 header
  a.movX(1, 10).addK(1, S_IP).movK(2, 20).movX(3, 9).call(HELPER.probeReadKernel);
  a.jK(JNE, 0, 0, 'out');
  a.ldx(B, 1, 10, S_IP);
  a.op(ALU64 | RSH | K, 1, 0, 0, 4);
  a.jK(JNE, 1, 4, 'out'); // version 4
  a.ldx(W, 1, 10, S_IP + 12); // saddr
  a.ldx(W, 2, 10, S_IP + 16); // daddr
  a.jK(JEQ, 1, self, 'match', JMP32);
  a.jK(JNE, 2, self, 'out', JMP32);
  a.label('match');
  a.st(DW, 10, S_KEY, 0).st(DW, 10, S_KEY + 8, 0);
  a.stx(W, 10, S_KEY, 1).stx(W, 10, S_KEY + 4, 2);
  a.ldx(B, 3, 10, S_IP + 9); // protocol
  a.stx(B, 10, S_KEY + 8, 3);
  a.jK(JEQ, 3, 6, 'ports');
  a.jK(JNE, 3, 17, 'lookup');
  a.label('ports');
  // A later fragment carries no ports (frag_off & 0x1fff, network order, loaded little-endian: 0xff1f).
  a.ldx(H, 1, 10, S_IP + 6);
  a.jK(JSET, 1, 0xff1f, 'lookup');
  a.ldx(B, 1, 10, S_IP);
  a.op(ALU64 | AND | K, 1, 0, 0, 0x0f);
  a.op(ALU64 | LSH | K, 1, 0, 0, 2);
  a.movX(3, 9).addX(3, 1);
  a.movX(1, 10).addK(1, S_PORTS).movK(2, 4).call(HELPER.probeReadKernel);
  a.jK(JNE, 0, 0, 'lookup');
  a.ldx(H, 1, 10, S_PORTS).stx(H, 10, S_KEY + 10, 1);
  a.ldx(H, 1, 10, S_PORTS + 2).stx(H, 10, S_KEY + 12, 1);
  a.label('lookup');
  a.loadMap(1, 'drops');
  a.movX(2, 10).addK(2, S_KEY);
  a.call(HELPER.mapLookupElem);
  a.jK(JEQ, 0, 0, 'new');
  a.stx(W, 0, 0, 8); // last reason
  a.movK(1, 1);
  a.op(OPCODE.ATOMIC_ADD_DW, 0, 1, 8, ADD); // count += 1
  a.ja('out');
  a.label('new');
  a.st(DW, 10, S_VALUE, 0);
  a.stx(W, 10, S_VALUE, 8);
  a.st(DW, 10, S_VALUE + 8, 1);
  a.loadMap(1, 'drops');
  a.movX(2, 10).addK(2, S_KEY);
  a.movX(3, 10).addK(3, S_VALUE);
  a.movK(4, 0); // BPF_ANY
  a.call(HELPER.mapUpdateElem);
  a.label('out');
  a.movK(0, 0);
  a.op(OPCODE.EXIT, 0, 0, 0, 0);
  return { insns: a.bytes(), mapRefs: { enabled: a.mapRefs.enabled ?? [], drops: a.mapRefs.drops ?? [] } };
}

/** A copy of the program with the maps' fds in their BPF_LD_IMM64 instructions. */
export function patchMapFds(p: DropProgram, fds: { enabled: number; drops: number }): Buffer {
  const out = Buffer.from(p.insns);
  for (const map of ['enabled', 'drops'] as const) {
    for (const at of p.mapRefs[map]) {
      if (out.readUInt8(at * 8) !== OPCODE.LD_IMM64 || out.readUInt8(at * 8 + 1) >> 4 !== BPF_PSEUDO_MAP_FD) throw new Error(`drop-bpf: instruction ${at} is not a map load`);
      out.writeInt32LE(fds[map], at * 8 + 4);
    }
  }
  return out;
}

/** One entry of the drops map. Addresses dotted; ports 0 for protocols without them. */
export interface DropEntry {
  saddr: string;
  daddr: string;
  proto: number;
  sport: number;
  dport: number;
  /** The kernel's number of the last reason (enum skb_drop_reason). */
  reason: number;
  count: number;
}

export function encodeDropKey(e: Pick<DropEntry, 'saddr' | 'daddr' | 'proto' | 'sport' | 'dport'>): Buffer {
  const k = Buffer.alloc(DROP_KEY_SIZE);
  k.writeInt32LE(addressWord(e.saddr), 0);
  k.writeInt32LE(addressWord(e.daddr), 4);
  k.writeUInt8(e.proto, 8);
  k.writeUInt16BE(e.sport, 10);
  k.writeUInt16BE(e.dport, 12);
  return k;
}

const dotted = (b: Buffer, at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;

/** Decode bpfMapEntries' key||value records (a trailing partial record is ignored). */
export function decodeDropEntries(buf: Buffer): DropEntry[] {
  const out: DropEntry[] = [];
  const size = DROP_KEY_SIZE + DROP_VALUE_SIZE;
  for (let at = 0; at + size <= buf.length; at += size) {
    out.push({
      saddr: dotted(buf, at),
      daddr: dotted(buf, at + 4),
      proto: buf.readUInt8(at + 8),
      sport: buf.readUInt16BE(at + 10),
      dport: buf.readUInt16BE(at + 12),
      reason: buf.readUInt32LE(at + DROP_KEY_SIZE),
      count: Number(buf.readBigUInt64LE(at + DROP_KEY_SIZE + 8)),
    });
  }
  return out;
}
