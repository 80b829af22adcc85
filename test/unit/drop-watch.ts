// The drop watch (src/kernel/drop-watch.ts) over a fake bpf(2), and the responder's kernel evidence with it
// (src/responder/kernel-evidence.ts): maps and program made and attached once, counting enabled only while a
// session is live, a session's facts carrying only its peers' drops into this node since it opened, and
// every way it cannot be had said in words (no bpf in the addon, no BTF, the kernel refusing).
import t from 'tap';
import { openDropWatch } from '../../src/kernel/drop-watch.js';
import { encodeDropKey, BPF_PROG_TYPE_RAW_TRACEPOINT } from '../../src/kernel/drop-bpf.js';
import type { SkbLayout } from '../../src/kernel/btf.js';
import { KernelEvidence } from '../../src/responder/kernel-evidence.js';
import { Session } from '../../src/responder/sessions.js';
import { FakeBpf } from '../helpers/fake-native.js';

const SELF = '198.18.2.2';
const layout = async (): Promise<SkbLayout> => ({ head: 192, networkHeader: 180, dev: 16, devNet: 264, netInum: 176, reasons: new Map([[2, 'NOT_SPECIFIED'], [12, 'NETFILTER_DROP'], [16, 'IP_RPFILTER']]) });
const key = (saddr: string, proto: number, dport: number, daddr = SELF, sport = 40000) => encodeDropKey({ saddr, daddr, proto, sport: proto === 4 ? 0 : sport, dport: proto === 4 ? 0 : dport });

t.test('open: two maps, the program loaded (GPL) and attached to kfree_skb; close closes every fd', async (t) => {
  const bpf = new FakeBpf();
  const r = await openDropWatch(bpf, SELF, layout);
  if (!('watch' in r)) throw new Error(r.unavailable);
  t.equal(bpf.maps.size, 2);
  const [prog] = [...bpf.programs.values()];
  t.match(prog, { type: BPF_PROG_TYPE_RAW_TRACEPOINT, license: 'GPL' });
  t.same([...bpf.attached.values()].map((a) => a.name), ['kfree_skb']);
  t.equal(bpf.enabled(), false, 'not counting until enabled');
  r.watch.enable(true);
  bpf.drop(key('198.18.1.2', 6, 179), 12);
  bpf.drop(key('198.18.1.2', 6, 179), 12);
  bpf.drop(key('198.18.1.2', 4, 0), 99);
  t.same(r.watch.entries(), [
    { saddr: '198.18.1.2', daddr: SELF, proto: 6, sport: 40000, dport: 179, reason: 'NETFILTER_DROP', count: 2 },
    { saddr: '198.18.1.2', daddr: SELF, proto: 4, sport: 0, dport: 0, reason: '99', count: 1 },
  ], 'reasons named from BTF; an unknown number stays a number');
  r.watch.clear();
  t.same(r.watch.entries(), []);
  r.watch.close();
  t.equal(bpf.closed.length, 4);
  t.equal(bpf.maps.size + bpf.programs.size + bpf.attached.size, 0);
  t.same(r.watch.entries(), [], 'closed: nothing, no throw');
  r.watch.enable(true);
});

t.test('unavailable: said why, and nothing left open', async (t) => {
  t.match(await openDropWatch(undefined, SELF, layout), { unavailable: /no bpf\(2\) calls/ });
  t.match(await openDropWatch(new FakeBpf(), SELF, async () => Promise.reject(new Error('BTF has no struct sk_buff'))), { unavailable: /BTF .*no struct sk_buff/ });
  t.match(await openDropWatch(new FakeBpf(), SELF, layout, async () => Promise.reject(new Error('ENOENT'))), { unavailable: /network namespace cannot be read/ });
  for (const [step, code, words] of [
    ['mapCreate', 'EPERM', /refused .*EPERM.*needs CAP_BPF and CAP_PERFMON/],
    ['progLoad', 'EACCES', /verifier: R1 invalid mem access/],
    ['rawTracepointOpen', 'ENOENT', /ENOENT/],
  ] as const) {
    const bpf = new FakeBpf();
    bpf.refuse = { [step]: code };
    t.match(await openDropWatch(bpf, SELF, layout), { unavailable: words }, step);
    t.equal(bpf.maps.size + bpf.programs.size + bpf.attached.size, 0, `${step}: every fd made before it is closed`);
  }
});

const session = (id: string, peers: string[], now = Date.now(), leaseMs = 60_000) => new Session(id, Buffer.from(id, 'hex'), Buffer.alloc(32), new Set(peers), {}, new Map(), leaseMs, now);
const quiet = { rpFilter: async () => 0, rpDrops: async () => 0, dropReason: async () => ({ readme: null, format: null }) };
const noConntrack = { list: async () => [], remove: async () => false, count: async () => 0 };

