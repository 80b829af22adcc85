import t, { type Test } from 'tap';
import fc from 'fast-check';
import type { BpfInstruction } from '../../src/native-types.js';
import {
  BPF_ABS,
  BPF_ADD,
  BPF_ALU,
  BPF_AND,
  BPF_B,
  BPF_DIV,
  BPF_H,
  BPF_JA,
  BPF_JEQ,
  BPF_JGE,
  BPF_JGT,
  BPF_JMP,
  BPF_JSET,
  BPF_K,
  BPF_LD,
  BPF_LEN,
  BPF_LSH,
  BPF_MEM,
  BPF_MOD,
  BPF_MUL,
  BPF_OR,
  BPF_RET,
  BPF_RSH,
  BPF_SUB,
  BPF_W,
  BPF_X,
  BPF_XOR,
  BpfAssemblyError,
  MAX_PORTS,
  SKF_AD_ALU_XOR_X,
  SKF_AD_IFINDEX,
  SKF_AD_OFF,
  SKF_AD_PKTTYPE,
  SKF_AD_PROTOCOL,
  SNAPLEN,
  acceptAll,
  alu,
  aluX,
  assemble,
  dropAll,
  icmpErrorQuotingProbe,
  ipipProbe,
  ja,
  jeq,
  jge,
  jgt,
  jmpX,
  jset,
  label,
  ldAbs,
  ldAnc,
  ldImm,
  ldInd,
  ldLen,
  ldMem,
  ldxImm,
  ldxLen,
  ldxMem,
  ldxMsh,
  neg,
  ret,
  retA,
  st,
  stx,
  tax,
  tcpRepliesToPortRange,
  tcpSynToPorts,
  txa,
  udpProbeToPorts,
  witnessProgram,
} from '../../src/packets/bpf.js';
import { BpfValidationError, runBpf, validateBpf } from '../../src/packets/bpf-run.js';
import { encodeIcmpError } from '../../src/packets/icmp.js';
import { buildIpipInner } from '../../src/packets/ipip.js';
import { encodeIPv4, internetChecksum } from '../../src/packets/ipv4.js';
import {
  PROBE_MAGIC,
  PROBE_TCP_MSS,
  PROBE_TCP_SPORT_HI,
  PROBE_TCP_SPORT_LO,
  deriveSessionKey,
  encodeProbePayload,
  encodeProbeSyn,
  padProbe,
} from '../../src/packets/probe.js';
import { TCP_FLAGS, encodeTcp } from '../../src/packets/tcp.js';
import { encodeUdp } from '../../src/packets/udp.js';
import { VXLAN_MAGIC_OFFSET, buildVxlanProbe } from '../../src/packets/vxlan.js';
import { withIpOptions } from '../helpers/packets.js';

// ------------------------------------------------------------------------------------------------
// Packet helpers

const A = '10.0.0.1';
const B = '10.0.0.2';
const SESSION = Buffer.from('0102030405060708', 'hex');
const KEY = deriveSessionKey(Buffer.from('k'), SESSION);
const PROBE = encodeProbePayload({ key: KEY, sessionId: SESSION, src: A, dst: B, transport: 'udp', port: 51820, check: 'wireguard', idx: 1, attempt: 0, sendTimeMs: 0 });
const TAG = { seq: 0x002a1234, tsVal: 0x5eed5eed };

const ip = (protocol: number, payload: Buffer) => encodeIPv4({ src: A, dst: B, protocol, payload });
/** An ordinary TCP segment (a real client's: ephemeral source port, MSS 1460): never a probe. */
const tcp = (dstPort: number, flags: number, srcPort = 40000) =>
  ip(6, encodeTcp({ srcAddr: A, dstAddr: B, srcPort, dstPort, seq: 1, flags, mss: 1460 }));
/** A probe SYN as the prober sends it: the stamp (data offset 9: MSS = PROBE_TCP_MSS, NOP NOP timestamps). */
const probeSyn = (dstPort: number, srcPort = PROBE_TCP_SPORT_LO) => ip(6, encodeProbeSyn({ srcAddr: A, dstAddr: B, srcPort, dstPort, tag: TAG }));
/**
 * A TCP segment shaped like the stamp but with any flags, source port, MSS (null: no option), timestamps option
 * (false: none), extra option words, or another word where NOP NOP timestamps belongs.
 */
function stamped(dstPort: number, o: { flags?: number; srcPort?: number; mss?: number | null; ts?: boolean; tsWord?: number | null; extraWords?: number } = {}): Buffer {
  const { flags = TCP_FLAGS.SYN, srcPort = PROBE_TCP_SPORT_LO, mss = PROBE_TCP_MSS, ts = true, tsWord = null, extraWords = 0 } = o;
  const seg = encodeTcp({
    srcAddr: A,
    dstAddr: B,
    srcPort,
    dstPort,
    seq: TAG.seq,
    flags,
    ...(mss === null ? {} : { mss }),
    ...(ts ? { timestamp: { val: TAG.tsVal, ecr: 0 } } : {}),
  });
  if (tsWord !== null && seg.length >= 28) seg.writeUInt32BE(tsWord >>> 0, 24);
  return ip(6, withTcpOptionWords(seg, extraWords));
}
/** Appends `words` 4-byte words of NOP options to a TCP header without payload and fixes its data offset. */
function withTcpOptionWords(seg: Buffer, words: number): Buffer {
  if (words === 0) return seg;
  const out = Buffer.concat([seg, Buffer.alloc(words * 4, 1)]);
  out[12] = (((out[12] as number) >> 4) + words) << 4;
  return out;
}
const udp = (dstPort: number, payload: Buffer) => ip(17, encodeUdp({ srcAddr: A, dstAddr: B, srcPort: 40000, dstPort, payload }));
const ipip = (inner: Buffer) => ip(4, inner);
const icmp = (type: number, quoted: Buffer) => ip(1, encodeIcmpError({ type, code: 3, quoted }));

function withFrag(pkt: Buffer, field: number): Buffer {
  const out = Buffer.from(pkt);
  out.writeUInt16BE(field, 6);
  return out;
}
function withByte(pkt: Buffer, at: number, v: number): Buffer {
  const out = Buffer.from(pkt);
  out[at] = v;
  return out;
}
const ETH = Buffer.from('02000000000202000000000108 00'.replace(/ /g, ''), 'hex');
const eth = (pkt: Buffer) => Buffer.concat([ETH, pkt]);

interface Case {
  name: string;
  pkt: Buffer;
  accept: boolean;
  ctx?: { protocol?: number; pktType?: number };
}

/** Runs every case at base 0 (raw / SOCK_DGRAM) and base 14 (Ethernet in front). */
function runCases(t: Test, build: (base: number) => BpfInstruction[], cases: Case[]) {
  for (const base of [0, 14]) {
    const prog = build(base);
    validateBpf(prog);
    for (const c of cases) {
      const data = base === 0 ? c.pkt : eth(c.pkt);
      t.equal(runBpf(prog, data, c.ctx), c.accept ? SNAPLEN : 0, `base ${base}: ${c.name}`);
    }
  }
}

