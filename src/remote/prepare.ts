// The remote part of a run, below the CLI: with --kubernetes the inventory is read from the cluster, with
// --ssh a responder is started on every node for the run (and stopped after); nodes left without one say why.
import { randomBytes } from 'node:crypto';
import pMap from 'p-map';
import { loadInventory, type Inventory } from '../coordinator/inventory.js';
import type { Plan } from '../coordinator/plan.js';
import { EXIT, UserError } from '../errors.js';
import type { FlowResult, Report } from '../types.js';
import { locateBundle } from './bundle.js';
import { DEFAULT_REMOTE_DIR, NodeStartError, startRemoteResponder, type RemoteResponder, type SshSettings } from './ssh.js';

/** What the user asked for (the CLI's --ssh*, --kubernetes, --context… flags, as plain data). */
export interface RemoteOptions {
  secretFile?: string;
  ssh?: boolean;
  sshUser?: string;
  sshKey?: string;
  sshPort?: number;
  sshOption?: string[];
  sshDir?: string;
  sshParallel?: number;
  kubernetes?: boolean;
  context?: string;
  namespace?: string;
  kubeconfig?: string;
}

export interface NodeError {
  node: string;
  message: string;
}

export interface PreparedRemote {
  /** Set with --kubernetes (discovered), and with --ssh (loaded to know where to start responders). */
  inventory?: Inventory;
  /** The plan, when hooks.plan built it (--kubernetes, --ssh): the run uses this one, not a second. */
  plan?: Plan;
  /** Set with --ssh: the fresh secret the responders were started with. */
  secret?: Buffer;
  /** Nodes without a responder for this run, and why. */
  nodeErrors: NodeError[];
  /** Stop what was started and remove what was copied. Safe to call more than once; never rejects. */
  cleanup(): Promise<void>;
}

export const DEFAULT_K8S_NAMESPACE = 'calico-nettest';

/** Combinations of options that cannot work: a UserError (exit 2) naming the flags, before anything starts. */
export function checkRemoteOptions(opts: RemoteOptions, inventoryPath: string | undefined): void {
  const usage = (m: string) => new UserError(m, EXIT.usage);
  if (opts.kubernetes && inventoryPath) throw usage('give either --inventory or --kubernetes, not both');
  if (!opts.kubernetes && !inventoryPath) throw usage('--inventory is required (or --kubernetes to discover the nodes from the cluster)');
  if (!opts.ssh && !opts.secretFile) throw usage('--secret-file is required: the secret the responders were started with (with --ssh, a fresh one is made for the run)');
  if (!opts.ssh && (opts.sshUser || opts.sshKey || opts.sshPort || opts.sshOption?.length)) throw usage('--ssh-user, --ssh-key, --ssh-port and --ssh-option need --ssh');
  if (!opts.kubernetes && opts.context) throw usage('--context needs --kubernetes');
}

