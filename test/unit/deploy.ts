// The Kubernetes manifests in deploy/: parsed, and held to what the responder needs and no more.
// (No cluster here: this checks their structure, not that a cluster accepts them.)
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { CONTROL_PLANE_LABELS, RESPONDER_SELECTOR } from '../../src/k8s/discovery.js';
import { DEFAULT_K8S_NAMESPACE } from '../../src/remote/prepare.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const deploy = (f: string) => fileURLToPath(new URL(`../../deploy/${f}`, import.meta.url));

async function docs(file: string): Promise<Obj[]> {
  const all = parseAllDocuments(await readFile(deploy(file), 'utf8'));
  if (!Array.isArray(all)) throw new Error(`${file}: empty`);
  for (const d of all) if (d.errors.length) throw new Error(`${file}: ${d.errors[0]!.message}`);
  return all.map((d) => d.toJS() as Obj).filter(Boolean);
}

t.test('daemonset.yaml: every node, host network, root with only the capabilities it needs', async (t) => {
  const [ds, ...rest] = await docs('daemonset.yaml');
  t.equal(rest.length, 0);
  t.equal(ds!.apiVersion, 'apps/v1');
  t.equal(ds!.kind, 'DaemonSet');
  t.equal(ds!.metadata.namespace, DEFAULT_K8S_NAMESPACE, 'the namespace --kubernetes looks in by default');
  const [key, value] = RESPONDER_SELECTOR.split('=');
  t.equal(ds!.spec.selector.matchLabels[key!], value, 'selector is the label the coordinator looks for');
  t.equal(ds!.spec.template.metadata.labels[key!], value, 'pods carry the label the coordinator looks for');
  const pod = ds!.spec.template.spec;
  t.equal(pod.hostNetwork, true, 'hostNetwork: probes leave from and arrive at the node itself');
  t.equal(pod.dnsPolicy, 'ClusterFirstWithHostNet');
  t.equal(pod.automountServiceAccountToken, false, 'the responder needs no API token');
  const tolerates = (taint: { key: string; effect: string }) =>
    (pod.tolerations as Obj[]).some((x) => (x.operator === 'Exists' && (x.key === undefined || x.key === taint.key)) && (x.effect === undefined || x.effect === taint.effect));
  for (const label of CONTROL_PLANE_LABELS) t.ok(tolerates({ key: label, effect: 'NoSchedule' }), `tolerates ${label}:NoSchedule`);
  t.ok(tolerates({ key: 'node.kubernetes.io/not-ready', effect: 'NoExecute' }), 'runs before Calico made the node ready');
  t.ok(tolerates({ key: 'node.kubernetes.io/network-unavailable', effect: 'NoSchedule' }), 'runs while the network is unavailable');

  t.equal(pod.containers.length, 1);
  const c = pod.containers[0];
  const sc = c.securityContext;
  t.equal(sc.runAsUser, 0, 'root: raw sockets');
  t.equal(sc.privileged, false, 'not privileged');
  t.equal(sc.allowPrivilegeEscalation, false);
  t.equal(sc.readOnlyRootFilesystem, true);
  t.same(sc.capabilities.drop, ['ALL']);
  t.same([...sc.capabilities.add].sort(), ['NET_ADMIN', 'NET_BIND_SERVICE', 'NET_RAW']);
  t.equal(sc.seccompProfile?.type, 'RuntimeDefault');

  t.equal(c.args[0], 'responder');
  const hostIp = (c.env as Obj[]).find((e) => e.valueFrom?.fieldRef?.fieldPath === 'status.hostIP');
  t.ok(hostIp, 'the node address from the downward API (status.hostIP)');
  t.ok((c.args as string[]).includes(`--listen=$(${hostIp!.name})`), '--listen is the downward-API address');
  const secretArg = (c.args as string[]).find((a) => a.startsWith('--secret-file='));
  t.ok(secretArg, '--secret-file given');
  const mount = (c.volumeMounts as Obj[]).find((m) => secretArg!.slice('--secret-file='.length).startsWith(`${m.mountPath}/`));
  t.ok(mount, 'the secret file lies in a mounted volume');
  t.equal(mount!.readOnly, true);
  const vol = (pod.volumes as Obj[]).find((v) => v.name === mount!.name);
  t.equal(vol!.secret.secretName, 'calico-nettest', 'mounted from the Secret');
  t.equal(vol!.secret.defaultMode, 0o400, 'readable by root only');
  const file = secretArg!.slice('--secret-file='.length).split('/').pop();
  t.ok((vol!.secret.items as Obj[]).some((i) => i.key === 'secret' && i.path === file), 'the Secret\'s key `secret` is the file the responder reads');
  const portArg = (c.args as string[]).find((a) => a.startsWith('--control-port='));
  t.equal(Number(portArg?.split('=')[1]), 5478, 'the default control port (what the coordinator expects)');
  t.equal((c.ports as Obj[])[0]!.containerPort, 5478);
  t.ok(c.resources?.limits?.memory, 'a memory limit');
});

