import t, { type Test } from 'tap';
import { defaultPorts } from '../../src/checks/catalogue.js';
import type { Inventory, InventoryEndpoint } from '../../src/coordinator/inventory.js';
import { countFlows, iterateFlows, MAX_FLOWS_PER_DESTINATION, PlanError, planMesh, planPair } from '../../src/coordinator/plan.js';
import { CHECK_IDS, type CheckId, type PlannedFlow, type Role } from '../../src/types.js';

function inventory(n: number, roles: (i: number) => Role[] = () => [], extra: Partial<Inventory> = {}): Inventory {
  return {
    file: 'inv.yaml',
    nodes: Array.from({ length: n }, (_, i) => ({
      name: `node${i + 1}`,
      address: `198.18.${i + 1}.2`,
      roles: roles(i),
      control: { host: `198.18.${i + 1}.2`, port: 5478 },
    })),
    endpoints: [],
    checks: null,
    ports: defaultPorts(),
    ...extra,
  };
}

const ALL_ROLES: Role[] = ['typha', 'etcd', 'apiserver'];
const key = (f: PlannedFlow) => `${f.check} ${f.from}>${f.to}`;

function assertIdx(t: Test, flows: PlannedFlow[]): void {
  const byDest = new Map<string, number[]>();
  for (const f of flows) byDest.set(f.to, [...(byDest.get(f.to) ?? []), f.idx]);
  for (const [dest, idx] of byDest) {
    t.same(idx, idx.map((_, i) => i), `idx of ${dest} counts 0..${idx.length - 1} in plan order`);
  }
}

t.test('mesh counts for N nodes', async (t) => {
  for (const n of [1, 2, 3, 5, 12]) {
    const allPairs = n * (n - 1);
    const noRoles = planMesh(inventory(n));
    t.same(noRoles.checks, ['bgp', 'ipip', 'vxlan', 'wireguard', 'mtu'], `n=${n}: role checks skipped without holders`);
    t.equal(noRoles.flows.length, 5 * allPairs);
    t.equal(countFlows(inventory(n)), 5 * allPairs);
    t.equal(noRoles.notes.filter((x) => /skipped: no node has role/.test(x)).length, 3);
    const everyRole = planMesh(inventory(n, () => ALL_ROLES));
    t.equal(everyRole.flows.length, 8 * allPairs, `n=${n}: every node holds every role`);
    t.equal(countFlows(inventory(n, () => ALL_ROLES)), 8 * allPairs);
    // Node 1 holds typha, nodes 1 and 2 etcd: to-role checks go from every node to each holder but itself.
    const some = inventory(n, (i) => (i === 0 ? ['typha', 'etcd'] : i === 1 ? ['etcd'] : []));
    const p = planMesh(some);
    const holders = { typha: 1, etcd: Math.min(2, n), apiserver: 0 };
    t.equal(p.flows.filter((f) => f.check === 'typha').length, holders.typha * (n - 1));
    t.equal(p.flows.filter((f) => f.check === 'etcd').length, holders.etcd * (n - 1));
    t.equal(p.flows.length, countFlows(some));
    for (const f of p.flows) t.not(f.from, f.to, 'never probes itself');
    assertIdx(t, p.flows);
  }
  t.match(planMesh(inventory(1)).notes, [/skipped/, /skipped/, /skipped/, /only one node/]);
});

t.test('flow contents and order', async (t) => {
  const inv = inventory(3, (i) => (i === 2 ? ['apiserver'] : []), { ports: { ...defaultPorts(), bgp: 1179 } });
  const p = planMesh(inv, { checks: ['apiserver', 'ipip', 'bgp'] });
  t.same(p.checks, ['bgp', 'ipip', 'apiserver'], 'catalogue order');
  t.same(p.notes, []);
  t.same(p.flows.map(key), [
    'bgp node1>node2', 'bgp node1>node3', 'bgp node2>node1', 'bgp node2>node3', 'bgp node3>node1', 'bgp node3>node2',
    'ipip node1>node2', 'ipip node1>node3', 'ipip node2>node1', 'ipip node2>node3', 'ipip node3>node1', 'ipip node3>node2',
    'apiserver node1>node3', 'apiserver node2>node3',
  ]);
  t.same(p.flows[0], { check: 'bgp', transport: 'tcp', from: 'node1', to: 'node2', toAddress: '198.18.2.2', port: 1179, idx: 0 });
  t.same(p.flows[6], { check: 'ipip', transport: 'ipip', from: 'node1', to: 'node2', toAddress: '198.18.2.2', port: null, idx: 2 });
  t.same(p.flows[13], { check: 'apiserver', transport: 'tcp', from: 'node2', to: 'node3', toAddress: '198.18.3.2', port: 6443, idx: 5 });
  t.equal(p.ports.bgp, 1179);
  assertIdx(t, p.flows);
  t.same([...iterateFlows(inv, { checks: ['apiserver', 'ipip', 'bgp'] })], p.flows, 'iterateFlows gives the same flows');
});

