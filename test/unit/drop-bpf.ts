// The drop watch's eBPF program (src/kernel/drop-bpf.ts), by its shape: what the verifier will check
// (every jump lands on an instruction, not inside a BPF_LD_IMM64; only the three helpers; stack within
// 512 bytes; one exit path returning 0), the BTF offsets and the address patched in, map fds patched into
// the right instructions, and the map's keys and values round-tripping. Loading it for real is
// test/netns/drop-reason.ts (and the drop watch's open).
import t from 'tap';
import {
  BPF_PSEUDO_MAP_FD,
  DROP_KEY_SIZE,
  DROP_VALUE_SIZE,
  HELPER,
  OPCODE,
  addressWord,
  decodeDropEntries,
  dropWatchProgram,
  encodeDropKey,
  patchMapFds,
} from '../../src/kernel/drop-bpf.js';

interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}
const decode = (b: Buffer): Insn[] =>
  Array.from({ length: b.length / 8 }, (_, i) => ({ code: b[i * 8]!, dst: b[i * 8 + 1]! & 0xf, src: b[i * 8 + 1]! >> 4, off: b.readInt16LE(i * 8 + 2), imm: b.readInt32LE(i * 8 + 4) }));
const cls = (c: number) => c & 0x07;
const isJump = (i: Insn) => (cls(i.code) === 0x05 || cls(i.code) === 0x06) && i.code !== OPCODE.CALL && i.code !== OPCODE.EXIT;

const input = { headOffset: 192, networkHeaderOffset: 180, devOffset: 16, devNetOffset: 264, netInumOffset: 176, netns: 4026532000, self: '198.18.2.200' };

t.test('shape: jumps land on instructions, only the three helpers, a bounded stack, exit with 0', async (t) => {
  const p = dropWatchProgram(input);
  t.equal(p.insns.length % 8, 0);
  const insns = decode(p.insns);
  t.ok(insns.length < 200, `${insns.length} instructions: small, no loops`);
  // Second halves of BPF_LD_IMM64 are not instructions of their own.
  const second = new Set(insns.flatMap((i, at) => (i.code === OPCODE.LD_IMM64 ? [at + 1] : [])));
  for (const [at, i] of insns.entries()) {
    if (second.has(at)) continue;
    if (isJump(i)) {
      const to = at + 1 + i.off;
      t.ok(i.off >= 0, `instruction ${at}: jumps forward only (no loops)`);
      t.ok(to < insns.length && !second.has(to), `instruction ${at}: lands on instruction ${to}`);
    }
    if (i.code === OPCODE.CALL) t.ok(([HELPER.mapLookupElem, HELPER.mapUpdateElem, HELPER.probeReadKernel] as number[]).includes(i.imm), `helper ${i.imm}`);
    if ((cls(i.code) === 0x01 || cls(i.code) === 0x02 || cls(i.code) === 0x03) && (i.code & 0xe0) === 0x60) {
      const base = cls(i.code) === 0x01 ? i.src : i.dst;
      if (base === 10) t.ok(i.off < 0 && i.off >= -512, `instruction ${at}: stack offset ${i.off}`);
    }
    t.ok(i.dst <= 10 && i.src <= 10 || (i.code === OPCODE.LD_IMM64 && i.src === BPF_PSEUDO_MAP_FD), `instruction ${at}: registers`);
  }
  const last = insns.at(-1)!;
  t.equal(last.code, OPCODE.EXIT);
  t.same(insns.at(-2), { code: 0xb7, dst: 0, src: 0, off: 0, imm: 0 }, 'r0 = 0 before the exit');
  t.equal(insns.filter((i) => i.code === OPCODE.EXIT).length, 1, 'one exit');
  // After a map lookup, the value pointer is tested against 0 before use.
  for (const [at, i] of insns.entries()) {
    if (i.code !== OPCODE.CALL || i.imm !== HELPER.mapLookupElem) continue;
    t.match(insns[at + 1], { code: 0x15, dst: 0, imm: 0 }, `lookup at ${at}: if r0 == 0 goto …`);
  }
  t.ok(insns.some((i) => i.code === OPCODE.ATOMIC_ADD_DW && i.imm === 0), 'the count is an atomic add');
});

