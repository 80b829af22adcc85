// Test helpers for real labs: build one, run the CLI inside its router namespace, always tear down.
import { execFile } from 'node:child_process';
import type { Test } from 'tap';
import type { NativeBinding } from '../../src/native-types.js';
import { coordinatorArgv, labDown, labUp, type LabState, type LabUpOptions } from '../../src/lab/lab.js';
import { isRoot } from '../../src/lab/sys.js';
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
