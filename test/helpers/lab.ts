// Test helpers for real labs: build one, run the CLI inside its router namespace, always tear down.
import { execFile } from 'node:child_process';
import type { Test } from 'tap';
import type { NativeBinding } from '../../src/native-types.js';
import { coordinatorArgv, labDown, labUp, type LabState, type LabUpOptions } from '../../src/lab/lab.js';
import { inNs, isRoot, run } from '../../src/lab/sys.js';
import { parseReport } from '../../src/report/json.js';
import type { Report } from '../../src/types.js';

/** tap `skip` option for tests that need root. */
export const needsRoot: string | false = isRoot() ? false : 'needs root (creates network namespaces, raw sockets and iptables rules); runs in CI';

export async function withLab(t: Test, opts: LabUpOptions): Promise<LabState> {
  const state = await labUp(opts);
  t.teardown(() => labDown(state));
  return state;
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export function runIn(argv: string[], timeoutMs = 120_000, env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  const [cmd, ...args] = argv;
  return new Promise((resolve) => {
    execFile(cmd!, args, { timeout: timeoutMs, maxBuffer: 64 << 20, env: { ...process.env, NO_COLOR: '1', ...env } }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Run calico-nettest inside the lab's router namespace. */
export function labCli(state: LabState, args: string[], timeoutMs?: number): Promise<CliRun> {
  return runIn(coordinatorArgv(state, args), timeoutMs);
}

export const labArgs = (state: LabState) => ['--inventory', state.inventory, '--secret-file', state.secretFile];

/** Run a command that writes a JSON report to stdout and parse it. */
export async function labReport(state: LabState, args: string[]): Promise<{ run: CliRun; report: Report }> {
  const run = await labCli(state, [...args, ...labArgs(state), '--format', 'json']);
  let report: Report;
  try {
    report = parseReport(run.stdout, 'stdout');
  } catch (err) {
    throw new Error(`no JSON report (exit ${run.code}): ${(err as Error).message}\nstderr: ${run.stderr}`);
  }
  return { run, report };
}

/** A native binding whose sockets all open inside network namespace `ns` (the test stays where it is). */
export const nativeIn = (native: NativeBinding, ns: string): NativeBinding => ({
  open: (o) => native.open({ ...o, netns: `/run/netns/${ns}` }),
  ifIndex: (n) => native.ifIndex(n),
  interfaceMtu: (a, n) => native.interfaceMtu(a, n ?? `/run/netns/${ns}`),
  routeMtu: (d, o) => native.routeMtu(d, { netns: `/run/netns/${ns}`, ...o }),
});

/** The namespace of a lab node by name. */
export const nodeNs = (lab: LabState, node: string): string => lab.nodes.find((n) => n.name === node)!.ns;
/** Run a command in a namespace (sysctl, ip, iptables): throws with its stderr when it fails. */
export const inNsRun = (netns: string, argv: string[]) => run(inNs(netns, argv));

/**
 * Reverse-path filtering for real (a lab's beforeResponders): `node` gets a second interface, side0, to the
 * router and a route to node1's subnet through it, with strict rp_filter on eth0 — node1's packets
 * arrive on eth0, but the way back to node1 is side0.
 */
export async function misrouteWithStrictRpFilter(s: LabState, node = 'node2'): Promise<void> {
  const n = nodeNs(s, node);
  await run(['ip', 'link', 'add', 'side0', 'netns', n, 'type', 'veth', 'peer', 'name', 'side2', 'netns', s.router]);
  await inNsRun(n, ['ip', 'addr', 'add', '198.19.99.2/30', 'dev', 'side0']);
  await inNsRun(n, ['ip', 'link', 'set', 'side0', 'up']);
  await inNsRun(s.router, ['ip', 'addr', 'add', '198.19.99.1/30', 'dev', 'side2']);
  await inNsRun(s.router, ['ip', 'link', 'set', 'side2', 'up']);
  await inNsRun(n, ['ip', 'route', 'add', '198.18.1.0/24', 'via', '198.19.99.1', 'dev', 'side0']);
  await inNsRun(n, ['sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=0']);
  await inNsRun(n, ['sysctl', '-qw', 'net.ipv4.conf.eth0.rp_filter=1']);
}