/** Every truncation of `pkt` shorter than `needed` bytes drops; from `needed` on the verdict stands. */
function truncations(t: Test, prog: BpfInstruction[], pkt: Buffer, needed: number) {
  const verdicts = Array.from({ length: pkt.length + 1 }, (_, n) => runBpf(prog, pkt.subarray(0, n)));
  const expected = verdicts.map((_, n) => (n < needed ? 0 : SNAPLEN));
  t.same(verdicts, expected, `truncations: accepted from ${needed} bytes on`);
}

// ------------------------------------------------------------------------------------------------
// Assembler

t.test('assembler resolves labels to forward offsets', async (t) => {
  const prog = assemble([ldAbs('b', 9), jeq(6, 'yes', 'no'), label('no'), ret(0), label('yes'), ret(99)]);
  t.same(prog, [
    { code: 0x30, jt: 0, jf: 0, k: 9 },
    { code: 0x15, jt: 1, jf: 0, k: 6 },
    { code: 0x06, jt: 0, jf: 0, k: 0 },
    { code: 0x06, jt: 0, jf: 0, k: 99 },
  ]);
  t.same(assemble([ja('end'), ret(1), ret(2), label('end'), ret(3)])[0], { code: 0x05, jt: 0, jf: 0, k: 2 });
  t.same(assemble([ldAnc(SKF_AD_PROTOCOL), ret(0)])[0], { code: 0x28, jt: 0, jf: 0, k: 0xfffff000 });
  t.same(assemble([ldxMsh(14), ret(0)])[0], { code: 0xb1, jt: 0, jf: 0, k: 14 });
});

t.test('assembler errors', async (t) => {
  t.throws(() => assemble([label('top'), ldImm(0), jeq(0, 'top'), ret(0)]), { name: 'BpfAssemblyError', message: /backward/ });
  t.throws(() => assemble([label('x'), ret(0), label('x'), ret(1)]), /defined twice/);
  t.throws(() => assemble([jeq(0, 'nowhere'), ret(0)]), /unknown label/);
  t.throws(() => assemble([jeq(0, 'end'), ret(0), label('end')]), /past the last/);
  const far = (n: number) => [jeq(0, 'far'), ...Array.from({ length: n }, () => ret(0)), label('far'), ret(1)];
  t.equal(assemble(far(255))[0]?.jt, 255);
  t.throws(() => assemble(far(256)), BpfAssemblyError);
  t.equal(assemble([ja('far'), ...Array.from({ length: 300 }, () => ret(0)), label('far'), ret(1)])[0]?.k, 300, 'ja reaches further');
  t.throws(() => assemble(Array.from({ length: 4097 }, () => ret(0))), /4096/);
  t.throws(() => ldMem(16), RangeError);
  t.throws(() => ldImm(2 ** 32), RangeError);
});

// ------------------------------------------------------------------------------------------------
// Interpreter, one instruction class at a time

const P = Buffer.from([0x01, 0x02, 0x03, 0x04, 0x85, 0xff, 0x00, 0x10]);
const runA = (items: Parameters<typeof assemble>[0], pkt: Buffer = P, ctx = {}) => runBpf(assemble([...items, retA()]), pkt, ctx);

t.test('interpreter: loads', async (t) => {
  t.equal(runA([ldAbs('w', 0)]), 0x01020304);
  t.equal(runA([ldAbs('w', 4)]), 0x85ff0010, 'unsigned word');
  t.equal(runA([ldAbs('h', 3)]), 0x0485);
  t.equal(runA([ldAbs('b', 4)]), 0x85);
  t.equal(runA([ldxImm(2), ldInd('h', 3)]), 0xff00);
  t.equal(runA([ldxImm(7), ldInd('b', 0)]), 0x10);
  t.equal(runA([ldImm(0xdeadbeef)]), 0xdeadbeef);
  t.equal(runA([ldLen()]), 8);
  t.equal(runA([ldxLen(), txa()]), 8);
  t.equal(runA([ldxImm(77), txa()]), 77);
  t.equal(runA([ldxMsh(4), txa()]), 20, '4 * (0x85 & 0xf)');
  t.equal(runA([ldImm(5), st(3), ldImm(0), ldMem(3)]), 5);
  t.equal(runA([ldxImm(6), stx(15), ldxMem(15), txa()]), 6);
  t.equal(runA([ldImm(9), tax(), ldImm(0), txa()]), 9);
});

t.test('interpreter: out-of-bounds loads drop', async (t) => {
  t.equal(runA([ldAbs('w', 5)]), 0);
  t.equal(runA([ldAbs('h', 7)]), 0);
  t.equal(runA([ldAbs('b', 8)]), 0);
  t.equal(runA([ldAbs('b', 0x80000000)]), 0);
  t.equal(runA([ldxImm(4), ldInd('w', 1)]), 0);
  t.equal(runA([ldxImm(0xfffffff0), ldInd('b', 2)]), 0, 'X + k negative (as a signed 32-bit offset)');
  t.equal(runA([ldxImm(0xffffffff), ldInd('b', 2)]), 0x02, 'X + k wraps around 2^32 to offset 1');
  t.equal(runA([ldxMsh(8), txa()]), 0);
  t.equal(runBpf(assemble([ldAbs('b', 0), ret(5)]), Buffer.alloc(0)), 0);
  t.equal(runBpf(assemble([ldLen(), retA()]), Buffer.alloc(0)), 0, 'empty packet, length 0');
});

t.test('interpreter: ALU, constant and X operands', async (t) => {
  const table: [number, number, number, number][] = [
    [BPF_ADD, 0xffffffff, 2, 1],
    [BPF_SUB, 0, 1, 0xffffffff],
    [BPF_MUL, 0x10000, 0x10000, 0],
    [BPF_MUL, 0xffffffff, 0xffffffff, 1],
    [BPF_DIV, 7, 2, 3],
    [BPF_DIV, 0xffffffff, 0x10, 0x0fffffff],
    [BPF_MOD, 7, 3, 1],
    [BPF_AND, 0xf0f0f0f0, 0xff00ff00, 0xf000f000],
    [BPF_OR, 0xf0000000, 0x0f, 0xf000000f],
    [BPF_XOR, 0xffffffff, 0x0f0f0f0f, 0xf0f0f0f0],
    [BPF_LSH, 1, 31, 0x80000000],
    [BPF_LSH, 0xffffffff, 4, 0xfffffff0],
    [BPF_RSH, 0x80000000, 31, 1],
  ];
  for (const [op, a, v, want] of table) {
    t.equal(runA([ldImm(a), alu(op, v)]), want, `op 0x${op.toString(16)} k: ${a} ${v}`);
    t.equal(runA([ldxImm(v), ldImm(a), aluX(op)]), want, `op 0x${op.toString(16)} x: ${a} ${v}`);
  }
  t.equal(runA([ldImm(1), neg()]), 0xffffffff);
  t.equal(runA([ldImm(0), neg()]), 0);
  t.equal(runA([ldxImm(33), ldImm(1), aluX(BPF_LSH)]), 2, 'X shift counts taken mod 32');
  t.equal(runBpf(assemble([ldxImm(0), ldImm(7), aluX(BPF_DIV), ret(99)]), P), 0, 'division by X = 0 drops');
  t.equal(runBpf(assemble([ldxImm(0), ldImm(7), aluX(BPF_MOD), ret(99)]), P), 0, 'modulo by X = 0 drops');
  t.equal(runA([ldImm(0x1234), ldxImm(0xff), ldAnc(SKF_AD_ALU_XOR_X)]), 0x12cb);
});

