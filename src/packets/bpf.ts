// Classic BPF socket filters (linux/filter.h, Documentation/networking/filter.rst): opcodes, a small
// assembler with labels, and the programs that keep everything but probe packets out of user space.

import type { BpfInstruction } from '../native-types.js';
import { IPPROTO_ICMP, IPPROTO_IPIP, IPPROTO_TCP, IPPROTO_UDP } from './ipv4.js';
import { PROBE_MAGIC, PROBE_TCP_HEADER_LENGTH, PROBE_TCP_MSS, PROBE_TCP_TS_WORD } from './probe.js';
import { TCP_FLAGS } from './tcp.js';
import { VXLAN_MAGIC_OFFSET } from './vxlan.js';

// Instruction classes.
export const BPF_LD = 0x00;
export const BPF_LDX = 0x01;
export const BPF_ST = 0x02;
export const BPF_STX = 0x03;
export const BPF_ALU = 0x04;
export const BPF_JMP = 0x05;
export const BPF_RET = 0x06;
export const BPF_MISC = 0x07;
// ld/ldx sizes.
export const BPF_W = 0x00;
export const BPF_H = 0x08;
export const BPF_B = 0x10;
// ld/ldx modes.
export const BPF_IMM = 0x00;
export const BPF_ABS = 0x20;
export const BPF_IND = 0x40;
export const BPF_MEM = 0x60;
export const BPF_LEN = 0x80;
export const BPF_MSH = 0xa0;
// alu operations.
export const BPF_ADD = 0x00;
export const BPF_SUB = 0x10;
export const BPF_MUL = 0x20;
export const BPF_DIV = 0x30;
export const BPF_OR = 0x40;
export const BPF_AND = 0x50;
export const BPF_LSH = 0x60;
export const BPF_RSH = 0x70;
export const BPF_NEG = 0x80;
export const BPF_MOD = 0x90;
export const BPF_XOR = 0xa0;
// jmp operations.
export const BPF_JA = 0x00;
export const BPF_JEQ = 0x10;
export const BPF_JGT = 0x20;
export const BPF_JGE = 0x30;
export const BPF_JSET = 0x40;
// Operand source.
export const BPF_K = 0x00;
export const BPF_X = 0x08;
// ret source (BPF_K above, or A).
export const BPF_A = 0x10;
// misc operations.
export const BPF_TAX = 0x00;
export const BPF_TXA = 0x80;

export const BPF_MEMWORDS = 16;
export const BPF_MAXINSNS = 4096;

/** Ancillary data: loads at SKF_AD_OFF + n read skb metadata instead of packet bytes. */
export const SKF_AD_OFF = -0x1000;
export const SKF_AD_PROTOCOL = 0;
export const SKF_AD_PKTTYPE = 4;
export const SKF_AD_IFINDEX = 8;
export const SKF_AD_ALU_XOR_X = 40;
export const SKF_AD_MAX = 64;

export const ETH_P_IP = 0x0800;
/**
 * What an accepted packet keeps: all of it. Only probes pass these filters, so nothing else is ever
 * copied; and an mtu probe's size is its evidence, which a trimmed packet loses (the kernel trims the
 * skb to the filter's answer, and then reports the trimmed length). User space copies at most one
 * receive slot (native/socket.cc kSlotBytes, 16 KB); the receive buffer is charged the same either way
 * (a trim does not shrink an skb's truesize).
 */
export const SNAPLEN = 0xffff;
/** Most ports one port set may hold: keeps every conditional jump within 255 instructions. */
export const MAX_PORTS = 32;

// ---------------------------------------------------------------------------------------------
// Assembler

/** A jump target: a label, or null for "the next instruction". */
export type JumpTarget = string | null;

export type AsmItem =
  | { kind: 'label'; name: string }
  | { kind: 'insn'; code: number; k: number }
  | { kind: 'jump'; code: number; k: number; jt: JumpTarget; jf: JumpTarget }
  | { kind: 'ja'; target: string };

export type BpfSize = 'w' | 'h' | 'b';
const SIZE: Record<BpfSize, number> = { w: BPF_W, h: BPF_H, b: BPF_B };

