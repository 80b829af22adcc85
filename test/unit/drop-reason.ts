// The kernel's drop reason: names read from skb:kfree_skb's format (numbers differ between kernels), which
// probe events tracefs offers, and the words saying why a probe's drop reason cannot be read; the reader never throws.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { dropReasonNames, dropReasonUnavailable, probeEventKinds, readDropReasonInput } from '../../src/kernel/drop-reason.js';

// From this kernel's (6.18) /sys/kernel/tracing/events/skb/kfree_skb/format, shortened.
const FORMAT_618 = `name: kfree_skb
ID: 2310
format:
\tfield:void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:enum skb_drop_reason reason;\toffset:36;\tsize:4;\tsigned:0;

print fmt: "skbaddr=%p rx_sk=%p protocol=%u location=%pS reason: %s", REC->skbaddr, REC->rx_sk, REC->protocol, REC->location, __print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, { 3, "NO_SOCKET" }, { 12, "NETFILTER_DROP" }, { 16, "IP_RPFILTER" }, { 19, "IP_NOPROTO" }, { 93, "PKT_TOO_BIG" }, { 129, "MAX" })`;
// An older kernel numbering them differently (names are what counts).
const FORMAT_OTHER = FORMAT_618.replace('{ 12, "NETFILTER_DROP" }', '{ 7, "NETFILTER_DROP" }');
const FORMAT_OLD = `name: kfree_skb\nprint fmt: "skbaddr=%p protocol=%u location=%p", REC->skbaddr, REC->protocol, REC->location`;
const README_UPROBES_ONLY = '  uprobe_events\t\t- Create/append/remove/show the userspace dynamic events\n   place (uprobe): <path>:<offset>[%return][(ref_ctr_offset)]\n';
const README_KPROBES = README_UPROBES_ONLY + '  kprobe_events\t\t- Create/append/remove/show the kernel dynamic events\n';

t.test('reason names come from the format, by number', async (t) => {
  const names = dropReasonNames(FORMAT_618);
  t.equal(names.get(12), 'NETFILTER_DROP');
  t.equal(names.get(16), 'IP_RPFILTER');
  t.equal(names.get(93), 'PKT_TOO_BIG');
  t.equal(names.size, 7);
  t.equal(dropReasonNames(FORMAT_OTHER).get(7), 'NETFILTER_DROP');
  t.equal(dropReasonNames(FORMAT_OLD).size, 0);
});

t.test('which probe events tracefs offers', async (t) => {
  t.same(probeEventKinds(README_UPROBES_ONLY), { kprobe: false, fprobe: false, eprobe: false });
  t.same(probeEventKinds(README_KPROBES).kprobe, true);
});

t.test('why the reason is unavailable: the most specific missing piece', async (t) => {
  t.match(dropReasonUnavailable({ readme: null, format: null }), /tracefs is not readable/);
  t.match(dropReasonUnavailable({ readme: README_KPROBES, format: null }), /no skb:kfree_skb event/);
  t.match(dropReasonUnavailable({ readme: README_KPROBES, format: FORMAT_OLD }), /no drop reason on this kernel/);
  t.match(dropReasonUnavailable({ readme: README_UPROBES_ONLY, format: FORMAT_618 }), /no packet content, and this kernel offers no kprobe, fprobe or eprobe events/);
  t.match(dropReasonUnavailable({ readme: README_KPROBES, format: FORMAT_OTHER }), /not built yet/);
});

t.test('reading tracefs: a missing root falls through to the next, nothing readable is null (never a throw)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cnt-tracefs-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'events/skb/kfree_skb'), { recursive: true });
  await writeFile(join(dir, 'README'), README_UPROBES_ONLY);
  await writeFile(join(dir, 'events/skb/kfree_skb/format'), FORMAT_618);
  t.same(await readDropReasonInput([join(dir, 'nope'), dir]), { readme: README_UPROBES_ONLY, format: FORMAT_618 });
  t.same(await readDropReasonInput([join(dir, 'nope')]), { readme: null, format: null });
});

t.test('property: random and truncated formats never throw and give names of the documented shape', async (t) => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.integer({ min: 0, max: FORMAT_618.length }).map((n) => FORMAT_618.slice(0, n))), fc.option(fc.string(), { nil: null }), (format, readme) => {
      for (const [n, name] of dropReasonNames(format)) if (!Number.isInteger(n) || !/^[A-Z0-9_]+$/.test(name)) return false;
      return dropReasonUnavailable({ readme, format }).length > 0;
    }),
    { numRuns: 2000 },
  );
  t.pass('2000 random formats');
});