t.test('interpreter: jumps (unsigned comparisons)', async (t) => {
  const branch = (items: Parameters<typeof assemble>[0]) =>
    runBpf(assemble([...items, label('f'), ret(2), label('t'), ret(1)]), P);
  t.equal(branch([ldImm(5), jeq(5, 't', 'f')]), 1);
  t.equal(branch([ldImm(5), jeq(6, 't', 'f')]), 2);
  t.equal(branch([ldImm(0x80000000), jgt(1, 't', 'f')]), 1, '0x80000000 > 1 unsigned');
  t.equal(branch([ldImm(1), jgt(1, 't', 'f')]), 2);
  t.equal(branch([ldImm(1), jge(1, 't', 'f')]), 1);
  t.equal(branch([ldImm(0), jge(1, 't', 'f')]), 2);
  t.equal(branch([ldImm(0x80000000), jset(0x80000000, 't', 'f')]), 1);
  t.equal(branch([ldImm(0x7fffffff), jset(0x80000000, 't', 'f')]), 2);
  t.equal(branch([ldxImm(5), ldImm(5), jmpX(BPF_JEQ, 't', 'f')]), 1);
  t.equal(branch([ldxImm(0xffffffff), ldImm(5), jmpX(BPF_JGT, 't', 'f')]), 2);
  t.equal(branch([ldxImm(5), ldImm(5), jmpX(BPF_JGE, 't', 'f')]), 1);
  t.equal(branch([ldxImm(6), ldImm(5), jmpX(BPF_JSET, 't', 'f')]), 1);
  t.equal(branch([ldxImm(2), ldImm(5), jmpX(BPF_JSET, 't', 'f')]), 2);
  t.equal(branch([ja('t')]), 1);
});

t.test('interpreter: returns and ancillary data', async (t) => {
  t.equal(runBpf([{ code: BPF_RET | BPF_K, jt: 0, jf: 0, k: 0xffffffff }], P), 0xffffffff);
  t.equal(runA([ldAnc(SKF_AD_PROTOCOL)]), 0x0800, 'default protocol is ETH_P_IP');
  t.equal(runA([ldAnc(SKF_AD_PROTOCOL)], P, { protocol: 0x86dd }), 0x86dd);
  t.equal(runA([ldAnc(SKF_AD_PKTTYPE)], P, { pktType: 4 }), 4);
  t.equal(runA([ldAnc(SKF_AD_IFINDEX)], P, { ifindex: 3 }), 3);
  t.equal(runA([ldAbs('b', SKF_AD_OFF + SKF_AD_PKTTYPE)], P, { pktType: 2 }), 2, 'ancillary through a byte load too');
  t.throws(() => runA([ldAbs('w', SKF_AD_OFF + 12)]), /not emulated/);
});

// ------------------------------------------------------------------------------------------------
// Validator (the kernel's attach-time checks)

const I = (code: number, k = 0, jt = 0, jf = 0): BpfInstruction => ({ code, jt, jf, k });
const RET0 = I(BPF_RET | BPF_K, 0);

t.test('validateBpf rejects what the kernel rejects', async (t) => {
  const bad: [string, BpfInstruction[]][] = [
    ['empty', []],
    ['too long', Array.from({ length: 4097 }, () => RET0)],
    ['unknown opcode', [I(0xff), RET0]],
    ['ld b len is not an opcode', [I(BPF_LD | BPF_B | BPF_LEN), RET0]],
    ['conditional jump past the end', [I(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0), RET0]],
    ['ja past the end', [I(BPF_JMP | BPF_JA, 1), RET0]],
    ['no final return', [RET0, I(BPF_LD | BPF_W | BPF_ABS, 0)]],
    ['division by constant 0', [I(BPF_ALU | BPF_DIV | BPF_K, 0), RET0]],
    ['modulo by constant 0', [I(BPF_ALU | BPF_MOD | BPF_K, 0), RET0]],
    ['shift by 32', [I(BPF_ALU | BPF_LSH | BPF_K, 32), RET0]],
    ['scratch slot 16', [I(BPF_LD | BPF_MEM, 16), RET0]],
    ['scratch read before write', [I(BPF_LD | BPF_MEM, 0), RET0]],
    ['unknown ancillary', [I(BPF_LD | BPF_H | BPF_ABS, (SKF_AD_OFF + 64) >>> 0), RET0]],
    ['misaligned ancillary', [I(BPF_LD | BPF_H | BPF_ABS, (SKF_AD_OFF + 2) >>> 0), RET0]],
    ['jt over 255', [I(BPF_JMP | BPF_JEQ | BPF_K, 0, 256, 0), RET0]],
    ['negative k', [I(BPF_RET | BPF_K, -1)]],
    ['fractional code', [I(6.5)]],
  ];
  for (const [name, prog] of bad) t.throws(() => validateBpf(prog), BpfValidationError, name);
  const err = (() => {
    try {
      validateBpf([RET0, I(0xff), RET0]);
    } catch (e) {
      return e as BpfValidationError;
    }
    return null;
  })();
  t.equal(err?.code, 'EINVAL');
  t.equal(err?.pc, 1);
  t.throws(() => runBpf([I(0xff), RET0], P), BpfValidationError, 'runBpf validates first');

  // Scratch written on only one path before the read.
  t.throws(
    () => validateBpf(assemble([ldAbs('b', 0), jeq(1, 'skip'), st(2), label('skip'), ldMem(2), retA()])),
    /read before it is written/,
  );
  t.doesNotThrow(() => validateBpf(assemble([ldAbs('b', 0), jeq(1, 'a', 'b'), label('a'), st(2), ja('join'), label('b'), st(2), label('join'), ldMem(2), retA()])));
  t.doesNotThrow(() => validateBpf([I(BPF_LD | BPF_W | BPF_ABS, (SKF_AD_OFF + 12) >>> 0), RET0]), 'known ancillary');
  t.doesNotThrow(() => validateBpf([I(BPF_ALU | BPF_RSH | BPF_K, 31), I(BPF_RET | BPF_K, 1)]));
  t.doesNotThrow(() => validateBpf(Array.from({ length: 4096 }, () => RET0)));
});

