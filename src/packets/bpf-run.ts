// A classic BPF interpreter and the kernel's attach-time checks (net/core/filter.c: bpf_check_classic,
// check_load_and_stores), so filters can be tested without a kernel and a fake native binding can apply them.

import type { BpfInstruction } from '../native-types.js';
import {
  BPF_A,
  BPF_ABS,
  BPF_ADD,
  BPF_ALU,
  BPF_AND,
  BPF_B,
  BPF_DIV,
  BPF_H,
  BPF_IMM,
  BPF_IND,
  BPF_JA,
  BPF_JEQ,
  BPF_JGE,
  BPF_JGT,
  BPF_JMP,
  BPF_JSET,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_LEN,
  BPF_LSH,
  BPF_MAXINSNS,
  BPF_MEM,
  BPF_MEMWORDS,
  BPF_MISC,
  BPF_MOD,
  BPF_MSH,
  BPF_MUL,
  BPF_NEG,
  BPF_OR,
  BPF_RET,
  BPF_RSH,
  BPF_ST,
  BPF_STX,
  BPF_SUB,
  BPF_TAX,
  BPF_TXA,
  BPF_W,
  BPF_X,
  BPF_XOR,
  SKF_AD_ALU_XOR_X,
  SKF_AD_IFINDEX,
  SKF_AD_MAX,
  SKF_AD_OFF,
  SKF_AD_PKTTYPE,
  SKF_AD_PROTOCOL,
} from './bpf.js';

/** Rejected as the kernel rejects it at SO_ATTACH_FILTER (EINVAL). */
export class BpfValidationError extends Error {
  readonly code = 'EINVAL';
  /** Index of the offending instruction, -1 for the program as a whole. */
  readonly pc: number;
  constructor(pc: number, reason: string) {
    super(pc < 0 ? `invalid BPF program: ${reason}` : `invalid BPF program: instruction ${pc}: ${reason}`);
    this.name = 'BpfValidationError';
    this.pc = pc;
  }
}

const ALU_OPS = [BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_MOD, BPF_AND, BPF_OR, BPF_XOR, BPF_LSH, BPF_RSH];
const COND_JUMPS = [BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET];

/** The kernel's chk_code_allowed table. */
const ALLOWED: ReadonlySet<number> = new Set([
  ...ALU_OPS.flatMap((op) => [BPF_ALU | op | BPF_K, BPF_ALU | op | BPF_X]),
  BPF_ALU | BPF_NEG,
  ...[BPF_W, BPF_H, BPF_B].flatMap((size) => [BPF_LD | size | BPF_ABS, BPF_LD | size | BPF_IND]),
  BPF_LD | BPF_W | BPF_LEN,
  BPF_LD | BPF_IMM,
  BPF_LD | BPF_MEM,
  BPF_LDX | BPF_W | BPF_LEN,
  BPF_LDX | BPF_B | BPF_MSH,
  BPF_LDX | BPF_IMM,
  BPF_LDX | BPF_MEM,
  BPF_ST,
  BPF_STX,
  BPF_MISC | BPF_TAX,
  BPF_MISC | BPF_TXA,
  BPF_RET | BPF_K,
  BPF_RET | BPF_A,
  BPF_JMP | BPF_JA,
  ...COND_JUMPS.flatMap((op) => [BPF_JMP | op | BPF_K, BPF_JMP | op | BPF_X]),
]);
const COND_JUMP_CODES: ReadonlySet<number> = new Set(COND_JUMPS.flatMap((op) => [BPF_JMP | op | BPF_K, BPF_JMP | op | BPF_X]));

const AD_BASE = SKF_AD_OFF >>> 0; // 0xfffff000

function isUint(v: unknown, max: number): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
}

