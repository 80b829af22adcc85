// Shared by the hardening netns tests (issue 12): attack helpers' paths, the responder's RSS and session count,
// and a coordinator run in the background that the test's teardown kills by its pid.
import type { Test } from 'tap';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { inNs, start } from '../../src/lab/sys.js';
import { coordinatorArgv, type LabState } from '../../src/lab/lab.js';
import type { FlowResult } from '../../src/types.js';
import { labArgs, runIn } from './lab.js';

export const helper = (name: string) => fileURLToPath(new URL(`./${name}`, import.meta.url));
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const line = (r: FlowResult) => `${r.check} ${r.from}->${r.to} ${r.verdict}/${r.cause}: ${r.detail}`;

export async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

export async function info(lab: LabState, i: number): Promise<{ sessions?: number; error?: string }> {
  const r = await runIn(inNs(lab.router, [process.execPath, helper('responder-info.mjs'), lab.nodes[i]!.address, '5478', lab.secretFile]), 20_000);
  return JSON.parse(r.stdout.trim() || '{}') as { sessions?: number; error?: string };
}

/** A coordinator run started in the background (killed by its pid at teardown); `exit` resolves with code and stdout. */
export function coordinator(t: Test, lab: LabState, args: string[]): { child: ChildProcess; exit: Promise<{ code: number | null; signal: string | null; stdout: string; at: number }> } {
  const child = start(coordinatorArgv(lab, [...args, ...labArgs(lab)]), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.resume();
  const exit = new Promise<{ code: number | null; signal: string | null; stdout: string; at: number }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, at: performance.now() })),
  );
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exit;
  });
  return { child, exit };
}