// ------------------------------------------------------------------------------------------------
// Programs

const SYN = TCP_FLAGS.SYN;
const SYNACK = TCP_FLAGS.SYN | TCP_FLAGS.ACK;

t.test('dropAll / acceptAll', async (t) => {
  t.equal(runBpf(dropAll(), tcp(179, SYN)), 0);
  t.equal(runBpf(acceptAll(), Buffer.alloc(0)), SNAPLEN);
  t.equal(runBpf(acceptAll(), Buffer.from('not even IP')), SNAPLEN);
});

t.test('tcpSynToPorts: exact program', async (t) => {
  // Hand-checked listing (tcpdump -d style) for ports [179], base 14. X = IP header length from 7 on;
  // TCP offsets are x+14+n: dport x+16, data offset x+26, flags x+27, MSS x+34, its value x+36, NOP NOP TS x+38.
  t.same(
    tcpSynToPorts([179], 14).map((i) => [i.code, i.jt, i.jf, i.k]),
    [
      [0x28, 0, 0, 0xfffff000], //  0 ldh [protocol]
      [0x15, 0, 22, 0x0800], //     1 jeq #0x800, 2, 24
      [0x30, 0, 0, 14], //          2 ldb [14]
      [0x35, 0, 20, 0x45], //       3 jge #0x45, 4, 24
      [0x25, 19, 0, 0x4f], //       4 jgt #0x4f, 24, 5
      [0x28, 0, 0, 20], //          5 ldh [20]
      [0x45, 17, 0, 0x1fff], //     6 jset #0x1fff, 24, 7
      [0xb1, 0, 0, 14], //          7 ldx 4*([14]&0xf)
      [0x30, 0, 0, 23], //          8 ldb [23]
      [0x15, 0, 14, 6], //          9 jeq #6, 10, 24
      [0x50, 0, 0, 27], //         10 ldb [x+27]            flags
      [0x54, 0, 0, 0x12], //       11 and #0x12
      [0x15, 0, 11, 0x02], //      12 jeq #0x02, 13, 24     SYN, not ACK
      [0x50, 0, 0, 26], //         13 ldb [x+26]            data offset | reserved
      [0x54, 0, 0, 0xf0], //       14 and #0xf0
      [0x15, 0, 8, 0x90], //       15 jeq #0x90, 16, 24     data offset 9
      [0x48, 0, 0, 34], //         16 ldh [x+34]            first option: kind, length
      [0x15, 0, 6, 0x0204], //     17 jeq #0x0204, 18, 24   MSS, length 4
      [0x48, 0, 0, 36], //         18 ldh [x+36]            its value
      [0x25, 4, 0, 1380], //       19 jgt #1380, 24, 20
      [0x40, 0, 0, 38], //         20 ld [x+38]             NOP NOP timestamps
      [0x15, 0, 2, 0x0101080a], // 21 jeq #0x0101080a, 22, 24
      [0x48, 0, 0, 16], //         22 ldh [x+16]            destination port
      [0x15, 1, 0, 179], //        23 jeq #179, 25, 24
      [0x06, 0, 0, 0], //          24 ret #0
      [0x06, 0, 0, SNAPLEN], //    25 ret #256
    ],
  );
  t.equal(PROBE_TCP_MSS, 0x0564, 'the listing spells MSS 1380');
  t.same([PROBE_TCP_SPORT_LO, PROBE_TCP_SPORT_HI], [61000, 64999]);
});

