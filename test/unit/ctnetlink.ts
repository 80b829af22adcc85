// ctnetlink messages: the delete's exact attribute layout, the dump request, the answer parser on real
// shapes and on random and truncated bytes (never throws), and IpipConntrack over a fake transact.
import t from 'tap';
import fc from 'fast-check';
import { encodeDelete, encodeDump, NETLINK_NETFILTER, parseCtAnswer } from '../../src/kernel/ctnetlink.js';
import { IpipConntrack, netlinkConntrack, readConntrackCount } from '../../src/kernel/conntrack.js';

const nlmsg = (type: number, body: Buffer, seq = 1) => {
  const b = Buffer.alloc(16 + body.length);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt16LE(type, 4);
  b.writeUInt32LE(seq, 8);
  body.copy(b, 16);
  return b;
};
const ack = (errno: number) => {
  const body = Buffer.alloc(20);
  body.writeInt32LE(-errno, 0);
  return nlmsg(2, body);
};
const done = () => nlmsg(3, Buffer.alloc(4));
/** A dumped entry as the kernel sends it: nfgenmsg, then CTA_TUPLE_ORIG { IP { SRC, DST }, PROTO { NUM } }. */
const entry = (src: number[], dst: number[], proto: number) => {
  const del = encodeDelete({ proto, src: src.join('.'), dst: dst.join('.') });
  return nlmsg(0x0100, del.subarray(16)); // IPCTNL_MSG_CT_NEW, same body as the delete's
};

t.test('the delete carries CTA_TUPLE_ORIG { CTA_TUPLE_IP { V4_SRC, V4_DST }, CTA_TUPLE_PROTO { PROTO_NUM } }, nested, acked', async (t) => {
  const b = encodeDelete({ proto: 4, src: '198.18.1.2', dst: '198.18.2.2' }, 7);
  t.equal(b.readUInt32LE(0), b.length, 'nlmsg_len');
  t.equal(b.readUInt16LE(4), (1 << 8) | 2, 'NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_DELETE');
  t.equal(b.readUInt16LE(6), 0x1 | 0x4, 'NLM_F_REQUEST | NLM_F_ACK');
  t.equal(b.readUInt32LE(8), 7, 'seq');
  t.same([...b.subarray(16, 20)], [2, 0, 0, 0], 'nfgenmsg: AF_INET, v0, res_id 0');
  const hex = b.subarray(20).toString('hex');
  // orig(len 36, 1|NESTED) ip(len 20, 1|NESTED) src(8,1) dst(8,2) proto(len 12, 2|NESTED) num(5,1) pad
  t.equal(hex, '24000180' + '14000180' + '08000100c6120102' + '08000200c6120202' + '0c000280' + '0500010004000000');
  t.throws(() => encodeDelete({ proto: 4, src: '198.18.1', dst: '1.2.3.4' }), TypeError);
  t.throws(() => encodeDelete({ proto: 256, src: '1.2.3.4', dst: '1.2.3.4' }), TypeError);
  t.equal(NETLINK_NETFILTER, 12);
});

t.test('the dump is a GET with NLM_F_DUMP for AF_INET', async (t) => {
  const b = encodeDump(3);
  t.equal(b.length, 20);
  t.equal(b.readUInt16LE(4), (1 << 8) | 1);
  t.equal(b.readUInt16LE(6), 0x1 | 0x300);
  t.equal(b[16], 2);
});

t.test('answers: entries of a dump, DONE, an ack, ENOENT', async (t) => {
  const a = parseCtAnswer(Buffer.concat([entry([198, 18, 1, 2], [198, 18, 2, 2], 4), entry([10, 0, 0, 1], [10, 0, 0, 2], 6), done()]));
  t.same(a.entries, [
    { proto: 4, src: '198.18.1.2', dst: '198.18.2.2' },
    { proto: 6, src: '10.0.0.1', dst: '10.0.0.2' },
  ]);
  t.equal(a.done, true);
  t.equal(a.malformed, false);
  t.equal(parseCtAnswer(ack(0)).errno, 0);
  t.equal(parseCtAnswer(ack(2)).errno, 2);
  const cut = parseCtAnswer(Buffer.concat([entry([1, 2, 3, 4], [5, 6, 7, 8], 4)]).subarray(0, 30));
  t.equal(cut.malformed, true, 'a truncated message is flagged');
  t.same(cut.entries, []);
});

t.test('random and truncated bytes never throw', async (t) => {
  const good = Buffer.concat([entry([198, 18, 1, 2], [198, 18, 2, 2], 4), done()]);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(good.length), (bytes, cut) => {
      parseCtAnswer(Buffer.from(bytes));
      const a = parseCtAnswer(good.subarray(0, cut));
      return a.entries.every((e) => e.proto === 4 && e.src === '198.18.1.2');
    }),
  );
  t.pass('no throw');
});

