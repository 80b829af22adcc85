// BTF (src/kernel/btf.ts): synthetic blobs with every kind's trailing data, members inside anonymous
// structs and unions (struct_group), bitfield offsets (kind_flag), ENUM and ENUM64; truncated or garbage
// input is a BtfError, never a hang; and, when readable, this kernel's own /sys/kernel/btf/vmlinux.
import { readFile } from 'node:fs/promises';
import fc from 'fast-check';
import t from 'tap';
import { BTF_KIND as K, BtfError, enumValues, memberOffset, parseBtf, skbLayout, KERNEL_BTF } from '../../src/kernel/btf.js';

/** A little BTF writer: types in order (ids from 1), strings interned. */
class BtfBuilder {
  private strings = Buffer.from([0]);
  private readonly names = new Map<string, number>([['', 0]]);
  private readonly types: Buffer[] = [];
  str(s: string): number {
    const known = this.names.get(s);
    if (known !== undefined) return known;
    const off = this.strings.length;
    this.strings = Buffer.concat([this.strings, Buffer.from(s + '\0', 'latin1')]);
    this.names.set(s, off);
    return off;
  }
  type(kind: number, name: string, vlen: number, sizeOrType: number, trailing: number[] = [], kindFlag = false): number {
    const b = Buffer.alloc(12 + trailing.length * 4);
    b.writeUInt32LE(this.str(name), 0);
    b.writeUInt32LE((((kindFlag ? 1 : 0) << 31) | ((kind & 0x1f) << 24) | (vlen & 0xffff)) >>> 0, 4);
    b.writeUInt32LE(sizeOrType >>> 0, 8);
    trailing.forEach((w, i) => b.writeUInt32LE(w >>> 0, 12 + i * 4));
    this.types.push(b);
    return this.types.length;
  }
  int(name: string, bytes: number) {
    return this.type(K.INT, name, 0, bytes, [bytes * 8]);
  }
  /** members: [name, type id, offset word] */
  struct(kind: number, name: string, size: number, members: [string, number, number][], kindFlag = false) {
    return this.type(kind, name, members.length, size, members.flatMap(([n, ty, off]) => [this.str(n), ty, off]), kindFlag);
  }
  blob(): Buffer {
    const types = Buffer.concat(this.types);
    const h = Buffer.alloc(24);
    h.writeUInt16LE(0xeb9f, 0);
    h.writeUInt8(1, 2);
    h.writeUInt32LE(24, 4);
    h.writeUInt32LE(0, 8);
    h.writeUInt32LE(types.length, 12);
    h.writeUInt32LE(types.length, 16);
    h.writeUInt32LE(this.strings.length, 20);
    return Buffer.concat([h, types, this.strings]);
  }
}