t.test('tcpSynToPorts', async (t) => {
  t.same(probeSyn(179), stamped(179), 'stamped() builds exactly what encodeProbeSyn builds');
  const build = (base: number) => tcpSynToPorts([179, 2379, 6443], base);
  runCases(t, build, [
    { name: 'probe SYN to 179', pkt: probeSyn(179), accept: true },
    { name: 'probe SYN to 6443', pkt: probeSyn(6443), accept: true },
    { name: 'probe SYN from 61000 (lowest)', pkt: probeSyn(2379, 61000), accept: true },
    { name: 'probe SYN from 64999 (highest)', pkt: probeSyn(2379, 64999), accept: true },
    { name: 'stamped SYN|ECE|CWR to 2379', pkt: stamped(2379, { flags: SYN | 0xc0 }), accept: true },
    { name: 'stamped, reserved bits of byte 12 set', pkt: withByte(probeSyn(179), 20 + 12, 0x91), accept: true },
    // Near-misses of the stamp: each one field off.
    // The source port is not part of the stamp: a NAT in the path may rewrite it.
    { name: 'stamped from 60999 (rewritten by a NAT)', pkt: stamped(179, { srcPort: 60999 }), accept: true },
    { name: 'stamped from 1024', pkt: stamped(179, { srcPort: 1024 }), accept: true },
    // A middlebox may clamp the MSS lower: still ours.
    { name: 'MSS clamped to 1360', pkt: stamped(179, { mss: 1360 }), accept: true },
    { name: 'data offset 5 (no options)', pkt: stamped(179, { mss: null, ts: false }), accept: false },
    { name: 'data offset 6: MSS 1380 alone (the old stamp)', pkt: stamped(179, { ts: false }), accept: false },
    { name: 'data offset 8: timestamps alone', pkt: stamped(179, { mss: null }), accept: false },
    { name: 'MSS 1460', pkt: stamped(179, { mss: 1460 }), accept: false },
    { name: 'MSS 1381', pkt: stamped(179, { mss: PROBE_TCP_MSS + 1 }), accept: false },
    { name: 'SACK-permitted where NOP NOP belongs', pkt: stamped(179, { tsWord: 0x0402080a }), accept: false },
    { name: 'window scale where timestamps belongs', pkt: stamped(179, { tsWord: 0x01030307 }), accept: false },
    { name: 'data offset 10 (an extra option, as Linux sends)', pkt: stamped(179, { extraWords: 1 }), accept: false },
    { name: 'data offset byte written 0x70', pkt: withByte(probeSyn(179), 20 + 12, 0x70), accept: false },
    { name: 'stamped SYN-ACK', pkt: stamped(179, { flags: SYNACK }), accept: false },
    { name: 'stamped ACK', pkt: stamped(179, { flags: TCP_FLAGS.ACK }), accept: false },
    { name: 'stamped RST', pkt: stamped(179, { flags: TCP_FLAGS.RST }), accept: false },
    { name: 'probe SYN to 180 (unwatched)', pkt: probeSyn(180), accept: false },
    // What real clients send: no stamp, so no longer accepted (the witness-cost finding).
    { name: 'plain SYN to 179', pkt: tcp(179, SYN), accept: false },
    { name: 'plain SYN from a probe port, MSS 1460', pkt: tcp(179, SYN, 61000), accept: false },
    { name: 'plain SYN to 180', pkt: tcp(180, SYN), accept: false },
    { name: 'SYN from 179 to 40000', pkt: tcp(40000, SYN, 179), accept: false },
    { name: 'SYN-ACK to 179', pkt: tcp(179, SYNACK), accept: false },
    { name: 'ACK to 179', pkt: tcp(179, TCP_FLAGS.ACK), accept: false },
    { name: 'RST to 179', pkt: tcp(179, TCP_FLAGS.RST), accept: false },
    { name: 'UDP to 179', pkt: udp(179, PROBE), accept: false },
    { name: 'UDP from a probe port to 179', pkt: ip(17, encodeUdp({ srcAddr: A, dstAddr: B, srcPort: 61000, dstPort: 179, payload: Buffer.from('02040564', 'hex') })), accept: false },
    { name: 'IHL 6 probe SYN to 179', pkt: withIpOptions(probeSyn(179), 1), accept: true },
    { name: 'IHL 15 probe SYN to 2379', pkt: withIpOptions(probeSyn(2379), 10), accept: true },
    { name: 'IHL 6 stamped SYN-ACK to 179', pkt: withIpOptions(stamped(179, { flags: SYNACK }), 1), accept: false },
    { name: 'first fragment (MF set)', pkt: withFrag(probeSyn(179), 0x2000), accept: true },
    { name: 'non-first fragment', pkt: withFrag(probeSyn(179), 0x0001), accept: false },
    { name: 'non-first fragment, DF set', pkt: withFrag(probeSyn(179), 0x4000 | 0x1000), accept: false },
    { name: 'IPv6 skb protocol', pkt: probeSyn(179), accept: false, ctx: { protocol: 0x86dd } },
    { name: 'version 6 nibble', pkt: withByte(probeSyn(179), 0, 0x65), accept: false },
    { name: 'IHL 4', pkt: withByte(probeSyn(179), 0, 0x44), accept: false },
    { name: 'outgoing copy (pkttype 4)', pkt: probeSyn(179), accept: true, ctx: { pktType: 4 } },
  ]);
  // With IHL 6, an IHL-5 reader would take the IP option word and the real segment, shifted by 4, for a
  // TCP header. Plant a whole stamp where such a reader looks: ports 61000 -> 179 in the option word, the
  // data offset and flags in the real ack number, the MSS option in the real checksum and urgent pointer.
  const trap = withIpOptions(stamped(40000, { flags: SYN }), 1);
  trap.writeUInt16BE(PROBE_TCP_SPORT_LO, 20);
  trap.writeUInt16BE(179, 22);
  trap[24 + 8] = 0x90;
  trap[24 + 9] = SYN;
  trap.writeUInt32BE(0x02040564, 24 + 16);
  trap.writeUInt32BE(0x0101080a, 24 + 20);
  t.equal(runBpf(tcpSynToPorts([179]), withByte(trap, 0, 0x45)), SNAPLEN, 'read as IHL 5, the trap is a probe SYN to 179');
  t.equal(runBpf(tcpSynToPorts([179]), trap), 0, 'read with its real IHL, it is a SYN to 40000: the header length is read, not assumed');
  // The last bytes the filter reads are the NOP NOP timestamps word's: 20 + 28 bytes.
  truncations(t, tcpSynToPorts([179]), probeSyn(179), 48);
  t.throws(() => tcpSynToPorts([0]), RangeError);
  t.throws(() => tcpSynToPorts([65536]), RangeError);
  t.throws(() => tcpSynToPorts([80.5]), RangeError);
  t.throws(() => tcpSynToPorts(Array.from({ length: 33 }, (_, i) => i + 1)), RangeError);
  t.throws(() => tcpSynToPorts([179], -1), RangeError);
  t.equal(runBpf(tcpSynToPorts([]), probeSyn(179)), 0, 'no ports: never matches');
  t.equal(runBpf(tcpSynToPorts([179, 179]), probeSyn(179)), SNAPLEN, 'duplicates are harmless');
});

t.test('udpProbeToPorts', async (t) => {
  const vx = buildVxlanProbe({ innerSrc: A, innerDst: B, payload: PROBE });
  const magicAt = (off: number, len = 120) => {
    const b = Buffer.alloc(len);
    b.writeUInt32BE(PROBE_MAGIC, off);
    return b;
  };
  runCases(t, (base) => udpProbeToPorts([51820, 4789], base), [
    { name: 'bare probe to 51820', pkt: udp(51820, PROBE), accept: true },
    { name: 'padded probe to 51820', pkt: udp(51820, padProbe(PROBE, 148)), accept: true },
    { name: 'VXLAN probe to 4789', pkt: udp(4789, vx), accept: true },
    { name: 'magic at 50 to 51820', pkt: udp(51820, magicAt(50)), accept: true },
    { name: 'magic only (4 bytes)', pkt: udp(51820, magicAt(0, 4)), accept: true },
    { name: 'probe to 51821', pkt: udp(51821, PROBE), accept: false },
    { name: 'VXLAN probe to 8472', pkt: udp(8472, vx), accept: false },
    { name: 'no magic', pkt: udp(51820, Buffer.alloc(148)), accept: false },
    { name: 'magic at 4', pkt: udp(51820, magicAt(4)), accept: false },
    { name: 'magic at 49', pkt: udp(4789, magicAt(49)), accept: false },
    { name: 'magic at 51', pkt: udp(4789, magicAt(51)), accept: false },
    { name: 'magic at 50, cut inside it', pkt: udp(4789, magicAt(50, 54)).subarray(0, 28 + 53), accept: false },
    { name: 'TCP SYN to 51820', pkt: tcp(51820, SYN), accept: false },
    { name: 'IHL 7 bare probe', pkt: withIpOptions(udp(51820, PROBE), 2), accept: true },
    { name: 'IHL 7 VXLAN probe', pkt: withIpOptions(udp(4789, vx), 2), accept: true },
    { name: 'non-first fragment', pkt: withFrag(udp(51820, PROBE), 0x00b9), accept: false },
    { name: 'ARP skb protocol', pkt: udp(51820, PROBE), accept: false, ctx: { protocol: 0x0806 } },
  ]);
  truncations(t, udpProbeToPorts([51820]), udp(51820, PROBE), 32);
  // A VXLAN probe needs offset 50 of the UDP payload: 20 + 8 + 50 + 4 bytes.
  truncations(t, udpProbeToPorts([4789]), udp(4789, vx), 82);
});

