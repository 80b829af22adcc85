import t from 'tap';
import { diagnose } from '../../src/report/diagnosis.js';
import type { CheckId, FlowResult } from '../../src/types.js';
import { fail, mesh, unknown } from '../helpers/report-fixtures.js';

t.test('no failures, no statements', async (t) => {
  t.same(diagnose(mesh(5)), []);
});

t.test("one node's INPUT drops ipip from all: one statement", async (t) => {
  const r = mesh(6, { fault: (c, _f, to) => (c === 'ipip' && to === 'node5' ? fail('ingress-blocked') : undefined) });
  const d = diagnose(r);
  t.equal(d.length, 1);
  const s = d[0]!;
  t.equal(s.flows, 5);
  t.equal(s.where, 'destination');
  t.equal(s.text, "node5's own firewall drops IP-in-IP (IP protocol 4) from every node (5 flows)");
  t.match(s.advice, /INPUT/);
  t.match(s.advice, /IP protocol 4/);
  t.equal(s.examples.length, 3);
  t.ok(s.examples.every((e) => e.check === 'ipip' && e.to === 'node5'));
});

t.test('ingress from some nodes only names them', async (t) => {
  const r = mesh(6, {
    fault: (c, f, to) => (c === 'bgp' && to === 'node3' && (f === 'node1' || f === 'node2') ? fail('ingress-blocked') : undefined),
  });
  const d = diagnose(r);
  t.equal(d.length, 1);
  t.equal(d[0]!.text, "node3's own firewall drops BGP (TCP 179) from node1 and node2 (2 flows)");
});

t.test('whole-node ingress across checks merges', async (t) => {
  const r = mesh(6, { fault: (_c, _f, to) => (to === 'node5' ? fail('ingress-blocked') : undefined) });
  const d = diagnose(r);
  t.equal(d.length, 1);
  t.equal(d[0]!.text, "node5's own firewall drops everything Calico needs inbound (bgp, ipip, vxlan: 15 flows)");
  t.equal(d[0]!.flows, 15);
});

t.test('path drop between two subnets, one direction', async (t) => {
  // nodes 1-3 in 198.18.1.0/24, 4-6 in 198.18.3.0/24
  const address = (i: number) => (i <= 3 ? `198.18.1.${i}` : `198.18.3.${i}`);
  const sub = (n: string) => (Number(n.slice(4)) <= 3 ? 'A' : 'B');
  const r = mesh(6, {
    address,
    checks: ['bgp', 'ipip', 'vxlan'],
    fault: (c, f, to) => (c === 'vxlan' && sub(f) === 'A' && sub(to) === 'B' ? fail('path-blocked') : undefined),
  });
  const d = diagnose(r);
  t.equal(d.length, 1);
  t.equal(d[0]!.text, 'the path from 198.18.1.0/24 to 198.18.3.0/24 drops VXLAN (UDP 4789) (9 flows)');
  t.equal(d[0]!.where, 'path');
  t.match(d[0]!.advice, /security group/);
});

t.test('path drop with a port override from report.ports', async (t) => {
  const r = mesh(4, {
    fault: (c, f, to) => (c === 'vxlan' && f === 'node1' && to === 'node2' ? fail('path-blocked', { port: undefined }) : undefined),
  });
  for (const x of r.results) delete x.port;
  r.ports = { vxlan: 8472 };
  const d = diagnose(r);
  t.equal(d.length, 1);
  t.match(d[0]!.text, /VXLAN \(UDP 8472\)/);
});

t.test('path drop in front of one node (same subnet) is blamed on that node', async (t) => {
  const r = mesh(5, {
    address: (i) => `198.18.0.${i}`,
    fault: (c, _f, to) => (c === 'bgp' && to === 'node2' ? fail('path-blocked') : undefined),
  });
  const d = diagnose(r);
  t.equal(d.length, 1);
  t.equal(d[0]!.text, 'the path to node2 drops BGP (TCP 179) from every node (4 flows)');
});