const u32 = (k: number): number => {
  if (!Number.isInteger(k) || k < -0x80000000 || k > 0xffffffff) throw new RangeError(`BPF constant out of range: ${k}`);
  return k >>> 0;
};
const memSlot = (i: number): number => {
  if (!Number.isInteger(i) || i < 0 || i >= BPF_MEMWORDS) throw new RangeError(`scratch slot must be 0..15, got ${i}`);
  return i;
};
const insn = (code: number, k = 0): AsmItem => ({ kind: 'insn', code, k: u32(k) });

export const label = (name: string): AsmItem => ({ kind: 'label', name });
/** A = P[k:size] */
export const ldAbs = (size: BpfSize, k: number): AsmItem => insn(BPF_LD | SIZE[size] | BPF_ABS, k);
/** A = P[X+k:size] */
export const ldInd = (size: BpfSize, k: number): AsmItem => insn(BPF_LD | SIZE[size] | BPF_IND, k);
/** A = ancillary field (SKF_AD_PROTOCOL, SKF_AD_PKTTYPE, ...). */
export const ldAnc = (field: number): AsmItem => insn(BPF_LD | BPF_H | BPF_ABS, SKF_AD_OFF + field);
export const ldImm = (k: number): AsmItem => insn(BPF_LD | BPF_IMM, k);
export const ldMem = (i: number): AsmItem => insn(BPF_LD | BPF_MEM, memSlot(i));
export const ldLen = (): AsmItem => insn(BPF_LD | BPF_W | BPF_LEN);
export const ldxImm = (k: number): AsmItem => insn(BPF_LDX | BPF_IMM, k);
export const ldxMem = (i: number): AsmItem => insn(BPF_LDX | BPF_MEM, memSlot(i));
export const ldxLen = (): AsmItem => insn(BPF_LDX | BPF_W | BPF_LEN);
/** X = 4 * (P[k] & 0xf): the IPv4 header length. */
export const ldxMsh = (k: number): AsmItem => insn(BPF_LDX | BPF_B | BPF_MSH, k);
export const st = (i: number): AsmItem => insn(BPF_ST, memSlot(i));
export const stx = (i: number): AsmItem => insn(BPF_STX, memSlot(i));
/** A = A <op> k */
export const alu = (op: number, k: number): AsmItem => insn(BPF_ALU | op | BPF_K, k);
/** A = A <op> X */
export const aluX = (op: number): AsmItem => insn(BPF_ALU | op | BPF_X);
export const neg = (): AsmItem => insn(BPF_ALU | BPF_NEG);
export const tax = (): AsmItem => insn(BPF_MISC | BPF_TAX);
export const txa = (): AsmItem => insn(BPF_MISC | BPF_TXA);
export const ret = (k: number): AsmItem => insn(BPF_RET | BPF_K, k);
export const retA = (): AsmItem => insn(BPF_RET | BPF_A);
export const ja = (target: string): AsmItem => ({ kind: 'ja', target });
/** if (A <op> k) goto jt else goto jf */
export const jmp = (op: number, k: number, jt: JumpTarget, jf: JumpTarget): AsmItem => ({
  kind: 'jump',
  code: BPF_JMP | op | BPF_K,
  k: u32(k),
  jt,
  jf,
});
/** if (A <op> X) goto jt else goto jf */
export const jmpX = (op: number, jt: JumpTarget, jf: JumpTarget): AsmItem => ({
  kind: 'jump',
  code: BPF_JMP | op | BPF_X,
  k: 0,
  jt,
  jf,
});
export const jeq = (k: number, jt: JumpTarget, jf: JumpTarget = null): AsmItem => jmp(BPF_JEQ, k, jt, jf);
export const jgt = (k: number, jt: JumpTarget, jf: JumpTarget = null): AsmItem => jmp(BPF_JGT, k, jt, jf);
export const jge = (k: number, jt: JumpTarget, jf: JumpTarget = null): AsmItem => jmp(BPF_JGE, k, jt, jf);
export const jset = (k: number, jt: JumpTarget, jf: JumpTarget = null): AsmItem => jmp(BPF_JSET, k, jt, jf);

export class BpfAssemblyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BpfAssemblyError';
  }
}

