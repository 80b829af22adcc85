// The pure join of recorded API responses (test/fixtures/k8s) into an inventory.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { buildInventory, nodeAddress, type ClusterSnapshot } from '../../src/k8s/discovery.js';

const fixture = (f: string) => JSON.parse(readFileSync(new URL(`../fixtures/k8s/${f}.json`, import.meta.url), 'utf8'));

function snapshot(over: Partial<ClusterSnapshot> = {}): ClusterSnapshot {
  return {
    nodes: fixture('nodes').items,
    etcdPods: fixture('etcd-pods').items,
    typhaPods: fixture('typha-pods').items,
    responderPods: fixture('responder-pods').items,
    apiserverEndpoints: fixture('endpoints-kubernetes'),
    ...over,
  };
}
const opts = { controlPort: 5478, namespace: 'calico-nettest', source: 'kubernetes:test' };

t.test('nodes, addresses and roles from a kubeadm-like cluster', async (t) => {
  const d = buildInventory(snapshot(), opts);
  const inv = d.inventory;
  t.equal(inv.file, 'kubernetes:test');
  t.same(
    inv.nodes.map((n) => [n.name, n.address, n.roles]),
    [
      ['cp-1', '10.0.0.10', ['apiserver', 'etcd']],
      ['worker-1', '10.0.0.11', ['typha']],
      ['worker-2', '10.0.0.12', ['typha']],
      ['worker-3', '10.0.0.13', []],
    ],
    'InternalIP; control-plane label -> apiserver; etcd static pod -> etcd; running Typha pods -> typha',
  );
  t.same(inv.endpoints, [], 'the apiserver endpoint is a node address: a role, not an endpoint');
  t.equal(inv.ports.apiserver, 6443);
  t.equal(inv.checks, null, 'the catalogue default');
  t.match(d.notes, [/edge-v6 has no usable IPv4 InternalIP or ExternalIP: left out/]);
});

t.test('responders: the DaemonSet pods give the control address; nodes without one are reported', async (t) => {
  const d = buildInventory(snapshot(), opts);
  const control = Object.fromEntries(d.inventory.nodes.map((n) => [n.name, `${n.control.host}:${n.control.port}`]));
  t.equal(control['cp-1'], '10.0.0.10:5478');
  t.equal(control['worker-1'], '10.0.0.11:5478');
  t.same(
    d.nodesWithoutResponder.map((e) => e.node),
    ['worker-2', 'worker-3'],
  );
  t.match(d.nodesWithoutResponder[0]!.message, /calico-nettest-h2v8n is not running \(CrashLoopBackOff\); see: kubectl -n calico-nettest describe pod calico-nettest-h2v8n/);
  t.match(d.nodesWithoutResponder[1]!.message, /no calico-nettest responder pod runs on it \(is the DaemonSet in namespace calico-nettest deployed, and does it tolerate this node's taints\?\)/);
  t.equal(control['worker-3'], '10.0.0.13:5478', 'still listed, at its node address');
});

t.test('a managed control plane: apiserver endpoints become responder-less endpoints with their port', async (t) => {
  const nodes = fixture('nodes').items.map((n: { metadata: { labels: Record<string, string> } }) => {
    const labels = { ...n.metadata.labels };
    delete labels['node-role.kubernetes.io/control-plane'];
    return { ...n, metadata: { ...n.metadata, labels } };
  });
  const d = buildInventory(snapshot({ nodes, etcdPods: [], apiserverEndpoints: fixture('endpoints-kubernetes-managed') }), opts);
  t.same(d.inventory.nodes.map((n) => n.roles).flat().filter((r) => r !== 'typha'), [], 'no node is a control plane');
  t.same(d.inventory.endpoints, [
    { name: 'apiserver-172-16-0-5', address: '172.16.0.5', port: 443, checks: ['apiserver'] },
    { name: 'apiserver-172-16-0-6', address: '172.16.0.6', port: 443, checks: ['apiserver'] },
  ]);
});

t.test('unreadable lists degrade: no endpoints, no pods', async (t) => {
  const d = buildInventory(snapshot({ etcdPods: [], typhaPods: [], responderPods: [], apiserverEndpoints: null }), opts);
  t.same(d.inventory.nodes.find((n) => n.name === 'cp-1')?.roles, ['apiserver'], 'the label still makes the apiserver');
  t.equal(d.nodesWithoutResponder.length, 4);
});

t.test('no usable node is a usage error', async (t) => {
  t.throws(() => buildInventory(snapshot({ nodes: [fixture('nodes').items[4]] }), opts), { message: /lists no node with a usable IPv4 address/, exitCode: 2 });
});

t.test('nodeAddress: InternalIP before ExternalIP, IPv4 only', async (t) => {
  t.equal(nodeAddress({ status: { addresses: [{ type: 'ExternalIP', address: '203.0.113.1' }, { type: 'InternalIP', address: '10.1.1.1' }] } }), '10.1.1.1');
  t.equal(nodeAddress({ status: { addresses: [{ type: 'InternalIP', address: 'fd00::1' }, { type: 'ExternalIP', address: '203.0.113.1' }] } }), '203.0.113.1');
  t.equal(nodeAddress({ status: { addresses: [{ type: 'Hostname', address: 'x' }] } }), null);
  t.equal(nodeAddress({}), null);
});