t.test('egress', async (t) => {
  const r = mesh(5, { fault: (c, f) => (c === 'bgp' && f === 'node2' ? fail('egress-blocked') : undefined) });
  const d = diagnose(r);
  t.equal(d.length, 1);
  t.equal(d[0]!.text, "node2's own firewall blocks BGP (TCP 179) it sends to every node (4 flows)");
  t.equal(d[0]!.where, 'source');
  t.match(d[0]!.advice, /OUTPUT/);
});

t.test('responder down: one statement per node, each flow under the responder its facts name', async (t) => {
  const down = new Set(['node3', 'node7']);
  const named = (f: string, to: string) => (down.has(f) ? f : to);
  const r = mesh(8, {
    fault: (_c, f, to) =>
      down.has(f) || down.has(to)
        ? unknown({
            detail: `could not reach responder ${named(f, to)} at 198.18.${named(f, to).slice(4)}.1:5478`,
            facts: { responder: named(f, to), control: `198.18.${named(f, to).slice(4)}.1:5478`, errorKind: 'refused' },
          })
        : undefined,
  });
  const d = diagnose(r);
  t.equal(d.length, 2);
  t.same(d.map((s) => s.where), ['responder', 'responder']);
  t.same(d.map((s) => s.text.slice(0, 5)).sort(), ['node3', 'node7']);
  for (const s of d) {
    const node = s.text.slice(0, 5);
    t.match(s.text, new RegExp(`^${node}: responder not reachable at 198\\.18\\.${node.slice(4)}\\.1:5478 \\(${s.flows} flows unknown\\)$`));
    // Its own 3 checks x 7 peers, and the 3 x 6 flows to it from the nodes that are up (node3 -> node7 is node3's).
    t.equal(s.flows, r.results.filter((x) => x.facts?.responder === node).length);
    t.equal(s.flows, 3 * 7 + 3 * 6);
    t.ok(s.examples.every((e) => e.from === node || e.to === node), 'examples are flows of the named node');
  }
  const unknowns = r.results.filter((x) => x.verdict === 'unknown').length;
  t.equal(d[0]!.flows + d[1]!.flows, unknowns, 'every unknown flow under exactly one responder');
});

t.test('responder down: a report without facts blames both ends (older reports)', async (t) => {
  const r = mesh(4, { fault: (_c, f, to) => (f === 'node2' || to === 'node2' ? unknown({ detail: 'x' }) : undefined) });
  const d = diagnose(r);
  t.equal(d.length, 1);
  t.match(d[0]!.text, /^node2: responder not reachable \(18 flows unknown\)$/);
});

t.test('responder down at the destination only: the destination is named, not the source that probed', async (t) => {
  const r = mesh(3, { fault: (_c, _f, to) => (to === 'node3' ? unknown({ attempts: 3, facts: { responder: 'node3', tries: 3 } }) : undefined) });
  const d = diagnose(r);
  t.equal(d.length, 1);
  t.match(d[0]!.text, /^node3: responder not reachable \(6 flows unknown\)$/);
});

t.test('rejected: by the destination itself, and by a router', async (t) => {
  const r = mesh(4, {
    fault: (c, f, to) => {
      if (c === 'bgp' && to === 'node4') return fail('rejected', { rejectedBy: '198.18.4.1' });
      if (c === 'vxlan' && f === 'node1' && to === 'node2') return fail('rejected', { rejectedBy: '198.18.200.1' });
      return undefined;
    },
  });
  const d = diagnose(r);
  t.equal(d.length, 2);
  t.equal(d[0]!.text, "node4's own firewall rejects BGP (TCP 179) from every node (3 flows)");
  t.match(d[1]!.text, /^198\.18\.200\.1 rejects VXLAN \(UDP 4789\)/);
});

t.test('return-blocked', async (t) => {
  const r = mesh(4, { fault: (c, _f, to) => (c === 'bgp' && to === 'node3' ? fail('return-blocked') : undefined) });
  const d = diagnose(r);
  t.equal(d.length, 1);
  t.equal(
    d[0]!.text,
    "node3 answers BGP (TCP 179) but the answer never comes back: node3's OUTPUT or the return path drops it (3 flows)",
  );
});

