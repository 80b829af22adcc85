// Every row of the verdict table reproduced with real iptables rules in a real lab: each flow's verdict
// must equal the ground truth the injected faults imply (src/lab/faults.ts expectedOutcome).
import t from 'tap';
import { CATALOGUE } from '../../src/checks/catalogue.js';
import { expectedOutcome, parseFault } from '../../src/lab/faults.js';
import { labReport, needsRoot, withLab } from '../helpers/lab.js';
import { exited, waitFor } from '../helpers/wait.js';

t.test('open lab: every flow of every check passes, both directions', { skip: needsRoot }, async (t) => {
  const lab = await withLab(t, { nodes: 3 });
  const { run, report } = await labReport(lab, ['mesh']);
  t.equal(run.code, 0, run.stderr);
  t.ok(report.results.length >= 3 * 2 * 4, `plenty of flows (${report.results.length})`);
  t.same(
    report.results.filter((r) => r.verdict !== 'pass').map((r) => `${r.check} ${r.from}->${r.to} ${r.cause}: ${r.detail}`),
    [],
  );
  t.equal(report.summary.fail, 0);
  for (const r of report.results) t.ok(r.from !== r.to, 'a node never probes itself');
});

const FAULTS = [
  'drop:ipip@node2:in', // ingress-blocked
  'drop:bgp@node1:out', // egress-blocked (a TCP SYN dropped in OUTPUT: only the packet socket proves it)
  'drop:vxlan@path:node1>node3', // path-blocked, one direction only
  'reject:typha@node2:in', // rejected by a TCP reset from node2
  'drop:etcd@node1:return', // return-blocked: node1's SYN-ACKs for etcd are dropped
  'reject:wireguard@path:node3>node1', // rejected by the router with ICMP admin-prohibited
  'reject:ipip@node3:in', // the checksum-neutral IP-in-IP probe makes Linux's REJECT answer: rejected by node3
  'reject:ipip@path:node3>node2', // the same in the path: rejected by the router
];

t.test('faults of every kind: verdicts match the ground truth flow by flow', { skip: needsRoot }, async (t) => {
  const lab = await withLab(t, { nodes: 3, faults: FAULTS });
  const { run, report } = await labReport(lab, ['mesh']);
  t.equal(run.code, 1, 'exit 1: some flows fail');
  const faults = FAULTS.map(parseFault);
  const mismatches: string[] = [];
  for (const r of report.results) {
    const e = expectedOutcome(faults, { check: r.check, from: r.from, to: r.to, transport: CATALOGUE[r.check].transport });
    if (e.verdict !== r.verdict || e.cause !== r.cause) mismatches.push(`${r.check} ${r.from}->${r.to}: got ${r.verdict}/${r.cause} want ${e.verdict}/${e.cause} (${r.detail})`);
  }
  t.same(mismatches, [], 'every flow as the faults imply');
  const byKey = new Map(report.results.map((r) => [`${r.check} ${r.from}->${r.to}`, r]));
  t.equal(byKey.get('wireguard node3->node1')?.rejectedBy, '198.18.3.1', 'the router rejected it: rejectedBy is the router');
  t.equal(byKey.get('typha node1->node2')?.rejectedBy, '198.18.2.2', 'node2 reset it itself');
  t.equal(byKey.get('vxlan node3->node1')?.verdict, 'pass', 'the path fault is one direction only');
  t.match(byKey.get('ipip node1->node2')?.detail, /node2's own firewall/);
  t.ok(report.diagnosis && report.diagnosis.length >= 5, 'a diagnosis statement per fault');
});

t.test('a responder that is down makes its flows unknown, and the rest goes on', { skip: needsRoot }, async (t) => {
  const lab = await withLab(t, { nodes: 3 });
  const node3 = lab.nodes.find((n) => n.name === 'node3')!;
  process.kill(node3.pid!, 'SIGTERM');
  await waitFor(() => exited(node3.pid!), { timeout: 10_000, what: "node3's responder to exit" });
  const { run, report } = await labReport(lab, ['mesh', '--checks', 'bgp,ipip']);
  t.equal(run.code, 1);
  for (const r of report.results) {
    if (r.from === 'node3') {
      // Nothing was sent: node3's responder was to send it.
      t.equal(r.verdict, 'unknown', `${r.check} ${r.from}->${r.to} unknown`);
      t.equal(r.cause, 'responder-unreachable');
    } else if (r.to === 'node3') {
      // Judged from the source side: node3's kernel resets the SYN / says protocol 4 has no handler (no raw socket now).
      t.equal(r.verdict, 'pass', `${r.check} ${r.from}->${r.to} judged by the source: reset, reachable`);
      t.equal(r.rejectedBy, '198.18.3.2');
    } else t.equal(r.verdict, 'pass', `${r.check} ${r.from}->${r.to} still tested`);
  }
  t.match(run.stderr, /node3/);
});