export interface PrepareHooks {
  /** Builds the plan (throwing a usage error before anything is started); only its nodes get responders. */
  plan?: (inv: Inventory) => Plan;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

/**
 * Do the remote part of a run: discover the inventory (--kubernetes), start responders (--ssh). The
 * options are checked first (checkRemoteOptions: usage errors, exit 2, before anything is started).
 */
export async function prepareRemote(opts: RemoteOptions, inventoryPath: string | undefined, controlPort: number, hooks: PrepareHooks = {}): Promise<PreparedRemote> {
  checkRemoteOptions(opts, inventoryPath);
  const none: PreparedRemote = { nodeErrors: [], cleanup: async () => undefined };
  if (!opts.ssh && !opts.kubernetes) return none;

  const log = hooks.log ?? (() => undefined);
  const nodeErrors: NodeError[] = [];
  let inventory: Inventory;
  if (opts.kubernetes) {
    const { discoverInventory } = await import('../k8s/discovery.js');
    const found = await discoverInventory({ kubeconfig: opts.kubeconfig, context: opts.context, namespace: opts.namespace ?? DEFAULT_K8S_NAMESPACE, controlPort });
    inventory = found.inventory;
    for (const n of found.notes) log(`note: ${n}`);
    // With --ssh the DaemonSet is not needed: the run brings its own responders.
    if (!opts.ssh) nodeErrors.push(...found.nodesWithoutResponder);
  } else {
    inventory = await loadInventory(inventoryPath!, { controlPort });
  }
  const plan = hooks.plan?.(inventory);
  if (!opts.ssh) return { inventory, plan, nodeErrors, cleanup: none.cleanup };

  const bundle = await locateBundle();
  if (bundle.staleHint) log(`warning: ${bundle.staleHint}`);
  const involved = plan ? planNodes(plan) : new Set(inventory.nodes.map((n) => n.name));
  const targets = inventory.nodes.filter((n) => involved.has(n.name));
  const secret = Buffer.from(randomBytes(32).toString('base64'), 'utf8');
  const settings: SshSettings = {
    user: opts.sshUser,
    key: opts.sshKey,
    port: opts.sshPort,
    options: opts.sshOption,
    remoteDir: opts.sshDir ?? DEFAULT_REMOTE_DIR,
  };

  // Ctrl-C while the responders start: stop starting, take down what started, then report.
  const ac = new AbortController();
  const outer = hooks.signal;
  const onOuter = () => ac.abort();
  outer?.addEventListener('abort', onOuter, { once: true });
  const onSignal = () => {
    if (!ac.signal.aborted) log('interrupted: stopping the responders started so far');
    ac.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const started: RemoteResponder[] = [];
  log(`starting responders over SSH on ${targets.length} node${targets.length === 1 ? '' : 's'}`);
  try {
    await pMap(targets, async (n) => {
      if (ac.signal.aborted) return;
      try {
        started.push(
          await startRemoteResponder(
            { name: n.name, host: n.control.host, address: n.address, controlPort: n.control.port },
            { ssh: settings, bundle, secret, signal: ac.signal },
          ),
        );
      } catch (err) {
        const message = err instanceof NodeStartError ? err.message : (err as Error).message;
        if (!ac.signal.aborted) nodeErrors.push({ node: n.name, message });
      }
    }, { concurrency: opts.sshParallel ?? 32 });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    outer?.removeEventListener('abort', onOuter);
  }
  let cleaned: Promise<void> | undefined;
  const cleanup = () => (cleaned ??= Promise.all(started.map((r) => r.stop())).then(() => undefined));
  if (ac.signal.aborted) {
    await cleanup();
    throw new UserError('interrupted while starting the responders; every one started was stopped again', EXIT.interrupted);
  }
  for (const e of nodeErrors) log(`warning: ${e.node}: ${e.message}`);
  return { inventory, plan, secret, nodeErrors, cleanup };
}

/** Node names a plan sends probes from or to (responder-less endpoints excluded). */
export function planNodes(plan: Plan): Set<string> {
  const out = new Set<string>();
  for (const f of plan.flows) {
    out.add(f.from);
    if (!f.sourceOnly) out.add(f.to);
  }
  return out;
}

/**
 * Unknown flows of nodes that had no responder for this run say why: in their facts (errorKind
 * 'no-responder', the words of `nodeErrors` as error), which the diagnosis reads, and in their detail.
 * A diagnosis made before is dropped: it is made once, from these final results.
 */
export function explainNodeErrors(report: Report, nodeErrors: readonly NodeError[]): Report {
  if (nodeErrors.length === 0) return report;
  const why = new Map(nodeErrors.map((e) => [e.node, e.message]));
  const results = report.results.map((r): FlowResult => {
    if (r.verdict !== 'unknown') {
      // Judged from the sender's side because the destination had no responder: say why it had none.
      const node = r.facts?.responder;
      if (!node || !why.has(node)) return r;
      const error = why.get(node)!;
      return { ...r, detail: `${r.detail} No responder on ${node} for this run: ${error}${/[.?!]$/.test(error) ? '' : '.'}`, facts: { ...r.facts, errorKind: 'no-responder', error } };
    }
    const node = why.has(r.from) ? r.from : why.has(r.to) ? r.to : null;
    if (node === null) return r;
    const error = why.get(node)!;
    return { ...r, detail: `no responder on ${node} for this run: ${error}`, facts: { ...r.facts, responder: node, errorKind: 'no-responder', error } };
  });
  const { diagnosis: _stale, ...rest } = report;
  return { ...rest, results };
}