t.test('IpipConntrack over a fake kernel: deletes only what the session made, ENOENT counts as gone', async (t) => {
  const table = new Map<string, number[][]>([['198.18.9.9>198.18.1.2', [[198, 18, 9, 9], [198, 18, 1, 2]]]]);
  const deletes: string[] = [];
  const transact = (protocol: number, req: Buffer): Buffer => {
    t.equal(protocol, 12);
    const msg = req.readUInt16LE(4) & 0xff;
    if (msg === 1) return Buffer.concat([...[...table.values()].map(([s, d]) => entry(s!, d!, 4)), done()]);
    const body = req.subarray(20).toString('hex');
    const src = [...Buffer.from(body.slice(24, 32), 'hex')].join('.');
    const dst = [...Buffer.from(body.slice(40, 48), 'hex')].join('.');
    deletes.push(`${src}>${dst}`);
    return ack(table.delete(`${src}>${dst}`) ? 0 : 2);
  };
  const c = new IpipConntrack('198.18.1.2', new Set(['198.18.9.9', '198.18.2.2']), netlinkConntrack(transact, async () => table.size));
  const s = await c.snapshot();
  t.same(s, { available: true, error: null, preexisting: ['198.18.9.9'], tracking: true }, 'an entry in the table: this kernel tracks');
  table.set('198.18.1.2>198.18.2.2', [[198, 18, 1, 2], [198, 18, 2, 2]]);
  table.set('198.18.5.5>198.18.1.2', [[198, 18, 5, 5], [198, 18, 1, 2]]); // not a peer of this session
  t.equal(await c.clearOurs(), 1);
  t.same(deletes, ['198.18.1.2>198.18.2.2']);
  t.ok(table.has('198.18.9.9>198.18.1.2'), 'the older entry stays');
  t.ok(table.has('198.18.5.5>198.18.1.2'), 'an entry with a non-peer stays');
  const refused = new IpipConntrack('198.18.1.2', new Set(), netlinkConntrack(() => ack(1), async () => null));
  t.same(await refused.snapshot(), { available: false, error: 'the kernel refused the conntrack dump: EPERM', preexisting: [], tracking: null }, 'cannot list: cannot tell');
  const empty = new IpipConntrack('198.18.1.2', new Set(['198.18.2.2']), netlinkConntrack(() => done(), async () => null));
  t.same(await empty.snapshot(), { available: true, error: null, preexisting: [], tracking: false }, 'an empty table (not even the control connection): it does not track');
});

t.test('the namespace\'s entry count spares the dump (it scans every namespace\'s entries) when it is 0', async (t) => {
  let dumps = 0;
  const n = { count: 0 };
  const c = new IpipConntrack('198.18.1.2', new Set(['198.18.2.2']), netlinkConntrack(() => (dumps++, done()), async () => n.count));
  t.same(await c.snapshot(), { available: true, error: null, preexisting: [], tracking: false });
  t.equal(await c.clearOurs(), 0);
  t.equal(dumps, 0, 'count 0: no dump at opening or clearing');
  n.count = 3; // something tracks now (a firewall loaded mid-run): the clear looks
  t.equal(await c.clearOurs(), 0);
  t.equal(dumps, 1);
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = await mkdtemp(join(tmpdir(), 'cnt-ct-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'count'), '17\n');
  await writeFile(join(dir, 'junk'), 'many\n');
  t.equal(await readConntrackCount(join(dir, 'count')), 17);
  t.equal(await readConntrackCount(join(dir, 'none')), 0, 'no file: conntrack is not loaded, nothing is tracked');
  t.equal(await readConntrackCount(join(dir, 'junk')), null, 'unreadable: cannot tell');
  t.equal(await readConntrackCount(dir), null, 'a directory: cannot tell');
});

t.test('through the fake binding: the request reaches netlinkTransact, a socket failure makes the state unavailable', async (t) => {
  const { FakeNative } = await import('../helpers/fake-native.js');
  const b = new FakeNative();
  const ops = netlinkConntrack((p, r) => b.netlinkTransact(p, r), async () => null);
  t.same(await ops.list(), []);
  t.equal(b.netlinkRequests[0]!.protocol, 12);
  b.netlinkRule = () => 'EPROTONOSUPPORT';
  const c = new IpipConntrack('198.18.1.2', new Set(['198.18.2.2']), ops);
  const s = await c.snapshot();
  t.equal(s.available, false);
  t.match(s.error, /EPROTONOSUPPORT/);
  t.equal(await c.clearOurs(), 0);
});