/** Resolves labels into forward jump offsets (classic BPF cannot jump backward; jt/jf reach at most 255). */
export function assemble(items: readonly AsmItem[]): BpfInstruction[] {
  const labels = new Map<string, number>();
  let pc = 0;
  for (const item of items) {
    if (item.kind === 'label') {
      if (labels.has(item.name)) throw new BpfAssemblyError(`label "${item.name}" defined twice`);
      labels.set(item.name, pc);
    } else {
      pc++;
    }
  }
  if (pc > BPF_MAXINSNS) throw new BpfAssemblyError(`program has ${pc} instructions, the kernel allows ${BPF_MAXINSNS}`);
  const offset = (from: number, target: JumpTarget, max: number): number => {
    if (target === null) return 0;
    const to = labels.get(target);
    if (to === undefined) throw new BpfAssemblyError(`instruction ${from}: unknown label "${target}"`);
    const off = to - (from + 1);
    if (off < 0) throw new BpfAssemblyError(`instruction ${from}: jump to "${target}" goes backward`);
    if (to >= pc) throw new BpfAssemblyError(`instruction ${from}: label "${target}" is past the last instruction`);
    if (off > max) throw new BpfAssemblyError(`instruction ${from}: jump to "${target}" is ${off} instructions, max ${max}`);
    return off;
  };
  const out: BpfInstruction[] = [];
  for (const item of items) {
    const at = out.length;
    switch (item.kind) {
      case 'label':
        break;
      case 'insn':
        out.push({ code: item.code, jt: 0, jf: 0, k: item.k });
        break;
      case 'jump':
        out.push({ code: item.code, jt: offset(at, item.jt, 255), jf: offset(at, item.jf, 255), k: item.k });
        break;
      case 'ja':
        out.push({ code: BPF_JMP | BPF_JA, jt: 0, jf: 0, k: offset(at, item.target, BPF_MAXINSNS) });
        break;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Programs. Data starts at the IPv4 header at offset `base` (0 for raw sockets and SOCK_DGRAM packet
// sockets, 14 behind an Ethernet header). Accept returns SNAPLEN; out-of-bounds loads drop (kernel rule).

const DROP = 'drop';
const ACCEPT = 'accept';

function checkBase(base: number): void {
  if (!Number.isInteger(base) || base < 0 || base > 1024) throw new RangeError(`base must be an integer 0..1024, got ${base}`);
}

function checkPort(p: number): void {
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new RangeError(`port must be an integer 1..65535, got ${p}`);
}

function portSet(ports: readonly number[]): number[] {
  ports.forEach(checkPort);
  const set = [...new Set(ports)];
  if (set.length > MAX_PORTS) throw new RangeError(`at most ${MAX_PORTS} ports per filter, got ${set.length}`);
  return set;
}

/** IPv4 (by skb protocol and version nibble), IHL ≥ 5, first fragment only; leaves X = IP header length. */
function ipv4Prologue(base: number): AsmItem[] {
  return [
    ldAnc(SKF_AD_PROTOCOL),
    jeq(ETH_P_IP, null, DROP),
    ldAbs('b', base), // version | IHL
    jge(0x45, null, DROP),
    jgt(0x4f, DROP, null),
    ldAbs('h', base + 6), // flags | fragment offset
    jset(0x1fff, DROP, null),
    ldxMsh(base),
  ];
}

function protocolIs(base: number, protocol: number): AsmItem[] {
  return [ldAbs('b', base + 9), jeq(protocol, null, DROP)];
}

function epilogue(): AsmItem[] {
  return [label(DROP), ret(0), label(ACCEPT), ret(SNAPLEN)];
}

/** With A = a port: jump to `onMatch` when it is in `ports`, else drop. */
function portMatch(ports: readonly number[], onMatch: string): AsmItem[] {
  if (ports.length === 0) return [ja(DROP)];
  return ports.map((p, i) => jeq(p, onMatch, i === ports.length - 1 ? DROP : null));
}

/**
 * With X = IP header length: a probe SYN's stamp (probe.ts encodeProbeSyn), then the destination port.
 * SYN set and ACK clear; data offset 9 (byte 12's high nibble; the reserved low bits are ignored); the options
 * are an MSS (02 04) of at most PROBE_TCP_MSS, then NOP NOP and a timestamps option (01 01 08 0a) carrying the
 * tag's 32 high bits. Real clients also send SACK-permitted and window scale (Linux: data offset 10, Windows 8,
 * macOS 11) and floods usually nothing, so neither passes; the source port is not checked (a NAT may rewrite
 * it) and a lower MSS is accepted (a middlebox may clamp it).
 */
function tcpSynSection(ports: readonly number[], base: number): AsmItem[] {
  return [
    ldInd('b', base + 13), // TCP flags
    alu(BPF_AND, TCP_FLAGS.SYN | TCP_FLAGS.ACK),
    jeq(TCP_FLAGS.SYN, null, DROP),
    // Not the source port: a NAT in the path may rewrite it, and the witness must still see the probe.
    ldInd('b', base + 12), // data offset | reserved
    alu(BPF_AND, 0xf0),
    jeq((PROBE_TCP_HEADER_LENGTH / 4) << 4, null, DROP),
    ldInd('h', base + 20), // the first option: MSS, length 4
    jeq(0x0204, null, DROP),
    ldInd('h', base + 22), // its value: ours, or lower where a middlebox clamped it
    jgt(PROBE_TCP_MSS, DROP, null),
    ldInd('w', base + 24), // NOP NOP timestamps(10)
    jeq(PROBE_TCP_TS_WORD, null, DROP),
    ldInd('h', base + 2), // destination port
    ...portMatch(ports, ACCEPT),
  ];
}

function udpProbeSection(ports: readonly number[], base: number): AsmItem[] {
  return [
    ldInd('h', base + 2),
    ...portMatch(ports, 'udp-magic'),
    label('udp-magic'),
    ldInd('w', base + 8), // a bare probe: magic at the start of the UDP payload
    jeq(PROBE_MAGIC, ACCEPT, null),
    ldInd('w', base + 8 + VXLAN_MAGIC_OFFSET), // a VXLAN-framed probe
    jeq(PROBE_MAGIC, ACCEPT, DROP),
  ];
}

function ipipProbeSection(base: number): AsmItem[] {
  return [
    ldInd('b', base), // inner version | IHL
    jge(0x45, null, DROP),
    jgt(0x4f, DROP, null),
    ldInd('b', base + 9), // inner protocol
    jeq(IPPROTO_UDP, null, DROP),
    ldInd('b', base),
    alu(BPF_AND, 0x0f),
    alu(BPF_LSH, 2), // inner header length
    aluX(BPF_ADD),
    tax(), // X = outer + inner header lengths
    ldInd('w', base + 8), // past the inner UDP header
    jeq(PROBE_MAGIC, ACCEPT, DROP),
  ];
}

export function dropAll(): BpfInstruction[] {
  return assemble([ret(0)]);
}

export function acceptAll(): BpfInstruction[] {
  return assemble([ret(SNAPLEN)]);
}

/**
 * Probe SYNs to one of `ports`: SYN set and ACK clear, AND the probe stamp (data offset 9, options MSS ≤
 * PROBE_TCP_MSS, NOP, NOP, timestamps), see encodeProbeSyn and tcpSynSection.
 * Why the stamp: accepting every SYN-without-ACK to a watched port let a SYN flood or a busy apiserver's
 * connection churn into user space, costing the responder as much as an unfiltered socket (bench
 * witness-cost). The HMAC tag in the sequence number cannot be checked here; the stamp can, in a few
 * instructions, and real clients' SYNs (several options) and floods (none) never carry it.
 */
export function tcpSynToPorts(ports: readonly number[], base = 0): BpfInstruction[] {
  checkBase(base);
  const set = portSet(ports);
  return assemble([...ipv4Prologue(base), ...protocolIs(base, IPPROTO_TCP), ...tcpSynSection(set, base), ...epilogue()]);
}

/** UDP datagrams to one of `ports` carrying the probe magic at payload offset 0 or VXLAN_MAGIC_OFFSET. */
export function udpProbeToPorts(ports: readonly number[], base = 0): BpfInstruction[] {
  checkBase(base);
  const set = portSet(ports);
  return assemble([...ipv4Prologue(base), ...protocolIs(base, IPPROTO_UDP), ...udpProbeSection(set, base), ...epilogue()]);
}

/** IP-in-IP packets whose inner IPv4/UDP packet carries the probe magic (inner IHL read from the packet). */
export function ipipProbe(base = 0): BpfInstruction[] {
  checkBase(base);
  return assemble([...ipv4Prologue(base), ...protocolIs(base, IPPROTO_IPIP), ...ipipProbeSection(base), ...epilogue()]);
}

/** ICMP destination unreachable / time exceeded / parameter problem quoting an IPv4 header of protocol 4, 6 or 17. */
export function icmpErrorQuotingProbe(base = 0): BpfInstruction[] {
  checkBase(base);
  return assemble([
    ...ipv4Prologue(base),
    ...protocolIs(base, IPPROTO_ICMP),
    ldInd('b', base), // ICMP type
    jeq(3, 'quoted'),
    jeq(11, 'quoted'),
    jeq(12, 'quoted', DROP),
    label('quoted'),
    ldInd('b', base + 8), // quoted version | IHL
    jge(0x45, null, DROP),
    jgt(0x4f, DROP, null),
    ldInd('b', base + 8 + 9), // quoted protocol
    jeq(IPPROTO_IPIP, ACCEPT),
    jeq(IPPROTO_TCP, ACCEPT),
    jeq(IPPROTO_UDP, ACCEPT, DROP),
    ...epilogue(),
  ]);
}

/** TCP segments to a port in [lo, hi] with SYN+ACK or RST: the replies to our probes (source side). */
export function tcpRepliesToPortRange(lo: number, hi: number, base = 0): BpfInstruction[] {
  checkBase(base);
  checkPort(lo);
  checkPort(hi);
  if (lo > hi) throw new RangeError(`port range ${lo}..${hi} is empty`);
  return assemble([
    ...ipv4Prologue(base),
    ...protocolIs(base, IPPROTO_TCP),
    ldInd('h', base + 2),
    jge(lo, null, DROP),
    jgt(hi, DROP, null),
    ldInd('b', base + 13),
    jset(TCP_FLAGS.RST, ACCEPT),
    alu(BPF_AND, TCP_FLAGS.SYN | TCP_FLAGS.ACK),
    jeq(TCP_FLAGS.SYN | TCP_FLAGS.ACK, ACCEPT, DROP),
    ...epilogue(),
  ]);
}

export interface WitnessProgramOptions {
  /** TCP SYN probes to these ports; empty: none. */
  tcpPorts: readonly number[];
  /** UDP probes (bare or VXLAN-framed) to these ports; empty: none. */
  udpPorts: readonly number[];
  /** IP-in-IP probes. */
  ipip: boolean;
  base?: number;
}

/**
 * One program accepting what tcpSynToPorts, udpProbeToPorts and ipipProbe accept: the responder's witness filter.
 * Its TCP part is tcpSynToPorts's: only SYNs carrying the probe stamp (data offset 9, MSS ≤ PROBE_TCP_MSS,
 * NOP NOP timestamps) reach user space, so a SYN flood or a busy apiserver stays in the kernel.
 */
export function witnessProgram(o: WitnessProgramOptions): BpfInstruction[] {
  const base = o.base ?? 0;
  checkBase(base);
  const tcp = portSet(o.tcpPorts);
  const udp = portSet(o.udpPorts);
  const items: AsmItem[] = [...ipv4Prologue(base), ldAbs('b', base + 9)];
  if (tcp.length > 0) items.push(jeq(IPPROTO_TCP, 'tcp'));
  if (udp.length > 0) items.push(jeq(IPPROTO_UDP, 'udp'));
  if (o.ipip) items.push(jeq(IPPROTO_IPIP, 'ipip'));
  items.push(ja(DROP));
  if (tcp.length > 0) items.push(label('tcp'), ...tcpSynSection(tcp, base));
  if (udp.length > 0) items.push(label('udp'), ...udpProbeSection(udp, base));
  if (o.ipip) items.push(label('ipip'), ...ipipProbeSection(base));
  items.push(...epilogue());
  return assemble(items);
}