/** sk_buff as 6.x lays it out, in miniature: network_header inside an anonymous struct (struct_group `headers`) inside an anonymous union, bitfields before it, head after. */
function skbBlob(opts: { enum64?: boolean; headNotPtr?: boolean; noEnum?: boolean } = {}) {
  const b = new BtfBuilder();
  const u8 = b.int('unsigned char', 1);
  const u16 = b.int('short unsigned int', 2);
  const u16t = b.type(K.TYPEDEF, '__u16', 0, u16);
  const u32 = b.int('unsigned int', 4);
  const constU8 = b.type(K.CONST, '', 0, u8);
  const ptr = b.type(K.PTR, '', 0, constU8);
  // Kinds the parser must step over, each with its trailing data.
  b.type(K.ARRAY, '', 0, 0, [u8, u32, 16]);
  const proto = b.type(K.FUNC_PROTO, '', 2, u32, [b.str('a'), u32, b.str('b'), u16]);
  b.type(K.FUNC, 'f', 0, proto);
  b.type(K.VAR, 'v', 0, u32, [1]);
  b.type(K.DATASEC, '.data', 1, 4, [6, 0, 4]);
  b.type(K.FLOAT, 'float', 0, 4);
  b.type(K.FWD, 'sock', 0, 0);
  b.type(K.VOLATILE, '', 0, u32);
  b.type(K.RESTRICT, '', 0, ptr);
  b.type(K.TYPE_TAG, 'user', 0, u8);
  // Inner struct_group: { u16 transport_header; u16 network_header; u16 mac_header } at byte 8 of the anonymous struct.
  const headers = b.struct(K.STRUCT, '', 6, [
    ['transport_header', u16t, 0],
    ['network_header', u16t, 16],
    ['mac_header', u16t, 32],
  ]);
  const anonStruct = b.struct(K.STRUCT, '', 16, [
    ['pad', u32, 0],
    ['', headers, 64],
  ]);
  const anonUnion = b.struct(K.UNION, '', 16, [
    ['', anonStruct, 0],
    ['headers', headers, 0],
  ]);
  const volatileUnion = b.type(K.CONST, '', 0, anonUnion);
  const sk = b.struct(
    K.STRUCT,
    'sk_buff',
    232,
    [
      ['len', u32, (0 << 24) | 0],
      ['flag_a', u8, (1 << 24) | 32], // bitfields: kind_flag words (size << 24 | bit offset)
      ['flag_b', u8, (3 << 24) | 33],
      ['', volatileUnion, 160 * 8],
      ['', b.struct(K.UNION, '', 8, [['dev', ptr, 0], ['dev_scratch', u32, 0]]), 16 * 8],
      ['head', opts.headNotPtr ? u32 : ptr, 192 * 8],
    ],
    true,
  );
  b.type(K.DECL_TAG, 'tag', 0, sk, [0xffffffff]);
  // The namespace chain: net_device.nd_net (possible_net_t: a typedef of an anonymous struct).net, net.ns.inum.
  const net = b.type(K.FWD, 'net', 0, 0);
  const netPtr = b.type(K.PTR, '', 0, net);
  const possibleNet = b.type(K.TYPEDEF, 'possible_net_t', 0, b.struct(K.STRUCT, '', 8, [['net', netPtr, 0]]));
  b.struct(K.STRUCT, 'net_device', 512, [['name', u32, 0], ['nd_net', possibleNet, 264 * 8]]);
  const nsCommon = b.struct(K.STRUCT, 'ns_common', 32, [['stashed', ptr, 0], ['inum', u32, 24 * 8]]);
  b.struct(K.STRUCT, 'net', 1024, [['passive', u32, 0], ['ns', nsCommon, 152 * 8]]);
  const vals: [string, number][] = [
    ['SKB_NOT_DROPPED_YET', 0],
    ['SKB_CONSUMED', 1],
    ['SKB_DROP_REASON_NOT_SPECIFIED', 2],
    ['SKB_DROP_REASON_NO_SOCKET', 3],
    ['SKB_DROP_REASON_NETFILTER_DROP', 12],
    ['SKB_DROP_REASON_IP_RPFILTER', 16],
  ];
  if (opts.noEnum) b.type(K.ENUM, 'other_enum', vals.length, 4, vals.flatMap(([n, v]) => [b.str(n), v]));
  else if (opts.enum64) b.type(K.ENUM64, 'skb_drop_reason', vals.length, 8, vals.flatMap(([n, v]) => [b.str(n), v, 0]));
  else b.type(K.ENUM, 'skb_drop_reason', vals.length, 4, vals.flatMap(([n, v]) => [b.str(n), v]));
  return b.blob();
}

t.test('sk_buff: head and network_header, through anonymous unions and structs, after bitfields', async (t) => {
  const btf = parseBtf(skbBlob());
  const l = skbLayout(btf);
  t.equal(l.head, 192);
  t.equal(l.networkHeader, 160 + 8 + 2, 'anonymous union at 160 + anonymous struct member at 8 + field at 2');
  t.same([l.dev, l.devNet, l.netInum], [16, 264, 152 + 24], 'the namespace chain, through a typedef and into embedded structs');
  t.throws(() => memberOffset(btf, 'net_device', 'name.x', 'ptr'), /net_device.name is not a struct or union/);
  t.throws(() => memberOffset(btf, 'net', 'ns.nope', 'ptr'), /no member ns.nope/);
  t.same([...l.reasons], [
    [0, 'SKB_NOT_DROPPED_YET'],
    [1, 'SKB_CONSUMED'],
    [2, 'NOT_SPECIFIED'],
    [3, 'NO_SOCKET'],
    [12, 'NETFILTER_DROP'],
    [16, 'IP_RPFILTER'],
  ], 'names without the prefix');
  t.equal(memberOffset(btf, 'sk_buff', 'len', { intBytes: 4 }), 0);
  t.throws(() => memberOffset(btf, 'sk_buff', 'flag_b', { intBytes: 1 }), /bitfield/);
  t.throws(() => memberOffset(btf, 'sk_buff', 'nope', 'ptr'), /no member nope/);
  t.throws(() => memberOffset(btf, 'sk_buff', 'len', 'ptr'), /not a pointer/);
  t.throws(() => memberOffset(btf, 'sk_buff', 'head', { intBytes: 2 }), /not a 2-byte integer/);
  t.throws(() => memberOffset(btf, 'sock', 'x', 'ptr'), /no struct sock/);
  t.throws(() => skbLayout(parseBtf(skbBlob({ headNotPtr: true }))), /head is not a pointer/);
});