t.test('checks: --checks overrides the inventory, which overrides the catalogue', async (t) => {
  const inv = inventory(2, () => [], { checks: ['vxlan'] });
  t.same(planMesh(inv).checks, ['vxlan']);
  t.same(planMesh(inv, { checks: ['bgp', 'bgp'] }).checks, ['bgp']);
  t.throws(() => planMesh(inv, { checks: [] }), { code: 'EPLAN', message: /check list is empty/ });
});

t.test('endpoints', async (t) => {
  const vip: InventoryEndpoint = { name: 'kube-vip', address: '198.18.0.100', port: 443, checks: ['apiserver'] };
  const lb: InventoryEndpoint = { name: 'etcd-lb', address: '198.18.0.101', port: null, checks: ['etcd'] };
  const inv = inventory(3, (i) => (i === 0 ? ['apiserver'] : []), { endpoints: [vip, lb] });
  const p = planMesh(inv, { checks: ['apiserver', 'etcd'] });
  t.same(p.flows.map(key), [
    'etcd node1>etcd-lb', 'etcd node2>etcd-lb', 'etcd node3>etcd-lb',
    'apiserver node1>kube-vip', 'apiserver node2>node1', 'apiserver node2>kube-vip', 'apiserver node3>node1', 'apiserver node3>kube-vip',
  ]);
  const toVip = p.flows.filter((f) => f.to === 'kube-vip');
  t.same(toVip[0], { check: 'apiserver', transport: 'tcp', from: 'node1', to: 'kube-vip', toAddress: '198.18.0.100', port: 443, idx: 0, sourceOnly: true });
  t.same(p.flows[0], { check: 'etcd', transport: 'tcp', from: 'node1', to: 'etcd-lb', toAddress: '198.18.0.101', port: 2379, idx: 0, sourceOnly: true });
  t.notOk(p.flows.some((f) => f.to === 'node1' && f.sourceOnly), 'node flows carry no sourceOnly');
  assertIdx(t, p.flows);
  t.equal(countFlows(inv, { checks: ['apiserver', 'etcd'] }), p.flows.length);
  // An endpoint alone satisfies an explicit role check.
  t.equal(planMesh(inventory(2, () => [], { endpoints: [vip] }), { checks: ['apiserver'] }).flows.length, 2);
  // A single node with an endpoint still has something to probe.
  t.same(planMesh(inventory(1, () => [], { endpoints: [vip] }), { checks: ['apiserver'] }).notes, []);
});

t.test('explicit role checks need a holder; default ones are skipped with a note', async (t) => {
  const inv = inventory(3);
  t.throws(() => planMesh(inv, { checks: ['bgp', 'typha'] }), {
    code: 'EPLAN',
    message: 'check typha needs a node with role typha; none has it — add roles: [typha] to the node(s) running Typha, or drop typha from --checks',
  });
  t.throws(() => planMesh({ ...inv, checks: ['etcd'] }), { code: 'EPLAN', message: /check etcd needs a node with role etcd/ });
  const p = planMesh(inv);
  t.same(p.notes, [
    'typha skipped: no node has role typha (add roles: [typha] to the node(s) running Typha to check it)',
    'etcd skipped: no node has role etcd (add roles: [etcd] to the node(s) running etcd to check it)',
    'apiserver skipped: no node has role apiserver (add roles: [apiserver] to the node(s) running kube-apiserver to check it)',
  ]);
  t.throws(() => planPair(inv, 'node1', 'node2', { checks: ['typha'] }), { code: 'EPLAN', message: /check typha needs a node with role typha/ });
});