/** Throws BpfValidationError for what the kernel's bpf_check_classic would refuse. */
export function validateBpf(program: readonly BpfInstruction[]): void {
  const flen = program.length;
  if (flen === 0 || flen > BPF_MAXINSNS) throw new BpfValidationError(-1, `length ${flen} is not 1..${BPF_MAXINSNS}`);
  program.forEach((ins, pc) => {
    if (!isUint(ins.code, 0xffff) || !isUint(ins.jt, 0xff) || !isUint(ins.jf, 0xff) || !isUint(ins.k, 0xffffffff)) {
      throw new BpfValidationError(pc, 'fields out of range (code u16, jt u8, jf u8, k u32)');
    }
    const { code, k } = ins;
    if (!ALLOWED.has(code)) throw new BpfValidationError(pc, `unknown opcode 0x${code.toString(16)}`);
    switch (code) {
      case BPF_ALU | BPF_DIV | BPF_K:
      case BPF_ALU | BPF_MOD | BPF_K:
        if (k === 0) throw new BpfValidationError(pc, 'division by constant zero');
        break;
      case BPF_ALU | BPF_LSH | BPF_K:
      case BPF_ALU | BPF_RSH | BPF_K:
        if (k >= 32) throw new BpfValidationError(pc, `shift by ${k}`);
        break;
      case BPF_LD | BPF_MEM:
      case BPF_LDX | BPF_MEM:
      case BPF_ST:
      case BPF_STX:
        if (k >= BPF_MEMWORDS) throw new BpfValidationError(pc, `scratch slot ${k} out of range`);
        break;
      case BPF_JMP | BPF_JA:
        if (k >= flen - pc - 1) throw new BpfValidationError(pc, 'jump out of range');
        break;
      case BPF_LD | BPF_W | BPF_ABS:
      case BPF_LD | BPF_H | BPF_ABS:
      case BPF_LD | BPF_B | BPF_ABS:
        if (k >= AD_BASE && (k - AD_BASE >= SKF_AD_MAX || (k - AD_BASE) % 4 !== 0)) {
          throw new BpfValidationError(pc, `unknown ancillary load 0x${k.toString(16)}`);
        }
        break;
      default:
        if (COND_JUMP_CODES.has(code) && (pc + ins.jt + 1 >= flen || pc + ins.jf + 1 >= flen)) {
          throw new BpfValidationError(pc, 'jump out of range');
        }
    }
  });
  const last = (program[flen - 1] as BpfInstruction).code;
  if (last !== (BPF_RET | BPF_K) && last !== (BPF_RET | BPF_A)) {
    throw new BpfValidationError(flen - 1, 'the last instruction is not a return');
  }
  checkLoadsAndStores(program);
}

/** No scratch slot may be read on a path where it was not written (kernel: check_load_and_stores). */
function checkLoadsAndStores(program: readonly BpfInstruction[]): void {
  const masks = new Array<number>(program.length).fill(0xffff);
  let valid = 0;
  program.forEach((ins, pc) => {
    valid &= masks[pc] as number;
    const { code, k } = ins;
    if (code === BPF_ST || code === BPF_STX) {
      valid |= 1 << k;
    } else if (code === (BPF_LD | BPF_MEM) || code === (BPF_LDX | BPF_MEM)) {
      if ((valid & (1 << k)) === 0) throw new BpfValidationError(pc, `scratch slot ${k} read before it is written`);
    } else if (code === (BPF_JMP | BPF_JA)) {
      masks[pc + 1 + k] = (masks[pc + 1 + k] as number) & valid;
      valid = 0xffff;
    } else if (COND_JUMP_CODES.has(code)) {
      masks[pc + 1 + ins.jt] = (masks[pc + 1 + ins.jt] as number) & valid;
      masks[pc + 1 + ins.jf] = (masks[pc + 1 + ins.jf] as number) & valid;
      valid = 0xffff;
    }
  });
}

export interface BpfContext {
  /** skb->protocol as the ancillary load returns it (host order). Default 0x0800 (ETH_P_IP). */
  protocol?: number;
  /** skb->pkt_type (0 host, 4 outgoing, ...). Default 0. */
  pktType?: number;
  /** skb->dev->ifindex. Default 0. */
  ifindex?: number;
}

/**
 * Runs a program over a packet as the kernel's socket filter would and returns the program's verdict:
 * 0 drops; otherwise the number of bytes to keep (the kernel then keeps min(verdict, packet length)).
 * Out-of-bounds packet loads and division by X = 0 end the program with 0, as in the kernel.
 * Validates first (throws BpfValidationError). Loads at negative offsets other than the ancillary
 * area (SKF_NET_OFF, SKF_LL_OFF) are not emulated and drop.
 */