t.test('ipipProbe', async (t) => {
  const inner = buildIpipInner({ innerSrc: A, innerDst: B, payload: PROBE });
  const innerNoMagic = buildIpipInner({ innerSrc: A, innerDst: B, payload: Buffer.alloc(54) });
  const innerTcp = withByte(inner, 9, 6);
  const magicAtInnerPayload = (() => {
    // Magic right after the inner IP header, i.e. where an 8-byte UDP header should be.
    const b = Buffer.from(inner);
    b.writeUInt32BE(PROBE_MAGIC, 20);
    b.writeUInt32BE(0, 28);
    return b;
  })();
  runCases(t, (base) => ipipProbe(base), [
    { name: 'probe', pkt: ipip(inner), accept: true },
    { name: 'padded probe', pkt: ipip(buildIpipInner({ innerSrc: A, innerDst: B, payload: padProbe(PROBE, 148) })), accept: true },
    { name: 'inner IHL 6', pkt: ipip(withIpOptions(inner, 1)), accept: true },
    { name: 'inner IHL 15', pkt: ipip(withIpOptions(inner, 10)), accept: true },
    { name: 'outer IHL 7', pkt: withIpOptions(ipip(inner), 2), accept: true },
    { name: 'both with options', pkt: withIpOptions(ipip(withIpOptions(inner, 3)), 1), accept: true },
    { name: 'no magic', pkt: ipip(innerNoMagic), accept: false },
    { name: 'magic at the inner payload start', pkt: ipip(magicAtInnerPayload), accept: false },
    { name: 'inner protocol TCP', pkt: ipip(innerTcp), accept: false },
    { name: 'inner version 6', pkt: ipip(withByte(inner, 0, 0x65)), accept: false },
    { name: 'as UDP, not protocol 4', pkt: ip(17, inner), accept: false },
    { name: 'outer non-first fragment', pkt: withFrag(ipip(inner), 0x0002), accept: false },
    { name: 'IPv6 skb protocol', pkt: ipip(inner), accept: false, ctx: { protocol: 0x86dd } },
  ]);
  // An IHL-5 reading of an IHL-6 inner header would look for the magic 4 bytes early.
  const shifted = withIpOptions(innerNoMagic, 1);
  shifted.writeUInt32BE(PROBE_MAGIC, 28);
  t.equal(runBpf(ipipProbe(), ipip(shifted)), 0, 'inner IHL is read, not assumed');
  truncations(t, ipipProbe(), ipip(inner), 52);
});

t.test('icmpErrorQuotingProbe', async (t) => {
  const synPkt = probeSyn(179);
  const udpPkt = udp(51820, PROBE);
  const ipipPkt = ipip(buildIpipInner({ innerSrc: A, innerDst: B, payload: PROBE }));
  runCases(t, (base) => icmpErrorQuotingProbe(base), [
    { name: 'unreachable quoting TCP', pkt: icmp(3, synPkt.subarray(0, 28)), accept: true },
    { name: 'unreachable quoting UDP', pkt: icmp(3, udpPkt), accept: true },
    { name: 'unreachable quoting IP-in-IP', pkt: icmp(3, ipipPkt.subarray(0, 28)), accept: true },
    { name: 'time exceeded quoting TCP', pkt: icmp(11, synPkt.subarray(0, 28)), accept: true },
    { name: 'parameter problem quoting UDP', pkt: icmp(12, udpPkt.subarray(0, 28)), accept: true },
    { name: 'outer IHL 6', pkt: withIpOptions(icmp(3, synPkt.subarray(0, 28)), 1), accept: true },
    { name: 'source quench (4)', pkt: icmp(4, synPkt.subarray(0, 28)), accept: false },
    { name: 'redirect (5)', pkt: icmp(5, synPkt.subarray(0, 28)), accept: false },
    { name: 'echo reply', pkt: icmp(0, synPkt.subarray(0, 28)), accept: false },
    { name: 'unreachable quoting ICMP', pkt: icmp(3, icmp(8, Buffer.alloc(8)).subarray(0, 28)), accept: false },
    { name: 'unreachable quoting garbage', pkt: icmp(3, Buffer.alloc(28)), accept: false },
    { name: 'quote cut before its protocol', pkt: icmp(3, synPkt.subarray(0, 9)), accept: false },
    { name: 'TCP, not ICMP', pkt: synPkt, accept: false },
  ]);
});

t.test('tcpRepliesToPortRange', async (t) => {
  runCases(t, (base) => tcpRepliesToPortRange(40000, 40100, base), [
    { name: 'SYN-ACK to 40050', pkt: tcp(40050, SYNACK), accept: true },
    { name: 'RST to 40000', pkt: tcp(40000, TCP_FLAGS.RST), accept: true },
    { name: 'RST|ACK to 40100', pkt: tcp(40100, TCP_FLAGS.RST | TCP_FLAGS.ACK), accept: true },
    { name: 'SYN-ACK|ECE to 40001', pkt: tcp(40001, SYNACK | TCP_FLAGS.ECE), accept: true },
    { name: 'SYN-ACK to 39999', pkt: tcp(39999, SYNACK), accept: false },
    { name: 'SYN-ACK to 40101', pkt: tcp(40101, SYNACK), accept: false },
    { name: 'SYN to 40050', pkt: tcp(40050, SYN), accept: false },
    { name: 'ACK to 40050', pkt: tcp(40050, TCP_FLAGS.ACK), accept: false },
    { name: 'FIN|ACK to 40050', pkt: tcp(40050, TCP_FLAGS.FIN | TCP_FLAGS.ACK), accept: false },
    { name: 'IHL 6 SYN-ACK to 40050', pkt: withIpOptions(tcp(40050, SYNACK), 1), accept: true },
    { name: 'UDP to 40050', pkt: udp(40050, PROBE), accept: false },
    { name: 'non-first fragment', pkt: withFrag(tcp(40050, SYNACK), 0x0100), accept: false },
  ]);
  t.equal(runBpf(tcpRepliesToPortRange(179, 179), tcp(179, TCP_FLAGS.RST)), SNAPLEN, 'one-port range');
  t.throws(() => tcpRepliesToPortRange(2, 1), RangeError);
  t.throws(() => tcpRepliesToPortRange(0, 1), RangeError);
  t.throws(() => tcpRepliesToPortRange(1, 65536), RangeError);
});

