// `--kubernetes`: the inventory read from the cluster instead of a file — nodes and their InternalIPs,
// roles (control-plane label → apiserver, etcd static pods → etcd, Typha pods → typha), the apiserver's
// endpoints, and where the calico-nettest DaemonSet's responders run. The join is pure (buildInventory,
// tested on recorded API responses); discoverInventory only fetches.
import { defaultPorts } from '../checks/catalogue.js';
import { EXIT, UserError } from '../errors.js';
import { ipv4Problem, type Inventory, type InventoryEndpoint, type InventoryNode } from '../coordinator/inventory.js';
import type { Role } from '../types.js';

// ---- the parts of API objects we read (structural, so fixtures are plain JSON) --------------------

export interface K8sMeta {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
}
export interface K8sNode {
  metadata?: K8sMeta;
  status?: { addresses?: Array<{ type?: string; address?: string }> };
}
export interface K8sPod {
  metadata?: K8sMeta;
  spec?: { nodeName?: string };
  status?: {
    phase?: string;
    hostIP?: string;
    containerStatuses?: Array<{ ready?: boolean; state?: { waiting?: { reason?: string }; terminated?: { reason?: string } } }>;
  };
}
export interface K8sEndpoints {
  subsets?: Array<{ addresses?: Array<{ ip?: string; nodeName?: string }>; ports?: Array<{ name?: string; port?: number; protocol?: string }> }>;
}

export interface ClusterSnapshot {
  nodes: K8sNode[];
  etcdPods: K8sPod[];
  typhaPods: K8sPod[];
  responderPods: K8sPod[];
  /** The `kubernetes` Service's endpoints in `default`; null when they could not be read. */
  apiserverEndpoints: K8sEndpoints | null;
}

export interface Discovery {
  inventory: Inventory;
  /** Nodes listed, but without a running responder pod: their flows will be unknown. */
  nodesWithoutResponder: Array<{ node: string; message: string }>;
  /** Things worth telling the user (a node skipped, a list that could not be read). */
  notes: string[];
}

/** The cluster could not be read, or lists nothing usable: exit 2 (kubeconfig, context) or 3 (the API). */
export class ClusterError extends UserError {
  constructor(message: string, exitCode: number = EXIT.usage) {
    super(message, exitCode);
    this.name = 'ClusterError';
  }
}

// ---- labels and selectors (documented in docs/remote.md; deploy/ uses the same) --------------------

export const CONTROL_PLANE_LABELS = ['node-role.kubernetes.io/control-plane', 'node-role.kubernetes.io/master'] as const;
export const ETCD_SELECTOR = { namespace: 'kube-system', labelSelector: 'component=etcd' } as const;
export const TYPHA_SELECTOR = 'k8s-app=calico-typha';
export const RESPONDER_SELECTOR = 'app.kubernetes.io/name=calico-nettest';

export interface BuildOptions {
  controlPort: number;
  /** Namespace of the DaemonSet, for messages. */
  namespace: string;
  /** Names the inventory in messages, e.g. "kubernetes:prod". */
  source: string;
}