t.test("kernel evidence: enabled only while a session is live; a session's facts: its peers' drops into this node since it opened", async (t) => {
  const bpf = new FakeBpf();
  const watch = await openDropWatch(bpf, SELF, layout);
  const k = new KernelEvidence(SELF, async () => ({ code: 0, stdout: '', stderr: '' }), quiet, noConntrack, watch);
  bpf.drop(key('198.18.1.2', 6, 179), 12);
  t.equal(bpf.enabled(), false);
  const a = session('aa', ['198.18.1.2', '198.18.3.2']);
  await k.open(a);
  t.equal(bpf.enabled(), true, 'a session is live: counting');
  bpf.drop(key('198.18.1.2', 6, 179), 12);
  bpf.drop(key('198.18.9.9', 6, 179), 12); // not a peer
  bpf.drop(key('198.18.1.2', 6, 179, '198.18.1.2', 1234), 2); // from this node (daddr the peer)
  const b = session('bb', ['198.18.1.2']);
  await k.open(b);
  bpf.drop(key('198.18.1.2', 6, 179), 12);
  bpf.drop(key('198.18.1.2', 17, 4789), 16);
  const fa = await k.facts(a);
  t.equal(fa.dropReasonUnavailable, undefined);
  t.same(fa.drops, [
    { source: '198.18.1.2', destination: SELF, proto: 6, sport: 40000, dport: 179, reason: 'NETFILTER_DROP', count: 2 },
    { source: '198.18.1.2', destination: SELF, proto: 17, sport: 40000, dport: 4789, reason: 'IP_RPFILTER', count: 1 },
  ], "only the peers' packets into this node, counted from the session's opening (the drop before it is gone)");
  t.same((await k.facts(b)).drops?.map((d) => d.count), [1, 1], 'the later session counts from its own opening');
  await k.close('aa');
  t.equal(bpf.enabled(), true, 'one session still live');
  await k.close('bb');
  t.equal(bpf.enabled(), false, 'none live: not counting');
});

t.test('kernel evidence: a session that expired without a DELETE stops the counting at the next look', async (t) => {
  const bpf = new FakeBpf();
  const k = new KernelEvidence(SELF, async () => ({ code: 0, stdout: '', stderr: '' }), quiet, noConntrack, await openDropWatch(bpf, SELF, layout));
  const old = session('cc', ['198.18.1.2']);
  await k.open(old);
  t.equal(bpf.enabled(), true);
  old.expiresAtMs = Date.now() - 1; // its lease ran out; the store forgot it without a word
  const live = session('dd', ['198.18.1.2']);
  await k.open(live);
  await k.close('dd');
  t.equal(bpf.enabled(), false, 'the expired one no longer counts as live');
});

t.test('kernel evidence without the watch: why, in the facts', async (t) => {
  const k = new KernelEvidence(SELF, async () => ({ code: 0, stdout: '', stderr: '' }), quiet, noConntrack, { unavailable: 'the kernel refused the drop watch: EPERM' });
  const s = session('ee', ['198.18.1.2']);
  await k.open(s);
  const f = await k.facts(s);
  t.equal(f.dropReasonUnavailable, 'the kernel refused the drop watch: EPERM');
  t.equal(f.drops, undefined);
  const old = new KernelEvidence(SELF, async () => ({ code: 0, stdout: '', stderr: '' }), quiet, noConntrack);
  t.match((await old.facts(s)).dropReasonUnavailable, /tracefs is not readable/, 'no watch tried: the tracefs answer, as before');
});

t.test("reasons' names: from tracefs's format where BTF has no enum for them; none at all: unavailable", async (t) => {
  const noEnum = async () => ({ ...(await layout()), reasons: new Map<number, string>() });
  const format = 'print fmt: "reason: %s", __print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, { 12, "NETFILTER_DROP" })';
  const r = await openDropWatch(new FakeBpf(), SELF, noEnum, async () => 4026531840, async () => format);
  if (!('watch' in r)) throw new Error(r.unavailable);
  t.equal(r.watch.reasons.get(12), 'NETFILTER_DROP');
  t.match(await openDropWatch(new FakeBpf(), SELF, noEnum, async () => 4026531840, async () => null), { unavailable: /no enum skb_drop_reason and tracefs names no reasons/ });
});

t.test("kernel evidence: a watch whose maps the kernel refuses later (privileges dropped on an older kernel) says so in the facts", async (t) => {
  const bpf = new FakeBpf();
  const k = new KernelEvidence(SELF, async () => ({ code: 0, stdout: '', stderr: '' }), quiet, noConntrack, await openDropWatch(bpf, SELF, layout));
  bpf.mapUpdate = () => {
    throw Object.assign(new Error('bpf(2) failed: EPERM'), { code: 'EPERM' });
  };
  bpf.mapEntries = bpf.mapUpdate as never;
  const s = session('ff', ['198.18.1.2']);
  await k.open(s);
  const f = await k.facts(s);
  t.match(f.dropReasonUnavailable, /the drop watch's maps cannot be used: bpf\(2\) failed: EPERM .*unprivileged_bpf_disabled/);
  t.equal(f.drops, undefined);
});
