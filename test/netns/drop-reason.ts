// The kernel's own drop reason for each dropped probe (issue 11 item 2), for real: each responder's eBPF
// drop watch on kfree_skb sees the probes its kernel drops. A DROP rule: NETFILTER_DROP and ingress-blocked;
// strict rp_filter with the route back by another interface: IP_RPFILTER and rp-filter; a policy-routing
// blackhole for the sender's address (no rule of any firewall): the table alone would say ingress-blocked,
// the kernel's reason makes it kernel-drop.
import t from 'tap';
import { inNs, run } from '../../src/lab/sys.js';
import type { LabState } from '../../src/lab/lab.js';
import type { FlowResult } from '../../src/types.js';
import { loadNative } from '../../src/native.js';
import { openDropWatch } from '../../src/kernel/drop-watch.js';
import { labReport, misrouteWithStrictRpFilter, needsRoot, withLab } from '../helpers/lab.js';

const ns = (lab: LabState, node: string) => lab.nodes.find((n) => n.name === node)!.ns;
const sh = (netns: string, argv: string[]) => run(inNs(netns, argv));
const line = (r: FlowResult) => `${r.check} ${r.from}->${r.to}: ${r.verdict}/${r.cause}/${r.where} dropReason=${r.dropReason} (${r.detail}) ${JSON.stringify(r.facts?.dropReasonUnavailable ?? '')}`;

/** Whether the drop watch loads here (root, BPF, BTF): a skip reason when it does not. */
async function needsBpf(): Promise<string | false> {
  if (needsRoot) return needsRoot;
  let native;
  try {
    native = loadNative();
  } catch (e) {
    return `the native addon does not load: ${(e as Error).message}`;
  }
  const r = await openDropWatch(native.bpf, '127.0.0.1');
  if ('unavailable' in r) return `the drop watch cannot load here: ${r.unavailable}`;
  r.watch.close();
  return false;
}
const skip = await needsBpf();

t.test('a DROP rule on node2: ingress-blocked, and the kernel says NETFILTER_DROP', { skip }, async (t) => {
  const lab = await withLab(t, { nodes: 2 });
  await sh(ns(lab, 'node2'), ['iptables', '-A', 'INPUT', '-p', 'tcp', '--dport', '179', '-j', 'DROP']);
  const { run: cli, report } = await labReport(lab, ['mesh', '--checks', 'bgp,ipip']);
  t.equal(cli.code, 1, cli.stderr);
  for (const r of report.results) {
    if (r.check === 'bgp' && r.from === 'node1' && r.to === 'node2') t.match(r, { verdict: 'fail', cause: 'ingress-blocked', where: 'destination', dropReason: 'NETFILTER_DROP' }, line(r));
    else t.equal(r.verdict, 'pass', line(r));
  }
});

t.test('strict rp_filter on node2 with the route back by another interface: rp-filter, and the kernel says IP_RPFILTER', { skip }, async (t) => {
  const lab = await withLab(t, {
    nodes: 2,
    beforeResponders: (s) => misrouteWithStrictRpFilter(s),
  });
  const { report } = await labReport(lab, ['mesh', '--checks', 'bgp,ipip,vxlan']);
  const into2 = report.results.filter((r) => r.from === 'node1' && r.to === 'node2');
  t.ok(into2.length >= 3);
  for (const r of into2) t.match(r, { verdict: 'fail', cause: 'rp-filter', where: 'destination', dropReason: 'IP_RPFILTER' }, line(r));
});

t.test("a blackhole for node1's address in node2's policy routing: no firewall rule, so kernel-drop with the kernel's reason", { skip }, async (t) => {
  const lab = await withLab(t, {
    nodes: 2,
    beforeResponders: async (s) => {
      // Every packet from node1 into node2 meets `ip rule ... blackhole` at the input route lookup: dropped
      // silently after node2's capture saw it, before any socket — what a firewall's DROP looks like from outside.
      // The local table is looked up first (rule 0): it moves behind the blackhole (the namespace goes with the lab).
      const n2 = ns(s, 'node2');
      await sh(n2, ['ip', 'rule', 'add', 'pref', '100', 'lookup', 'local']);
      await sh(n2, ['ip', 'rule', 'del', 'pref', '0']);
      await sh(n2, ['ip', 'rule', 'add', 'pref', '10', 'from', '198.18.1.2', 'blackhole']);
    },
  });
  const { report } = await labReport(lab, ['mesh', '--checks', 'bgp,ipip,vxlan']);
  const into2 = report.results.filter((r) => r.from === 'node1' && r.to === 'node2');
  t.ok(into2.length >= 3);
  for (const r of into2) {
    t.match(r, { verdict: 'fail', cause: 'kernel-drop', where: 'destination' }, line(r));
    t.ok(typeof r.dropReason === 'string' && r.dropReason !== 'NETFILTER_DROP' && r.dropReason !== 'IP_RPFILTER', `a reason of the kernel's own: ${r.dropReason}`);
    t.match(r.detail, new RegExp(`node2's kernel dropped it \\(reason ${r.dropReason}\\): no firewall rule did`));
  }
});

t.test('the addon: a program the verifier refuses comes back with its log; arguments are checked', { skip }, async (t) => {
  const bpf = loadNative().bpf!;
  // r0 = *(u64 *)(r2 + 0): r2 was never written — the verifier refuses it and says so.
  const bad = Buffer.from([0x79, 0x20, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
  t.throws(() => bpf.progLoad(17, bad, 'GPL'), { code: 'EACCES', syscall: 'bpf', message: /BPF_PROG_LOAD: verifier: .*R2 !read_ok/s });
  t.throws(() => bpf.progLoad(17, Buffer.alloc(7), 'GPL'), TypeError);
  t.throws(() => bpf.mapCreate(1, 0, 4, 1), TypeError);
  t.throws(() => bpf.rawTracepointOpen('', 3), TypeError);
  const map = bpf.mapCreate(1, 4, 8, 4);
  const k = (n: number) => Buffer.from([n, 0, 0, 0]);
  for (let i = 0; i < 3; i++) bpf.mapUpdate(map, k(i), Buffer.alloc(8, i), 0);
  const all = bpf.mapEntries(map, 4, 8, 100);
  t.equal(all.length, 3 * 12, 'three key||value records');
  t.equal(bpf.mapEntries(map, 4, 8, 2).length, 2 * 12, 'at most maxEntries');
  t.equal(bpf.mapDelete(map, k(1)), true);
  t.equal(bpf.mapDelete(map, k(1)), false, 'already gone');
  t.equal(bpf.mapEntries(map, 4, 8, 100).length, 2 * 12);
  bpf.close(map);
  t.throws(() => bpf.mapEntries(map, 4, 8, 100), { code: 'EBADF' });
});
