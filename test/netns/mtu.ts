// The mtu check for real: the router's link to node2 gets MTU 1400 (node2's own veth stays 1500).
// (a) the router's frag-needed dropped: mtu-blackhole both ways, pathMtu 1400 towards node2 and
// 1400-1404 from it (the router's port takes MTU + a VLAN header on receive, silently);
// (b) allowed: mtu-limited towards node2, hop = the router's address facing the sender; still
// mtu-blackhole from node2. Where silent, TTL-limited probes locate the hop (the link after the router
// towards node2, the link into the router from node2). Pairs not crossing the link pass at 1500; the small probes of the other
// checks pass throughout.
import t from 'tap';
import { expectedOutcome, parseFault } from '../../src/lab/faults.js';
import type { FlowResult } from '../../src/types.js';
import { labReport, needsRoot, withLab } from '../helpers/lab.js';

const byKey = (rs: FlowResult[]) => new Map(rs.map((r) => [`${r.check} ${r.from}->${r.to}`, r]));

for (const [name, spec] of [['frag-needed dropped', 'mtu:1400@node2'], ['frag-needed allowed', 'mtu:1400@node2:icmp']] as const) {
  t.test(`MTU 1400 on the router's link to node2, ${name}`, { skip: needsRoot }, async (t) => {
    const lab = await withLab(t, { nodes: 3, faults: [spec] });
    const { run, report } = await labReport(lab, ['mesh', '--checks', 'bgp,ipip,vxlan,mtu']);
    t.equal(run.code, 1, `exit 1: the mtu flows across the link fail (${run.stderr.slice(0, 300)})`);
    const rs = byKey(report.results);
    const fault = parseFault(spec);
    for (const r of report.results) {
      const want = expectedOutcome([fault], { check: r.check, from: r.from, to: r.to, transport: r.check === 'mtu' ? 'ipip' : 'tcp' });
      t.equal(`${r.verdict}/${r.cause}`, `${want.verdict}/${want.cause}`, `${r.check} ${r.from}->${r.to}: ${r.detail}`);
    }
    for (const from of ['node1', 'node3']) {
      const to2 = rs.get(`mtu ${from}->node2`)!;
      t.equal(to2.pathMtu, 1400, `${from}->node2 path MTU`);
      t.equal(to2.hostMtu, 1500);
      t.equal(to2.where, 'path');
      const gateway = from === 'node1' ? '198.18.1.1' : '198.18.3.1';
      if (fault.icmp) t.same(to2.hop, { address: gateway, mtu: 1400 }, 'hop: the router address facing the sender, and its next-hop MTU');
      // Silent: TTL-limited probes find it — the large ones reach the router (TTL 1) and go no further.
      else t.same(to2.hop, { address: gateway, mtu: 1400, by: 'time-exceeded', ttl: 1, link: 'after' }, 'hop from TTL-limited probes: the router, the link after it');
      const from2 = rs.get(`mtu node2->${from}`)!;
      t.equal(from2.cause, 'mtu-blackhole', 'from node2 the oversize frame is discarded on receive: no ICMP at all');
      t.ok(from2.pathMtu !== null && from2.pathMtu !== undefined && from2.pathMtu >= 1400 && from2.pathMtu <= 1404, `node2->${from} path MTU ${from2.pathMtu}`);
      // The router's port drops the frame before IP sees it: no large probe reaches even the first hop.
      t.same(from2.hop, { address: '198.18.2.1', mtu: from2.pathMtu, by: 'time-exceeded', ttl: 1, link: 'before' }, `node2->${from}: the first link, into the router`);
      t.match(from2.detail, /the first link, from node2 to 198\.18\.2\.1/);
    }
    for (const k of ['mtu node1->node3', 'mtu node3->node1']) {
      t.equal(rs.get(k)?.verdict, 'pass', `${k} does not cross the link`);
      t.equal(rs.get(k)?.pathMtu, 1500);
    }
    t.match(rs.get('mtu node1->node2')?.detail, /at most 1380 for IP-in-IP, 1350 for VXLAN, 1340 for WireGuard/);
    t.ok(report.results.filter((r) => r.check !== 'mtu').every((r) => r.verdict === 'pass'), 'small probes of the other checks pass');
  });
}

t.test('a cluster without IP-in-IP: the mtu probes travel as VXLAN to its port, and find the same limit', { skip: needsRoot }, async (t) => {
  // Before: every responder refused the session ("inbound.flows[…]: port is wrong for mtu"), so a
  // VXLAN-only mesh with the mtu check had every flow unknown.
  const lab = await withLab(t, { nodes: 3, faults: ['mtu:1400@node2'] });
  const { run, report } = await labReport(lab, ['mesh', '--checks', 'bgp,vxlan,mtu', '--no-preflight']);
  t.equal(run.code, 1, `exit 1: the mtu flows across the link fail (${run.stderr.slice(0, 300)})`);
  const rs = byKey(report.results);
  for (const from of ['node1', 'node3']) {
    const r = rs.get(`mtu ${from}->node2`)!;
    t.match(r, { verdict: 'fail', cause: 'mtu-blackhole', where: 'path', pathMtu: 1400, hostMtu: 1500, port: 4789, facts: { encapsulation: 'vxlan' } }, `${from}->node2: ${r.detail}`);
    t.match(r.detail, /DF probes of up to 1400 bytes arrive at node2/);
    t.equal(rs.get(`mtu node2->${from}`)?.cause, 'mtu-blackhole');
  }
  for (const k of ['mtu node1->node3', 'mtu node3->node1']) t.match(rs.get(k), { verdict: 'pass', pathMtu: 1500 }, k);
  t.ok(report.results.filter((r) => r.check !== 'mtu').every((r) => r.verdict === 'pass'), 'the small VXLAN and BGP probes pass');
  t.equal(report.results.filter((r) => r.verdict === 'unknown').length, 0, 'no flow unknown');
});