/** Join the API objects into an Inventory. Pure. */
export function buildInventory(snap: ClusterSnapshot, o: BuildOptions): Discovery {
  const notes: string[] = [];
  const nodes: InventoryNode[] = [];
  const seenAddress = new Map<string, string>();
  const etcdOn = nodesRunning(snap.etcdPods);
  const typhaOn = nodesRunning(snap.typhaPods);

  for (const n of snap.nodes) {
    const name = n.metadata?.name;
    if (!name) continue;
    const address = nodeAddress(n);
    if (!address) {
      notes.push(`node ${name} has no usable IPv4 InternalIP or ExternalIP: left out`);
      continue;
    }
    const other = seenAddress.get(address);
    if (other) {
      notes.push(`node ${name} has the same address as ${other} (${address}): left out`);
      continue;
    }
    seenAddress.set(address, name);
    const labels = n.metadata?.labels ?? {};
    const roles: Role[] = [];
    if (CONTROL_PLANE_LABELS.some((l) => l in labels)) roles.push('apiserver');
    if (etcdOn.has(name)) roles.push('etcd');
    if (typhaOn.has(name)) roles.push('typha');
    nodes.push({ name, address, roles, control: { host: address, port: o.controlPort } });
  }

  // Responders: the DaemonSet's pods, by node. A pod's hostIP is where its control port listens.
  const nodesWithoutResponder: Discovery['nodesWithoutResponder'] = [];
  const podsByNode = new Map<string, K8sPod[]>();
  for (const p of snap.responderPods) {
    const on = p.spec?.nodeName;
    if (!on) continue;
    const list = podsByNode.get(on) ?? [];
    list.push(p);
    podsByNode.set(on, list);
  }
  for (const node of nodes) {
    const pods = podsByNode.get(node.name) ?? [];
    const running = pods.find(isServing);
    if (running) {
      const hostIP = running.status?.hostIP;
      if (hostIP && !ipv4Problem(hostIP)) node.control = { host: hostIP, port: o.controlPort };
      continue;
    }
    const first = pods[0];
    const message = first
      ? `its calico-nettest responder pod ${first.metadata?.name ?? ''} is not running (${podState(first)}); see: kubectl -n ${o.namespace} describe pod ${first.metadata?.name ?? ''}`
      : `no calico-nettest responder pod runs on it (is the DaemonSet in namespace ${o.namespace} deployed, and does it tolerate this node's taints?)`;
    nodesWithoutResponder.push({ node: node.name, message });
  }

  // The apiserver as clients reach it: the `kubernetes` Service's endpoints. Node addresses become the
  // apiserver role; others (a managed control plane, a VIP) become responder-less endpoints.
  const ports = defaultPorts();
  const endpoints: InventoryEndpoint[] = [];
  if (snap.apiserverEndpoints) {
    const byAddress = new Map(nodes.map((n) => [n.address, n]));
    for (const subset of snap.apiserverEndpoints.subsets ?? []) {
      const port = (subset.ports ?? []).find((p) => p.name === 'https')?.port ?? subset.ports?.[0]?.port ?? null;
      for (const a of subset.addresses ?? []) {
        const ip = a.ip;
        if (!ip || ipv4Problem(ip)) continue;
        const node = byAddress.get(ip);
        if (node) {
          if (!node.roles.includes('apiserver')) node.roles.push('apiserver');
          if (port !== null) ports.apiserver = port;
        } else if (!endpoints.some((e) => e.address === ip)) {
          endpoints.push({ name: `apiserver-${ip.replace(/\./g, '-')}`, address: ip, port, checks: ['apiserver'] });
        }
      }
    }
  }
  if (nodes.length === 0) throw new ClusterError(`${o.source}: the cluster lists no node with a usable IPv4 address${notes.length ? ` (${notes.join('; ')})` : ''}`, EXIT.usage);
  return { inventory: { file: o.source, nodes, endpoints, checks: null, ports }, nodesWithoutResponder, notes };
}

/** InternalIP (IPv4) first, then ExternalIP. */
export function nodeAddress(n: K8sNode): string | null {
  const addrs = n.status?.addresses ?? [];
  for (const type of ['InternalIP', 'ExternalIP']) {
    const a = addrs.find((x) => x.type === type && x.address && !ipv4Problem(x.address));
    if (a?.address) return a.address;
  }
  return null;
}

/** Running, and no container waiting or terminated (a crash-looping pod's phase stays Running). */
function isServing(p: K8sPod): boolean {
  return p.status?.phase === 'Running' && !(p.status.containerStatuses ?? []).some((c) => c.state?.waiting || c.state?.terminated);
}

function nodesRunning(pods: readonly K8sPod[]): Set<string> {
  return new Set(pods.filter((p) => p.status?.phase === 'Running' && p.spec?.nodeName).map((p) => p.spec!.nodeName!));
}

function podState(p: K8sPod): string {
  const c = p.status?.containerStatuses?.[0];
  return c?.state?.waiting?.reason ?? c?.state?.terminated?.reason ?? p.status?.phase ?? 'unknown state';
}

// ---- fetching --------------------------------------------------------------------------------------

export interface DiscoverOptions {
  /** A kubeconfig file; default KUBECONFIG, else ~/.kube/config (or in-cluster). */
  kubeconfig?: string;
  context?: string;
  namespace: string;
  controlPort: number;
}