t.test('secret.yaml: the Secret the DaemonSet mounts, with instructions and a placeholder', async (t) => {
  const text = await readFile(deploy('secret.yaml'), 'utf8');
  const [s] = await docs('secret.yaml');
  t.equal(s!.kind, 'Secret');
  t.equal(s!.metadata.name, 'calico-nettest');
  t.equal(s!.metadata.namespace, DEFAULT_K8S_NAMESPACE);
  t.ok(typeof s!.stringData.secret === 'string' && /REPLACE/.test(s!.stringData.secret), 'a placeholder, not a usable secret');
  t.match(text, /head -c 32 \/dev\/urandom \| base64/);
  t.match(text, /kubectl -n calico-nettest get secret calico-nettest -o jsonpath='\{\.data\.secret\}' \| base64 -d > secret/);
});

t.test('namespace.yaml: privileged Pod Security level (hostNetwork, NET_RAW, NET_ADMIN)', async (t) => {
  const [ns] = await docs('namespace.yaml');
  t.equal(ns!.kind, 'Namespace');
  t.equal(ns!.metadata.name, DEFAULT_K8S_NAMESPACE);
  t.equal(ns!.metadata.labels['pod-security.kubernetes.io/enforce'], 'privileged');
});

t.test('rbac.yaml: read-only discovery in the right scopes', async (t) => {
  const all = await docs('rbac.yaml');
  const byKind = (k: string) => all.filter((d) => d.kind === k);
  const cr = byKind('ClusterRole').find((r) => r.metadata.name === 'calico-nettest-discovery')!;
  t.ok(cr);
  const verbs = (rules: Obj[], resource: string) => new Set(rules.filter((r) => (r.resources as string[]).includes(resource)).flatMap((r) => r.verbs as string[]));
  t.same([...verbs(cr.rules, 'nodes')].sort(), ['get', 'list'], 'nodes: get, list (cluster)');
  t.same([...verbs(cr.rules, 'pods')].sort(), ['get', 'list'], 'pods: get, list (cluster: Typha lives in kube-system or calico-system)');
  for (const r of [...cr.rules, ...byKind('Role').flatMap((x) => x.rules)] as Obj[]) {
    t.same((r.verbs as string[]).filter((v) => !['get', 'list', 'watch'].includes(v)), [], `read-only: ${r.resources}`);
  }
  const role = byKind('Role').find((r) => r.metadata.name === 'calico-nettest-apiserver-endpoints')!;
  t.equal(role.metadata.namespace, 'default', 'the kubernetes Service lives in default');
  t.ok(verbs(role.rules, 'endpoints').has('get'));
  t.ok(verbs(role.rules, 'endpointslices').has('list'));
  const crb = byKind('ClusterRoleBinding')[0]!;
  t.equal(crb.roleRef.name, 'calico-nettest-discovery');
  const rb = byKind('RoleBinding')[0]!;
  t.equal(rb.metadata.namespace, 'default');
  t.equal(rb.roleRef.name, role.metadata.name);
  const responderSa = byKind('ServiceAccount').find((s) => s.metadata.name === 'calico-nettest-responder')!;
  t.equal(responderSa.automountServiceAccountToken, false, 'the responders get no token');
  const [ds] = await docs('daemonset.yaml');
  t.equal(ds!.spec.template.spec.serviceAccountName, responderSa.metadata.name);
});

t.test('Dockerfile: multi-stage, slim runtime with only what runs', async (t) => {
  const text = await readFile(deploy('Dockerfile'), 'utf8');
  const froms = [...text.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gim)].map((m) => m[1]);
  t.same(froms, ['node:20-bookworm', 'node:20-bookworm-slim']);
  t.match(text, /npm ci/);
  t.match(text, /npm prune --omit=dev/);
  for (const p of ['dist', 'bin', 'build/Release/calico_nettest.node', 'node_modules']) t.match(text, new RegExp(`COPY --from=build /src/${p.replace(/[.]/g, '\\.')}`), `runtime gets ${p}`);
  t.notMatch(text.split(/^FROM node:20-bookworm-slim/m)[1] ?? '', /COPY --from=build \/src\/(src|native|test)\b/, 'no sources in the runtime image');
  t.match(text, /ENTRYPOINT \["node", "\/app\/bin\/calico-nettest"\]/);
});