t.test('witnessProgram', async (t) => {
  const opts = { tcpPorts: [179, 5473], udpPorts: [4789, 51820], ipip: true };
  const inner = buildIpipInner({ innerSrc: A, innerDst: B, payload: PROBE });
  const vx = buildVxlanProbe({ innerSrc: A, innerDst: B, payload: PROBE });
  runCases(t, (base) => witnessProgram({ ...opts, base }), [
    { name: 'probe SYN to 179', pkt: probeSyn(179), accept: true },
    { name: 'probe SYN to 5473', pkt: probeSyn(5473, PROBE_TCP_SPORT_HI), accept: true },
    { name: 'IHL 7 probe SYN to 179', pkt: withIpOptions(probeSyn(179), 2), accept: true },
    { name: 'probe SYN to 4789 (a UDP port)', pkt: probeSyn(4789), accept: false },
    { name: 'probe SYN to 180 (unwatched)', pkt: probeSyn(180), accept: false },
    { name: 'plain SYN to 179', pkt: tcp(179, SYN), accept: false },
    { name: 'plain SYN to 5473 from a probe port', pkt: tcp(5473, SYN, 62000), accept: false },
    { name: 'stamped from 65000 (a NAT)', pkt: stamped(179, { srcPort: 65000 }), accept: true },
    { name: 'stamped with data offset 10', pkt: stamped(179, { extraWords: 1 }), accept: false },
    { name: 'the old stamp (MSS only)', pkt: stamped(179, { ts: false }), accept: false },
    { name: 'stamped SYN-ACK to 179', pkt: stamped(179, { flags: SYNACK }), accept: false },
    { name: 'SYN-ACK to 179', pkt: tcp(179, SYNACK), accept: false },
    { name: 'bare probe to 51820', pkt: udp(51820, PROBE), accept: true },
    { name: 'VXLAN probe to 4789', pkt: udp(4789, vx), accept: true },
    { name: 'probe to 179 over UDP', pkt: udp(179, PROBE), accept: false },
    { name: 'no magic to 4789', pkt: udp(4789, Buffer.alloc(92)), accept: false },
    { name: 'IP-in-IP probe', pkt: ipip(inner), accept: true },
    { name: 'IP-in-IP without magic', pkt: ipip(buildIpipInner({ innerSrc: A, innerDst: B, payload: Buffer.alloc(54) })), accept: false },
    { name: 'ICMP', pkt: icmp(3, tcp(179, SYN).subarray(0, 28)), accept: false },
    { name: 'options everywhere', pkt: withIpOptions(ipip(withIpOptions(inner, 2)), 2), accept: true },
    { name: 'non-first fragment', pkt: withFrag(udp(51820, PROBE), 0x0007), accept: false },
  ]);
  const onlyTcp = witnessProgram({ tcpPorts: [179], udpPorts: [], ipip: false });
  t.equal(runBpf(onlyTcp, probeSyn(179)), SNAPLEN);
  t.equal(runBpf(onlyTcp, tcp(179, SYN)), 0, 'an un-stamped SYN stays in the kernel');
  t.equal(runBpf(onlyTcp, udp(51820, PROBE)), 0, 'empty UDP list never matches');
  t.equal(runBpf(onlyTcp, ipip(inner)), 0, 'ipip disabled');
  const onlyIpip = witnessProgram({ tcpPorts: [], udpPorts: [], ipip: true });
  t.equal(runBpf(onlyIpip, probeSyn(179)), 0, 'empty TCP list never matches');
  t.equal(runBpf(onlyIpip, ipip(inner)), SNAPLEN);
  const nothing = witnessProgram({ tcpPorts: [], udpPorts: [], ipip: false });
  t.equal(runBpf(nothing, probeSyn(179)), 0);

  // The largest program: 32 ports each, base 14; the last port of each set still matches.
  const ports = (from: number) => Array.from({ length: MAX_PORTS }, (_, i) => from + i);
  const big = witnessProgram({ tcpPorts: ports(1000), udpPorts: ports(2000), ipip: true, base: 14 });
  validateBpf(big);
  t.equal(runBpf(big, eth(probeSyn(1031))), SNAPLEN);
  t.equal(runBpf(big, eth(probeSyn(1032))), 0);
  t.equal(runBpf(big, eth(tcp(1031, SYN))), 0);
  t.equal(runBpf(big, eth(udp(2031, PROBE))), SNAPLEN);
  t.equal(runBpf(big, eth(ipip(inner))), SNAPLEN);
  t.throws(() => witnessProgram({ tcpPorts: ports(1), udpPorts: [1, 2, 3, 0], ipip: false }), RangeError);
});

t.test('validateBpf accepts every program built here', async (t) => {
  const ports = fc.uniqueArray(fc.integer({ min: 1, max: 65535 }), { maxLength: MAX_PORTS });
  fc.assert(
    fc.property(ports, ports, fc.boolean(), fc.constantFrom(0, 14), fc.integer({ min: 1, max: 65535 }), (tp, up, ipipOn, base, p) => {
      for (const prog of [
        witnessProgram({ tcpPorts: tp, udpPorts: up, ipip: ipipOn, base }),
        tcpSynToPorts(tp, base),
        udpProbeToPorts(up, base),
        ipipProbe(base),
        icmpErrorQuotingProbe(base),
        tcpRepliesToPortRange(p, Math.min(65535, p + 100), base),
        dropAll(),
        acceptAll(),
      ]) {
        validateBpf(prog);
      }
      return true;
    }),
    { numRuns: 200 },
  );
  t.pass();
});

// ------------------------------------------------------------------------------------------------
// Properties over generated packets

const u16 = (b: Buffer, o: number) => (o + 2 <= b.length ? b.readUInt16BE(o) : null);
const u8 = (b: Buffer, o: number) => (o < b.length ? (b[o] as number) : null);
const u32 = (b: Buffer, o: number) => (o + 4 <= b.length ? b.readUInt32BE(o) : null);

/** What witnessProgram should accept, written directly from the spec (base 0). */
function refWitness(p: Buffer, o: { tcpPorts: number[]; udpPorts: number[]; ipip: boolean }, protocol: number): boolean {
  if (protocol !== 0x0800) return false;
  const b0 = u8(p, 0);
  if (b0 === null || b0 < 0x45 || b0 > 0x4f) return false;
  const frag = u16(p, 6);
  if (frag === null || (frag & 0x1fff) !== 0) return false;
  const hl = (b0 & 0xf) * 4;
  const proto = u8(p, 9);
  if (proto === 6 && o.tcpPorts.length > 0) {
    // A probe SYN (SYN without ACK) carrying the stamp: data offset 9, an MSS of at most 1380, NOP NOP timestamps.
    const flags = u8(p, hl + 13);
    if (flags === null || (flags & 0x12) !== 0x02) return false;
    const doff = u8(p, hl + 12);
    if (doff === null || doff >> 4 !== 9) return false;
    if (u16(p, hl + 20) !== 0x0204) return false;
    const mss = u16(p, hl + 22);
    if (mss === null || mss > 1380) return false;
    if (u32(p, hl + 24) !== 0x0101080a) return false;
    return o.tcpPorts.includes(u16(p, hl + 2) ?? -1);
  }
  if (proto === 17 && o.udpPorts.length > 0) {
    if (!o.udpPorts.includes(u16(p, hl + 2) ?? -1)) return false;
    const at0 = u32(p, hl + 8);
    if (at0 === null) return false;
    return at0 === PROBE_MAGIC || u32(p, hl + 8 + VXLAN_MAGIC_OFFSET) === PROBE_MAGIC;
  }
  if (proto === 4 && o.ipip) {
    const ib0 = u8(p, hl);
    if (ib0 === null || ib0 < 0x45 || ib0 > 0x4f) return false;
    if (u8(p, hl + 9) !== 17) return false;
    return u32(p, hl + (ib0 & 0xf) * 4 + 8) === PROBE_MAGIC;
  }
  return false;
}

const MAGIC_BYTES = Buffer.alloc(4);
MAGIC_BYTES.writeUInt32BE(PROBE_MAGIC);