t.test('the BTF offsets, the address and the ctx arguments are in the program', async (t) => {
  const insns = decode(dropWatchProgram(input).insns);
  t.ok(insns.some((i) => i.code === 0x07 && i.dst === 3 && i.imm === 192), 'r3 += head offset');
  t.ok(insns.some((i) => i.code === 0x07 && i.dst === 3 && i.imm === 180), 'r3 += network_header offset');
  const self = addressWord('198.18.2.200');
  t.equal(self, Buffer.from([198, 18, 2, 200]).readInt32LE(0));
  const cmp = insns.filter((i) => (i.code === OPCODE.JMP32_JEQ_K || i.code === OPCODE.JMP32_JNE_K) && i.imm === self);
  t.equal(cmp.length, 2, 'saddr OR daddr compared with the address, 32-bit (no sign extension)');
  t.match(insns.find((i) => i.code === 0x79 && i.src === 6 && i.off === 0), { dst: 7 }, 'skb = ctx[0]');
  t.match(insns.find((i) => i.code === 0x79 && i.src === 6 && i.off === 16), { dst: 8 }, 'reason = ctx[2]');
  t.ok(insns.some((i) => i.code === 0x07 && i.dst === 3 && i.imm === 16), 'r3 += sk_buff.dev offset');
  t.ok(insns.some((i) => i.code === 0x07 && i.dst === 3 && i.imm === 264), 'r3 += net_device.nd_net.net offset');
  t.ok(insns.some((i) => i.code === 0x07 && i.dst === 3 && i.imm === 176), 'r3 += net.ns.inum offset');
  t.ok(insns.some((i) => i.code === OPCODE.JMP32_JNE_K && i.imm === (4026532000 | 0)), "only this namespace's packets (32-bit compare of the inode number)");
  t.throws(() => dropWatchProgram({ ...input, netns: 0 }), /not a namespace inode number/);
  const other = decode(dropWatchProgram({ ...input, headOffset: 200 }).insns);
  t.ok(other.some((i) => i.code === 0x07 && i.dst === 3 && i.imm === 200));
  t.throws(() => dropWatchProgram({ ...input, headOffset: -1 }), /not a plausible/);
  t.throws(() => dropWatchProgram({ ...input, self: '300.1.1.1' }), /not an IPv4 address/);
});

t.test('map fds are patched into their BPF_LD_IMM64 and nowhere else', async (t) => {
  const p = dropWatchProgram(input);
  t.equal(p.mapRefs.enabled.length, 1);
  t.equal(p.mapRefs.drops.length, 2);
  const patched = patchMapFds(p, { enabled: 7, drops: 9 });
  const before = decode(p.insns);
  const after = decode(patched);
  for (const at of p.mapRefs.enabled) t.match(after[at], { code: OPCODE.LD_IMM64, src: BPF_PSEUDO_MAP_FD, dst: 1, imm: 7 });
  for (const at of p.mapRefs.drops) t.match(after[at], { code: OPCODE.LD_IMM64, src: BPF_PSEUDO_MAP_FD, dst: 1, imm: 9 });
  const touched = new Set([...p.mapRefs.enabled, ...p.mapRefs.drops]);
  for (const [at, i] of after.entries()) if (!touched.has(at)) t.same(i, before[at], `instruction ${at} unchanged`);
  t.equal(decode(p.insns)[p.mapRefs.enabled[0]!]!.imm, 0, 'the program itself is not modified');
  const broken = { ...p, mapRefs: { enabled: [0], drops: [] } };
  t.throws(() => patchMapFds(broken, { enabled: 1, drops: 2 }), /not a map load/);
});

t.test('keys and values: encoded as the program writes them, decoded back', async (t) => {
  const key = encodeDropKey({ saddr: '198.18.1.2', daddr: '198.18.2.2', proto: 6, sport: 40000, dport: 179 });
  t.equal(key.length, DROP_KEY_SIZE);
  t.same([...key.subarray(0, 4)], [198, 18, 1, 2], 'addresses in network order');
  t.same([...key.subarray(10, 14)], [0x9c, 0x40, 0, 179], 'ports in network order');
  const value = Buffer.alloc(DROP_VALUE_SIZE);
  value.writeUInt32LE(12, 0);
  value.writeBigUInt64LE(3n, 8);
  const ipip = encodeDropKey({ saddr: '198.18.1.2', daddr: '198.18.2.2', proto: 4, sport: 0, dport: 0 });
  const entries = decodeDropEntries(Buffer.concat([key, value, ipip, value, Buffer.alloc(5)]));
  t.same(entries, [
    { saddr: '198.18.1.2', daddr: '198.18.2.2', proto: 6, sport: 40000, dport: 179, reason: 12, count: 3 },
    { saddr: '198.18.1.2', daddr: '198.18.2.2', proto: 4, sport: 0, dport: 0, reason: 12, count: 3 },
  ], 'a trailing partial record is ignored');
});