t.test('mixed faults: statements match faults one to one', async (t) => {
  const address = (i: number) => (i <= 4 ? `198.18.1.${i}` : `198.18.2.${i}`);
  const r = mesh(8, {
    address,
    fault: (c, f, to) => {
      const fi = Number(f.slice(4));
      const ti = Number(to.slice(4));
      if (f === 'node8' || to === 'node8') return unknown({ detail: 'control 198.18.2.8:5478: ECONNREFUSED', facts: { responder: 'node8', control: '198.18.2.8:5478', errorKind: 'refused' } });
      if (c === 'ipip' && to === 'node2') return fail('ingress-blocked');
      if (c === 'bgp' && f === 'node6') return fail('egress-blocked');
      if (c === 'vxlan' && fi <= 4 && ti > 4) return fail('path-blocked');
      if (c === 'bgp' && to === 'node1') return fail('return-blocked');
      return undefined;
    },
  });
  const d = diagnose(r);
  const texts = d.map((s) => s.text).sort();
  t.same(texts, [
    'node1 answers BGP (TCP 179) but the answer never comes back: node1\'s OUTPUT or the return path drops it (5 flows)',
    "node2's own firewall drops IP-in-IP (IP protocol 4) from every measured node (6 flows)",
    "node6's own firewall blocks BGP (TCP 179) it sends to every measured node (6 flows)",
    'node8: responder not reachable at 198.18.2.8:5478 (42 flows unknown)',
    'the path from 198.18.1.0/24 to 198.18.2.0/24 drops VXLAN (UDP 4789) (12 flows)',
  ]);
  const failing = r.results.filter((x) => x.verdict !== 'pass').length;
  t.equal(d.reduce((s, x) => s + x.flows, 0), failing, 'every failing flow explained exactly once');
});

t.test('unknown causes fall back to a generic statement', async (t) => {
  const r = mesh(3, {
    fault: (c, f, to) => (c === 'ipip' && f === 'node1' && to === 'node2' ? { verdict: 'unknown', cause: null, detail: 'odd' } : undefined),
  });
  const d = diagnose(r);
  t.equal(d.length, 1);
  t.match(d[0]!.text, /could not be judged/);
  t.equal(d[0]!.flows, 1);
});

t.test('at scale: 300 nodes x 7 checks', async (t) => {
  const checks: CheckId[] = ['bgp', 'ipip', 'vxlan', 'wireguard', 'typha', 'etcd', 'apiserver'];
  const r = mesh(300, {
    checks,
    address: (i) => `198.18.${Math.floor(i / 100)}.${i % 100}`,
    fault: (c, f, to) => {
      if (to === 'node17') return fail('ingress-blocked');
      if (c === 'vxlan' && f === 'node200') return fail('egress-blocked');
      if (f === 'node250' || to === 'node250') return unknown();
      return undefined;
    },
  });
  t.equal(r.results.length, 300 * 299 * 7);
  const d = diagnose(r);
  const byText = d.map((s) => s.text);
  t.equal(d.length, 3, byText.join('\n'));
  t.ok(byText.some((x) => x.startsWith("node17's own firewall drops everything Calico needs inbound")));
  t.ok(byText.some((x) => x.startsWith("node200's own firewall blocks VXLAN (UDP 4789) it sends to")));
  t.ok(byText.some((x) => x.startsWith('node250: responder not reachable')));
  const failing = r.results.filter((x: FlowResult) => x.verdict !== 'pass').length;
  t.equal(d.reduce((s, x) => s + x.flows, 0), failing);
});

t.test('one zone dropping VXLAN to all others: one statement, not one per sender', async (t) => {
  const zone = (name: string) => Number(name.slice(4)) <= 5;
  const r = mesh(12, { fault: (c, f, to) => (c === 'vxlan' && zone(f) && !zone(to) ? fail('path-blocked') : undefined) });
  const d = diagnose(r);
  t.equal(d.length, 1, d.map((s) => s.text).join('\n'));
  t.equal(d[0]!.flows, 5 * 7);
  t.match(d[0]!.text, /^the path from 5 nodes \(node1, node2, node3 and 2 more\) drops VXLAN \(UDP 4789\) they send to node6, node7, node8 and 4 more \(35 flows\)$/);
});
