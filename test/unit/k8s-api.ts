// Discovery through the real Kubernetes client against a local HTTP server replaying recorded
// responses (test/fixtures/k8s), with a kubeconfig in a temp dir: selectors, contexts, errors.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { stringify as toYaml } from 'yaml';
import { discoverInventory } from '../../src/k8s/discovery.js';
import { planMesh } from '../../src/coordinator/plan.js';
import { prepareRemote } from '../../src/remote/prepare.js';

const fixture = (f: string) => readFileSync(new URL(`../fixtures/k8s/${f}.json`, import.meta.url), 'utf8');

interface FakeApi {
  url: string;
  requests: string[];
  /** path (without query) -> [status, fixture name] overrides */
  override: Map<string, [number, string]>;
}

const ROUTES: Record<string, string> = {
  '/api/v1/nodes': 'nodes',
  '/api/v1/namespaces/kube-system/pods': 'etcd-pods',
  '/api/v1/pods': 'typha-pods',
  '/api/v1/namespaces/calico-nettest/pods': 'responder-pods',
  '/api/v1/namespaces/default/endpoints/kubernetes': 'endpoints-kubernetes',
};

async function fakeApi(t: Test): Promise<FakeApi> {
  const api: FakeApi = { url: '', requests: [], override: new Map() };
  const server: Server = createServer((req: IncomingMessage, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    api.requests.push(`${req.method} ${u.pathname}${u.search} auth=${req.headers.authorization ?? ''}`);
    const [status, name] = api.override.get(u.pathname) ?? [200, ROUTES[u.pathname]];
    res.writeHead(name ? status : 404, { 'content-type': 'application/json' });
    res.end(name ? fixture(name) : JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return api;
}

async function kubeconfig(t: Test, clusters: Array<{ name: string; server: string }>, current: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cnt-k8s-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'config');
  await writeFile(
    file,
    toYaml({
      apiVersion: 'v1',
      kind: 'Config',
      // A plain-http server: the client insists on insecure-skip-tls-verify for it.
      clusters: clusters.map((c) => ({ name: c.name, cluster: { server: c.server, 'insecure-skip-tls-verify': true } })),
      users: [{ name: 'alice', user: { token: 'test-token-alice' } }],
      contexts: clusters.map((c) => ({ name: c.name, context: { cluster: c.name, user: 'alice' } })),
      'current-context': current,
    }),
  );
  return file;
}

t.test('discovers the inventory with the right selectors and the kubeconfig\'s credentials', async (t) => {
  const api = await fakeApi(t);
  const kc = await kubeconfig(t, [{ name: 'lab', server: api.url }], 'lab');
  const d = await discoverInventory({ kubeconfig: kc, namespace: 'calico-nettest', controlPort: 5478 });
  t.equal(d.inventory.file, 'kubernetes:lab');
  t.same(d.inventory.nodes.map((n) => `${n.name} ${n.address} ${n.roles.join('+')}`), ['cp-1 10.0.0.10 apiserver+etcd', 'worker-1 10.0.0.11 typha', 'worker-2 10.0.0.12 typha', 'worker-3 10.0.0.13 ']);
  t.same(d.nodesWithoutResponder.map((e) => e.node), ['worker-2', 'worker-3']);
  const reqs = api.requests.sort();
  t.ok(reqs.every((r) => r.startsWith('GET ') && r.endsWith('auth=Bearer test-token-alice')), 'only GETs, with the token');
  const paths = reqs.map((r) => decodeURIComponent(r.split(' ')[1]!));
  t.ok(paths.includes('/api/v1/nodes'));
  t.ok(paths.includes('/api/v1/namespaces/kube-system/pods?labelSelector=component=etcd'));
  t.ok(paths.includes('/api/v1/pods?labelSelector=k8s-app=calico-typha'));
  t.ok(paths.includes('/api/v1/namespaces/calico-nettest/pods?labelSelector=app.kubernetes.io/name=calico-nettest'));
  t.ok(paths.includes('/api/v1/namespaces/default/endpoints/kubernetes'));
});

t.test('--context picks another cluster; an unknown one is a usage error', async (t) => {
  const good = await fakeApi(t);
  const kc = await kubeconfig(t, [{ name: 'prod', server: 'http://127.0.0.1:9' }, { name: 'lab', server: good.url }], 'prod');
  const d = await discoverInventory({ kubeconfig: kc, context: 'lab', namespace: 'calico-nettest', controlPort: 5478 });
  t.equal(d.inventory.nodes.length, 4);
  await t.rejects(discoverInventory({ kubeconfig: kc, context: 'nope', namespace: 'calico-nettest', controlPort: 5478 }), {
    message: /--context nope: no such context in the kubeconfig \(there are: prod, lab\)/,
    exitCode: 2,
  });
});

t.test('a forbidden pod list is a note, not a failure; forbidden nodes stop the run', async (t) => {
  const api = await fakeApi(t);
  const kc = await kubeconfig(t, [{ name: 'lab', server: api.url }], 'lab');
  api.override.set('/api/v1/pods', [403, 'status-forbidden']);
  const d = await discoverInventory({ kubeconfig: kc, namespace: 'calico-nettest', controlPort: 5478 });
  t.match(d.notes, [/your Kubernetes user may not list pods in all namespaces \(403 forbidden\): grant it the ClusterRole in deploy\/rbac\.yaml — Typha roles unknown/]);
  t.same(d.inventory.nodes.flatMap((n) => n.roles), ['apiserver', 'etcd']);
  api.override.set('/api/v1/nodes', [403, 'status-forbidden']);
  await t.rejects(discoverInventory({ kubeconfig: kc, namespace: 'calico-nettest', controlPort: 5478 }), { message: /may not list nodes \(403 forbidden\)/, exitCode: 3 });
});

t.test('an API server that is not there is said plainly', async (t) => {
  const api = await fakeApi(t);
  const kc = await kubeconfig(t, [{ name: 'gone', server: 'http://127.0.0.1:9' }], 'gone');
  void api;
  await t.rejects(discoverInventory({ kubeconfig: kc, namespace: 'calico-nettest', controlPort: 5478 }), {
    message: /kubernetes:gone: cannot reach the API server at http:\/\/127\.0\.0\.1:9 \(connection refused\)/,
    exitCode: 3,
  });
});

t.test('--kubernetes: the plan is built once, and the run is given that one', async (t) => {
  const api = await fakeApi(t);
  const kc = await kubeconfig(t, [{ name: 'lab', server: api.url }], 'lab');
  let built = 0;
  const remote = await prepareRemote({ kubernetes: true, kubeconfig: kc, secretFile: 's' }, undefined, 5478, {
    plan: (inv) => {
      built++;
      return planMesh(inv, {});
    },
  });
  t.equal(built, 1);
  t.ok(remote.plan && remote.plan.flows.length > 0, 'the plan comes back with the inventory');
  t.same(remote.nodeErrors.map((e) => e.node), ['worker-2', 'worker-3']);
  const none = await prepareRemote({ secretFile: 's' }, 'nodes.yaml', 5478, { plan: () => t.fail('no plan without --ssh/--kubernetes') as never });
  t.equal(none.plan, undefined, 'without them the run builds its plan itself');
});