t.test('enum skb_drop_reason as ENUM64', async (t) => {
  const l = skbLayout(parseBtf(skbBlob({ enum64: true })));
  t.equal(l.reasons.get(12), 'NETFILTER_DROP');
  t.equal(l.reasons.get(16), 'IP_RPFILTER');
  t.throws(() => enumValues(parseBtf(new BtfBuilder().blob()), 'skb_drop_reason'), /no enum skb_drop_reason/);
  const noEnum = skbBlob({ noEnum: true });
  t.same(skbLayout(parseBtf(noEnum)).reasons.size, 0, 'no enum: no names (the watch asks tracefs), the offsets still found');
});

t.test('not BTF, or cut short: a BtfError that says what is wrong', async (t) => {
  const good = skbBlob();
  t.throws(() => parseBtf(Buffer.alloc(10)), BtfError);
  t.throws(() => parseBtf(Buffer.alloc(64)), /not BTF: magic/);
  const v2 = Buffer.from(good);
  v2.writeUInt8(2, 2);
  t.throws(() => parseBtf(v2), /version 2/);
  t.throws(() => parseBtf(good.subarray(0, good.length - 10)), /string section .* runs past/);
  const cut = Buffer.from(good);
  cut.writeUInt32LE(cut.readUInt32LE(12) - 6, 12); // type section ends inside a type
  t.throws(() => parseBtf(cut), /truncated|runs past the type section/);
  const bigVlen = Buffer.from(good);
  bigVlen.writeUInt32LE((K.STRUCT << 24) | 0xffff, 24 + 4); // first type claims 65535 members
  t.throws(() => parseBtf(bigVlen), /runs past the type section/);
  const badKind = Buffer.from(good);
  badKind.writeUInt32LE(31 << 24, 24 + 4);
  t.throws(() => parseBtf(badKind), /unknown BTF kind 31/);
  const hdr = Buffer.from(good);
  hdr.writeUInt32LE(1 << 30, 4);
  t.throws(() => parseBtf(hdr), /header length/);
});

t.test('property: any bytes, any corruption of a good blob: a result or a BtfError, quickly', async (t) => {
  const good = skbBlob();
  const ok = (buf: Buffer) => {
    try {
      skbLayout(parseBtf(buf));
    } catch (e) {
      if (!(e instanceof BtfError)) throw e;
    }
    return true;
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => ok(Buffer.from(bytes))), { numRuns: 2000 });
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat(good.length), (flips, len) => {
      const b = Buffer.from(good.subarray(0, Math.max(len, 24)));
      for (const [at, v] of flips) if (at < b.length) b[at] = v;
      return ok(b);
    }),
    { numRuns: 3000 },
  );
  t.pass('no hang, no other error');
});

const kernelBlob = await readFile(KERNEL_BTF).catch(() => null);
t.test("this kernel's BTF, when readable", { skip: kernelBlob ? false : `${KERNEL_BTF} is not readable here` }, async (t) => {
  const l = skbLayout(parseBtf(kernelBlob!));
  t.ok(l.head > 0 && l.head < 512 && l.head % 8 === 0, `head at ${l.head}`);
  t.ok(l.networkHeader > 0 && l.networkHeader < 512 && l.networkHeader % 2 === 0, `network_header at ${l.networkHeader}`);
  t.ok(l.dev >= 0 && l.dev % 8 === 0 && l.devNet > 0 && l.devNet % 8 === 0 && l.netInum > 0 && l.netInum % 4 === 0, `dev ${l.dev}, nd_net.net ${l.devNet}, ns.inum ${l.netInum}`);
  const names = new Set(l.reasons.values());
  for (const n of ['NOT_SPECIFIED', 'NO_SOCKET', 'NETFILTER_DROP', 'IP_RPFILTER']) t.ok(names.has(n), n);
});

t.test('a blob of anonymous members sharing types is searched in linear time', async (t) => {
  const b = new BtfBuilder();
  const u8 = b.int('u8', 1);
  // 16 levels, each an anonymous struct with 1000 anonymous members of the next level: 1000^16 paths.
  let inner = b.struct(K.STRUCT, '', 1, [['x', u8, 0]]);
  for (let level = 0; level < 15; level++) inner = b.struct(K.STRUCT, '', 1, Array.from({ length: 1000 }, () => ['', inner, 0] as [string, number, number]));
  b.struct(K.STRUCT, 'sk_buff', 1, [['', inner, 0]]);
  const btf = parseBtf(b.blob());
  const start = Date.now();
  t.throws(() => memberOffset(btf, 'sk_buff', 'head', 'ptr'), /no member head/);
  t.ok(Date.now() - start < 2000, `took ${Date.now() - start} ms`);
});
