// Options of mesh/pair/verify that reach the nodes for the user: --ssh starts the responders over SSH
// for the run (and removes them after), --kubernetes discovers the inventory from the cluster.
import { randomBytes } from 'node:crypto';
import { Option, type Command } from 'commander';
import { loadInventory, type Inventory } from '../coordinator/inventory.js';
import type { Plan } from '../coordinator/plan.js';
import { locateBundle } from '../remote/bundle.js';
import { DEFAULT_REMOTE_DIR, NodeStartError, startRemoteResponder, type RemoteResponder, type SshSettings } from '../remote/ssh.js';
import type { FlowResult, Report } from '../types.js';
import { CliError, EXIT, parseIntOption } from './common.js';

export interface RemoteCliOptions {
  inventory?: string;
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
  quiet?: boolean;
}

export interface NodeError {
  node: string;
  message: string;
}

export interface PreparedRemote {
  /** Set with --kubernetes (discovered), and with --ssh (loaded to know where to start responders). */
  inventory?: Inventory;
  /** Set with --ssh: the fresh secret the responders were started with. */
  secret?: Buffer;
  /** Nodes without a responder for this run, and why. */
  nodeErrors: NodeError[];
  /** Stop what was started and remove what was copied. Safe to call more than once; never rejects. */
  cleanup(): Promise<void>;
}

export const DEFAULT_K8S_NAMESPACE = 'calico-nettest';

export function addRemoteOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--ssh', 'start a responder on every node over SSH for this run (fresh secret; stopped and removed afterwards); needs `npm run bundle`').env('CALICO_NETTEST_SSH'))
    .addOption(new Option('--ssh-user <user>', 'SSH login (root, or a user with passwordless sudo); default: your ssh config').env('CALICO_NETTEST_SSH_USER'))
    .addOption(new Option('--ssh-key <file>', 'SSH private key; default: your ssh config and agent').env('CALICO_NETTEST_SSH_KEY'))
    .addOption(new Option('--ssh-port <n>', 'SSH port; default: your ssh config, else 22').env('CALICO_NETTEST_SSH_PORT').argParser(parseIntOption('--ssh-port', 1, 65535)))
    .addOption(
      new Option('--ssh-option <opt>', 'extra ssh -o option, repeatable (e.g. StrictHostKeyChecking=accept-new, UserKnownHostsFile=FILE, ProxyJump=HOST)')
        .env('CALICO_NETTEST_SSH_OPTION')
        .argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]),
    )
    .addOption(new Option('--ssh-dir <dir>', 'directory on the nodes for the copied build (not a noexec mount)').env('CALICO_NETTEST_SSH_DIR').default(DEFAULT_REMOTE_DIR))
    .addOption(new Option('--ssh-parallel <n>', 'nodes set up over SSH at once').argParser(parseIntOption('--ssh-parallel', 1, 1024)).default(32))
    .addOption(new Option('--kubernetes', 'discover nodes, roles, the apiserver and the responder DaemonSet from the cluster (instead of --inventory)').env('CALICO_NETTEST_KUBERNETES'))
    .addOption(new Option('--kubeconfig <file>', 'kubeconfig file; default: KUBECONFIG, else ~/.kube/config'))
    .addOption(new Option('--context <name>', 'kubeconfig context; default: the current one').env('CALICO_NETTEST_CONTEXT'))
    .addOption(new Option('--namespace <ns>', 'namespace of the calico-nettest DaemonSet').env('CALICO_NETTEST_NAMESPACE').default(DEFAULT_K8S_NAMESPACE));
}

export interface PrepareHooks {
  /** Builds the plan (throwing a usage error before anything is started); only its nodes get responders. */
  plan?: (inv: Inventory) => Plan;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

/**
 * Validate the remote options and do the remote part: discover the inventory (--kubernetes), start
 * responders (--ssh). Usage errors are CliErrors (exit 2) thrown before anything is started.
 */
export async function prepareRemote(opts: RemoteCliOptions, inventoryPath: string | undefined, controlPort: number, hooks: PrepareHooks = {}): Promise<PreparedRemote> {
  const none: PreparedRemote = { nodeErrors: [], cleanup: async () => undefined };
  if (opts.kubernetes && inventoryPath) throw new CliError('give either --inventory or --kubernetes, not both');
  if (!opts.kubernetes && !inventoryPath) throw new CliError('--inventory is required (or --kubernetes to discover the nodes from the cluster)');
  if (!opts.ssh && !opts.secretFile) throw new CliError('--secret-file is required: the secret the responders were started with (with --ssh, a fresh one is made for the run)');
  if (!opts.ssh && (opts.sshUser || opts.sshKey || opts.sshPort || opts.sshOption?.length)) throw new CliError('--ssh-user, --ssh-key, --ssh-port and --ssh-option need --ssh');
  if (!opts.kubernetes && opts.context) throw new CliError('--context needs --kubernetes');
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
  if (!opts.ssh) return { inventory, nodeErrors, cleanup: none.cleanup };

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
    await eachLimit(targets, opts.sshParallel ?? 32, async (n) => {
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
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    outer?.removeEventListener('abort', onOuter);
  }
  let cleaned: Promise<void> | undefined;
  const cleanup = () => (cleaned ??= Promise.all(started.map((r) => r.stop())).then(() => undefined));
  if (ac.signal.aborted) {
    await cleanup();
    throw new CliError('interrupted while starting the responders; every one started was stopped again', EXIT.interrupted);
  }
  for (const e of nodeErrors) log(`warning: ${e.node}: ${e.message}`);
  return { inventory, secret, nodeErrors, cleanup };
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

/** Unknown flows of nodes that had no responder for this run say why, in the words of `nodeErrors`. */
export function explainNodeErrors(report: Report, nodeErrors: readonly NodeError[]): Report {
  if (nodeErrors.length === 0) return report;
  const why = new Map(nodeErrors.map((e) => [e.node, e.message]));
  const results = report.results.map((r): FlowResult => {
    if (r.verdict !== 'unknown') return r;
    const node = why.has(r.from) ? r.from : why.has(r.to) ? r.to : null;
    if (node === null) return r;
    return { ...r, detail: `no responder on ${node} for this run: ${why.get(node)}` };
  });
  return { ...report, results };
}

async function eachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
