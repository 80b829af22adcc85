// Run a container the way a kubelet would run deploy/daemonset.yaml's pod on a node: podman arguments
// derived from the manifest itself (args, env and the downward API, security context, limits, the
// Secret volume), so the test fails when the manifest asks for something this does not carry over.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface PodOnNode {
  /** The pod spec (DaemonSet .spec.template.spec). */
  pod: Obj;
  /** The node's network namespace (hostNetwork: true). */
  netns: string;
  /** The node's address: the downward API's status.hostIP. */
  hostIP: string;
  name: string;
  image: string;
  /** Secret name -> key -> content, for the pod's secret volumes. */
  secrets: Record<string, Record<string, string>>;
  /** A directory for the secret volumes' files. */
  dir: string;
  /** OCI runtime (runc where crun cannot run). */
  runtime?: string;
  /** podman --ulimit values (podman's defaults may exceed this host's hard limits; a kubelet sets none). */
  ulimits?: string[];
}

/** Kubernetes' $(VAR) expansion in args: known variables are replaced, $$ is a literal $. */
export function expandK8sVars(s: string, env: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string | undefined) => (name === undefined ? '$' : (env[name] ?? m)));
}

/** "256Mi" -> "256m" (podman's --memory), "1Gi" -> "1024m". */
export function podmanMemory(q: string): string {
  const m = /^(\d+)(Mi|Gi)$/.exec(q);
  if (!m) throw new Error(`memory quantity ${q}: only Mi and Gi are carried over`);
  return `${Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1)}m`;
}

function only(obj: Obj, what: string, known: string[]): void {
  const extra = Object.keys(obj).filter((k) => !known.includes(k));
  if (extra.length) throw new Error(`${what}: ${extra.join(', ')} not carried over to podman; extend test/helpers/podman.ts`);
}

/** `podman run` argv (without "podman") for the pod's only container on a node. Writes the secret files. */
export async function podmanRunArgs(o: PodOnNode): Promise<string[]> {
  const { pod } = o;
  if (pod.hostNetwork !== true) throw new Error('the pod is not hostNetwork: it would not run in the node namespace');
  if (pod.containers.length !== 1) throw new Error('one container expected');
  const c = pod.containers[0] as Obj;
  only(c, 'container', ['name', 'image', 'imagePullPolicy', 'args', 'env', 'ports', 'securityContext', 'resources', 'volumeMounts', 'readinessProbe', 'livenessProbe']);
  const argv = ['run', '--detach', '--name', o.name, '--pull', 'never', '--network', `ns:/run/netns/${o.netns}`];
  if (o.runtime) argv.push('--runtime', o.runtime);
  for (const u of o.ulimits ?? []) argv.push('--ulimit', u);

  const env: Record<string, string> = {};
  for (const e of (c.env ?? []) as Obj[]) {
    if (typeof e.value === 'string') env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'status.hostIP') env[e.name] = o.hostIP;
    else throw new Error(`env ${e.name}: ${JSON.stringify(e.valueFrom)} not carried over`);
  }
  for (const [k, v] of Object.entries(env)) argv.push('--env', `${k}=${v}`);

  const sc = (c.securityContext ?? {}) as Obj;
  only(sc, 'securityContext', ['runAsUser', 'runAsGroup', 'runAsNonRoot', 'privileged', 'allowPrivilegeEscalation', 'readOnlyRootFilesystem', 'capabilities', 'seccompProfile']);
  if (sc.privileged) argv.push('--privileged');
  if (sc.runAsUser !== undefined) argv.push('--user', sc.runAsGroup !== undefined ? `${sc.runAsUser}:${sc.runAsGroup}` : String(sc.runAsUser));
  if (sc.allowPrivilegeEscalation === false) argv.push('--security-opt', 'no-new-privileges');
  // Kubernetes mounts no tmpfs over a read-only root: neither may podman.
  if (sc.readOnlyRootFilesystem) argv.push('--read-only', '--read-only-tmpfs=false');
  for (const cap of (sc.capabilities?.drop ?? []) as string[]) argv.push('--cap-drop', cap.toLowerCase());
  for (const cap of (sc.capabilities?.add ?? []) as string[]) argv.push('--cap-add', cap.toLowerCase());
  // seccompProfile RuntimeDefault is podman's default profile: nothing to add; anything else is not.
  if (sc.seccompProfile && sc.seccompProfile.type !== 'RuntimeDefault') throw new Error(`seccompProfile ${sc.seccompProfile.type} not carried over`);

  if (c.resources?.limits?.memory) argv.push('--memory', podmanMemory(c.resources.limits.memory as string));

  for (const m of (c.volumeMounts ?? []) as Obj[]) {
    const vol = ((pod.volumes ?? []) as Obj[]).find((v) => v.name === m.name);
    if (!vol?.secret) throw new Error(`volume ${m.name}: only secret volumes are carried over`);
    const data = o.secrets[vol.secret.secretName as string];
    if (!data) throw new Error(`no Secret ${vol.secret.secretName} given`);
    const dir = join(o.dir, m.name);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const items: Obj[] = (vol.secret.items as Obj[] | undefined) ?? Object.keys(data).map((key) => ({ key, path: key }));
    for (const it of items) {
      const value = data[it.key as string];
      if (value === undefined) throw new Error(`Secret ${vol.secret.secretName} has no key ${it.key}`);
      await writeFile(join(dir, it.path as string), value, { mode: (it.mode ?? vol.secret.defaultMode ?? 0o644) as number });
    }
    argv.push('--volume', `${dir}:${m.mountPath}${m.readOnly ? ':ro' : ''}`);
  }
  argv.push(o.image, ...((c.args ?? []) as string[]).map((a) => expandK8sVars(a, env)));
  return argv;
}

/** The port number an httpGet probe means (a number, or the name of one of the container's ports). */
export function probePort(c: Obj, port: number | string): number {
  if (typeof port === 'number') return port;
  const p = ((c.ports ?? []) as Obj[]).find((x) => x.name === port);
  if (!p) throw new Error(`probe port ${port}: no such container port`);
  return p.containerPort as number;
}

/** --ulimit values within this host's hard limits: open files at the hard limit, a modest process count. */
export async function hostUlimits(): Promise<string[]> {
  const limits = await readFile('/proc/self/limits', 'utf8');
  const hard = (what: string) => Number(new RegExp(`^${what}\\s+\\S+\\s+(\\d+)`, 'm').exec(limits)?.[1] ?? NaN);
  const nofile = hard('Max open files');
  const nproc = Math.min(4096, hard('Max processes'));
  return [`nofile=${nofile}:${nofile}`, `nproc=${nproc}:${nproc}`].filter((u) => !u.includes('NaN'));
}