export function runBpf(program: readonly BpfInstruction[], packet: Uint8Array, ctx: BpfContext = {}): number {
  validateBpf(program);
  const len = packet.length;
  const mem = new Uint32Array(BPF_MEMWORDS);
  let A = 0;
  let X = 0;
  let pc = 0;

  // Returns null when the load is out of bounds.
  const load = (offset: number, size: number): number | null => {
    const n = size === BPF_W ? 4 : size === BPF_H ? 2 : 1;
    if (offset < 0 || offset + n > len) return null;
    if (n === 1) return packet[offset] as number;
    if (n === 2) return ((packet[offset] as number) << 8) | (packet[offset + 1] as number);
    return (
      (((packet[offset] as number) << 24) |
        ((packet[offset + 1] as number) << 16) |
        ((packet[offset + 2] as number) << 8) |
        (packet[offset + 3] as number)) >>>
      0
    );
  };
  const ancillary = (field: number): number => {
    switch (field) {
      case SKF_AD_PROTOCOL:
        return (ctx.protocol ?? 0x0800) & 0xffff;
      case SKF_AD_PKTTYPE:
        return ctx.pktType ?? 0;
      case SKF_AD_IFINDEX:
        return ctx.ifindex ?? 0;
      case SKF_AD_ALU_XOR_X:
        return (A ^ X) >>> 0;
      default:
        throw new Error(`ancillary load SKF_AD_OFF+${field} is not emulated`);
    }
  };

  for (;;) {
    const ins = program[pc] as BpfInstruction; // validateBpf guarantees pc stays in range
    pc++;
    const { code, k } = ins;
    const cls = code & 0x07;
    switch (cls) {
      case BPF_LD: {
        const mode = code & 0xe0;
        const size = code & 0x18;
        if (mode === BPF_IMM) A = k;
        else if (mode === BPF_MEM) A = mem[k] as number;
        else if (mode === BPF_LEN) A = len;
        else if (mode === BPF_ABS && k >= AD_BASE) A = ancillary(k - AD_BASE);
        else {
          // The kernel computes IND offsets as a signed 32-bit X + k; negative ones are special areas.
          const offset = mode === BPF_ABS ? (k | 0) : ((X + k) | 0);
          const v = load(offset, size);
          if (v === null) return 0;
          A = v;
        }
        break;
      }
      case BPF_LDX: {
        const mode = code & 0xe0;
        if (mode === BPF_IMM) X = k;
        else if (mode === BPF_MEM) X = mem[k] as number;
        else if (mode === BPF_LEN) X = len;
        else {
          const v = load(k | 0, BPF_B); // BPF_MSH
          if (v === null) return 0;
          X = (v & 0x0f) << 2;
        }
        break;
      }
      case BPF_ST:
        mem[k] = A;
        break;
      case BPF_STX:
        mem[k] = X;
        break;
      case BPF_ALU: {
        const op = code & 0xf0;
        if (op === BPF_NEG) {
          A = -A >>> 0;
          break;
        }
        const v = (code & BPF_X) !== 0 ? X : k;
        switch (op) {
          case BPF_ADD:
            A = (A + v) >>> 0;
            break;
          case BPF_SUB:
            A = (A - v) >>> 0;
            break;
          case BPF_MUL:
            A = Math.imul(A, v) >>> 0;
            break;
          case BPF_DIV:
            if (v === 0) return 0;
            A = Math.floor(A / v) >>> 0;
            break;
          case BPF_MOD:
            if (v === 0) return 0;
            A = A % v >>> 0;
            break;
          case BPF_AND:
            A = (A & v) >>> 0;
            break;
          case BPF_OR:
            A = (A | v) >>> 0;
            break;
          case BPF_XOR:
            A = (A ^ v) >>> 0;
            break;
          case BPF_LSH:
            A = (A << (v & 31)) >>> 0; // shift counts are taken mod 32, as the kernel's 32-bit ALU does
            break;
          case BPF_RSH:
            A = A >>> (v & 31);
            break;
        }
        break;
      }
      case BPF_JMP: {
        const op = code & 0xf0;
        if (op === BPF_JA) {
          pc += k;
          break;
        }
        const v = (code & BPF_X) !== 0 ? X : k;
        const taken =
          op === BPF_JEQ ? A === v : op === BPF_JGT ? A > v : op === BPF_JGE ? A >= v : (A & v) !== 0; // BPF_JSET
        pc += taken ? ins.jt : ins.jf;
        break;
      }
      case BPF_RET:
        return (code & 0x18) === BPF_A ? A : k;
      case BPF_MISC:
        if ((code & 0xf8) === BPF_TAX) X = A;
        else if ((code & 0xf8) === BPF_TXA) A = X;
        break;
    }
  }
}