/** Random payload with the magic planted at 0, 50, elsewhere, or nowhere. */
const payloadArb = fc
  .tuple(fc.uint8Array({ minLength: 54, maxLength: 160 }), fc.constantFrom(-1, 0, 0, 0, 50, 50, 50, 1, 49, 51, 8), fc.boolean())
  .map(([bytes, at, tiny]) => {
    const b = Buffer.from(tiny && at <= 0 ? bytes.subarray(0, 6) : bytes);
    if (at >= 0 && b.length >= at + 4) MAGIC_BYTES.copy(b, at);
    return b;
  });

/** null most of the time; a value once in `every` draws. */
const rarely = <T>(arb: fc.Arbitrary<T>, every: number) =>
  fc.oneof({ arbitrary: fc.constant(null), weight: every - 1 }, { arbitrary: arb, weight: 1 });

const packetArb = fc
  .record({
    kind: fc.constantFrom('tcp', 'tcp', 'udp', 'udp', 'ipip', 'ipip', 'icmp', 'other'),
    port: fc.oneof({ arbitrary: fc.constantFrom(179, 5473, 4789, 51820, 180), weight: 4 }, fc.integer({ min: 1, max: 65535 })),
    flags: fc.oneof({ arbitrary: fc.constantFrom(SYN, SYN, SYNACK, TCP_FLAGS.RST), weight: 3 }, fc.integer({ min: 0, max: 255 })),
    // TCP stamp fields: mostly right, each sometimes just off.
    srcPort: fc.oneof(
      { arbitrary: fc.constantFrom(61000, 62000, 64999), weight: 4 },
      { arbitrary: fc.constantFrom(60999, 65000, 40000), weight: 2 },
      fc.integer({ min: 1, max: 65535 }),
    ),
    mss: fc.constantFrom<number | null>(1380, 1380, 1380, 1360, 1460, 1381, 0x6405, null), // 0x6405: 1380 byte-swapped
    extraWords: fc.constantFrom(0, 0, 0, 0, 1, 5),
    ts: fc.constantFrom(true, true, true, false),
    tsWord: fc.constantFrom<number | null>(null, null, null, null, 0x0402080a, 0x0101080b, 0x01010a08),
    payload: payloadArb,
    outerOpts: fc.constantFrom(0, 0, 1, 3),
    innerOpts: fc.constantFrom(0, 0, 2),
    innerProto: fc.constantFrom(17, 17, 17, 6),
    frag: fc.constantFrom(0x4000, 0x4000, 0x4000, 0, 0x2000, 0x0001, 0x4fff),
    firstByte: rarely(fc.integer({ min: 0, max: 255 }), 12),
    cut: rarely(fc.nat(), 6),
    protocol: fc.constantFrom(0x0800, 0x0800, 0x0800, 0x0800, 0x0800, 0x86dd),
  })
  .map((r) => {
    let pkt: Buffer;
    if (r.kind === 'tcp') pkt = stamped(r.port, { flags: r.flags, srcPort: r.srcPort, mss: r.mss, ts: r.ts, tsWord: r.tsWord, extraWords: r.extraWords });
    else if (r.kind === 'udp') pkt = udp(r.port, r.payload);
    else if (r.kind === 'ipip') {
      let inner = buildIpipInner({ innerSrc: A, innerDst: B, payload: r.payload });
      if (r.innerOpts > 0) inner = withIpOptions(inner, r.innerOpts);
      pkt = ipip(withByte(inner, 9, r.innerProto));
    } else if (r.kind === 'icmp') pkt = icmp(3, tcp(r.port, r.flags).subarray(0, 28));
    else pkt = ip(47, r.payload);
    if (r.outerOpts > 0) pkt = withIpOptions(pkt, r.outerOpts);
    pkt = withFrag(pkt, r.frag);
    if (r.firstByte !== null) pkt = withByte(pkt, 0, r.firstByte);
    if (r.cut !== null) pkt = pkt.subarray(0, r.cut % (pkt.length + 1));
    return { pkt, protocol: r.protocol };
  });

t.test('property: witnessProgram agrees with a direct reading of the spec', async (t) => {
  const configs = [
    { tcpPorts: [179, 5473], udpPorts: [4789, 51820], ipip: true },
    { tcpPorts: [], udpPorts: [51820], ipip: false },
    { tcpPorts: [179], udpPorts: [], ipip: true },
  ];
  const progs = configs.map((c) => [0, 14].map((base) => witnessProgram({ ...c, base })));
  let accepted = 0;
  fc.assert(
    fc.property(packetArb, fc.nat(configs.length - 1), ({ pkt, protocol }, ci) => {
      const cfg = configs[ci]!;
      const [p0, p14] = progs[ci]!;
      const want = refWitness(pkt, cfg, protocol) ? SNAPLEN : 0;
      if (want) accepted++;
      return runBpf(p0!, pkt, { protocol }) === want && runBpf(p14!, eth(pkt), { protocol }) === want;
    }),
    { numRuns: 3000 },
  );
  t.ok(accepted >= 50, `the generator reaches accepting packets (${accepted} of 3000)`);
});

t.test('property: never accepts a UDP or IP-in-IP packet without the magic', async (t) => {
  const prog = witnessProgram({ tcpPorts: [179], udpPorts: [4789, 51820], ipip: true });
  const noMagic = fc.uint8Array({ maxLength: 200 }).filter((b) => Buffer.from(b).indexOf(MAGIC_BYTES) < 0);
  fc.assert(
    fc.property(noMagic, fc.constantFrom(4789, 51820), fc.boolean(), fc.constantFrom(0, 1, 2), (payload, port, asIpip, opts) => {
      let pkt = asIpip ? ipip(buildIpipInner({ innerSrc: A, innerDst: B, payload: Buffer.from(payload) })) : udp(port, Buffer.from(payload));
      if (opts > 0) pkt = withIpOptions(pkt, opts);
      return runBpf(prog, pkt) === 0 && runBpf(prog, Buffer.from(payload)) === 0;
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

t.test('property: random bytes never crash the interpreter', async (t) => {
  const progs = [witnessProgram({ tcpPorts: [179], udpPorts: [4789], ipip: true }), icmpErrorQuotingProbe(), tcpRepliesToPortRange(1, 65535)];
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 120 }), fc.nat(progs.length - 1), (b, i) => {
      const r = runBpf(progs[i]!, Buffer.from(b));
      return r === 0 || r === SNAPLEN;
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

// Silence "imported but unused" for opcode constants used only in comments above.
void [BPF_ABS, BPF_ALU, BPF_B, BPF_H, BPF_JA, BPF_JGE, BPF_JGT, BPF_JSET, BPF_LD, BPF_MEM, BPF_MUL, BPF_OR, BPF_SUB, BPF_W, BPF_X, BPF_XOR, BPF_AND, BPF_LSH, BPF_RSH, BPF_DIV, BPF_MOD, BPF_ADD];