t.test('pair plans', async (t) => {
  const inv = inventory(4, (i) => (i === 2 ? ['typha'] : i === 3 ? ['etcd'] : []), {
    endpoints: [{ name: 'vip', address: '198.18.0.100', port: null, checks: ['apiserver'] }],
  });
  const p = planPair(inv, 'node3', 'node1');
  t.same(p.checks, ['bgp', 'ipip', 'vxlan', 'wireguard', 'typha', 'mtu']);
  t.same(p.flows.map(key), [
    'bgp node1>node3', 'bgp node3>node1', 'ipip node1>node3', 'ipip node3>node1', 'vxlan node1>node3', 'vxlan node3>node1',
    'wireguard node1>node3', 'wireguard node3>node1', 'typha node1>node3', 'mtu node1>node3', 'mtu node3>node1',
  ], 'both directions, inventory order, role checks only towards holders, no endpoints');
  t.match(p.notes, [/etcd skipped: neither node1 nor node3 has role etcd/, /apiserver skipped: neither/]);
  assertIdx(t, p.flows);
  t.same(planPair(inv, 'node1', 'node3').flows, p.flows, 'argument order does not matter');
  // Explicit etcd with a holder elsewhere: nothing to do for this pair, but not an error.
  const e = planPair(inv, 'node1', 'node2', { checks: ['etcd', 'bgp'] });
  t.same(e.flows.map(key), ['bgp node1>node2', 'bgp node2>node1']);
  t.match(e.notes, [/etcd skipped/]);

  t.throws(() => planPair(inv, 'node1', 'node1'), { code: 'EPLAN', message: /two different nodes/ });
  t.throws(() => planPair(inv, 'node1', 'nod2'), { code: 'EPLAN', message: "unknown node 'nod2' (did you mean 'node2'?); nodes in inv.yaml: node1, node2, node3, node4" });
  t.throws(() => planPair(inv, 'zzz', 'node1'), { code: 'EPLAN', message: /^unknown node 'zzz'; nodes in inv\.yaml/ });
  t.throws(() => planPair(inv, 'vip', 'node1'), { message: /vip is an endpoint, which runs no responder/ });
  t.throws(() => planPair(inventory(30), 'x', 'node1'), { message: /node20, … \(30 in all\)/ });
  t.type((() => { try { planPair(inv, 'a', 'b'); } catch (e) { return e; } })(), PlanError);
});

t.test('idx limit per destination', async (t) => {
  // 8193 nodes, 8 checks: 8192 * 8 = 65536 flows into each node — fits exactly.
  t.equal(MAX_FLOWS_PER_DESTINATION, 65536);
  const fits = inventory(8193, () => ALL_ROLES);
  t.equal(countFlows(fits), 8193 * 8192 * 8);
  const over = inventory(8194, () => ALL_ROLES);
  t.throws(() => countFlows(over), { code: 'EPLAN', message: /node1 would receive 65544 probes, more than the 65536/ });
  t.throws(() => iterateFlows(over), { code: 'EPLAN' }, 'iterateFlows validates at the call');
  t.equal(countFlows(over, { checks: ['bgp'] }), 8194 * 8193, 'fewer checks fit');
});

t.test('1000 nodes, every role: ~8 million flows in one pass', async (t) => {
  const inv = inventory(1000, () => ALL_ROLES);
  // How fast this is belongs to bench/coordinator-scale.mjs, not to a timed assertion here.
  const p = planMesh(inv);
  t.equal(p.flows.length, 8 * 1000 * 999);
  const last = p.flows[p.flows.length - 1]!;
  t.same(last, { check: 'mtu', transport: 'ipip', from: 'node1000', to: 'node999', toAddress: '198.18.999.2', port: null, idx: 7991 });
  // Spot-check idx uniqueness on a few destinations without building per-node arrays of 7M entries.
  for (const dest of ['node1', 'node500', 'node1000']) {
    const seen = new Set<number>();
    for (const f of p.flows) if (f.to === dest) seen.add(f.idx);
    t.equal(seen.size, 7992, `${dest}: 7992 distinct idx`);
    t.equal(Math.max(...seen), 7991);
  }
});

t.test('every check id is plannable', async (t) => {
  const inv = inventory(2, () => ALL_ROLES);
  for (const c of CHECK_IDS) {
    const p = planMesh(inv, { checks: [c as CheckId] });
    t.equal(p.flows.length, 2, c);
  }
});