/** Read the cluster and build the inventory. Cluster errors are ClusterErrors in plain words. */
export async function discoverInventory(o: DiscoverOptions): Promise<Discovery> {
  // Loaded here, not at the top: the single-file bundle run on nodes leaves the client out.
  const { CoreV1Api, KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  try {
    if (o.kubeconfig) kc.loadFromFile(o.kubeconfig);
    else kc.loadFromDefault();
  } catch (err) {
    throw new ClusterError(`cannot read the kubeconfig${o.kubeconfig ? ` ${o.kubeconfig}` : ''}: ${(err as Error).message}`);
  }
  if (o.context) {
    const names = kc.getContexts().map((c) => c.name);
    if (!names.includes(o.context)) throw new ClusterError(`--context ${o.context}: no such context in the kubeconfig (there are: ${names.join(', ') || 'none'})`);
    kc.setCurrentContext(o.context);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new ClusterError('no Kubernetes cluster configured: set KUBECONFIG, pass --kubeconfig, or create ~/.kube/config (kubectl config view)');
  const server = cluster.server;
  const source = `kubernetes:${kc.getCurrentContext() || server}`;
  const core = kc.makeApiClient(CoreV1Api);
  const notes: string[] = [];

  const nodes = await core.listNode().catch((err: unknown) => {
    throw new ClusterError(`${source}: ${apiProblem(err, 'list nodes', server)}`, EXIT.cannotRun);
  });
  const optional = async <T>(what: string, effect: string, p: Promise<T>, empty: T): Promise<T> => {
    try {
      return await p;
    } catch (err) {
      notes.push(`${apiProblem(err, what, server)} — ${effect}`);
      return empty;
    }
  };
  const pods = (p: Promise<{ items: unknown[] }>) => p.then((l) => l.items as K8sPod[]);
  const [etcd, typha, responders, eps] = await Promise.all([
    optional('list pods in kube-system', 'etcd roles unknown', pods(core.listNamespacedPod({ namespace: ETCD_SELECTOR.namespace, labelSelector: ETCD_SELECTOR.labelSelector })), []),
    optional('list pods in all namespaces', 'Typha roles unknown', pods(core.listPodForAllNamespaces({ labelSelector: TYPHA_SELECTOR })), []),
    optional(`list pods in ${o.namespace}`, 'responder pods unknown (node addresses used as control addresses)', pods(core.listNamespacedPod({ namespace: o.namespace, labelSelector: RESPONDER_SELECTOR })), []),
    optional('read the endpoints of the kubernetes Service', 'the apiserver is known only by the control-plane label', core.readNamespacedEndpoints({ name: 'kubernetes', namespace: 'default' }) as Promise<K8sEndpoints>, null),
  ]);
  const found = buildInventory(
    {
      nodes: nodes.items as K8sNode[],
      etcdPods: etcd,
      typhaPods: typha,
      responderPods: responders,
      apiserverEndpoints: eps,
    },
    { controlPort: o.controlPort, namespace: o.namespace, source },
  );
  return { ...found, notes: [...notes, ...found.notes] };
}

/** An API or connection error in plain words. */
export function apiProblem(err: unknown, what: string, server: string): string {
  const e = err as { code?: unknown; message?: string; cause?: { code?: string; message?: string } };
  if (typeof e.code === 'number') {
    if (e.code === 401) return `the API server at ${server} did not accept your credentials (401) when asked to ${what}: log in again, or check the kubeconfig's user`;
    if (e.code === 403) return `your Kubernetes user may not ${what} (403 forbidden): grant it the ClusterRole in deploy/rbac.yaml`;
    if (e.code === 404) return `the API server has nothing to ${what} (404)`;
    return `the API server answered ${e.code} when asked to ${what}`;
  }
  const code = typeof e.code === 'string' ? e.code : e.cause?.code;
  const msg = e.cause?.message ?? e.message ?? String(err);
  if (code === 'ECONNREFUSED') return `cannot reach the API server at ${server} (connection refused)`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `cannot resolve the API server's host name in ${server}`;
  if (code === 'ETIMEDOUT' || code === 'ECONNRESET') return `cannot reach the API server at ${server} (${code})`;
  if (typeof code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) return `the API server's certificate at ${server} is not trusted (${code}): check certificate-authority-data in the kubeconfig`;
  return `cannot ${what} at ${server}: ${msg}`;
}
