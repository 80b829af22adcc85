// Issue 12, denial of service without the secret, for real in a lab: unauthenticated big and slow bodies
// (responder memory stays bounded). Killed coordinators: hardening-kills.ts; floods, a frozen responder and
// Ctrl-C: hardening-stall.ts.
import t, { type Test } from 'tap';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { inNs, start } from '../../src/lab/sys.js';
import { coordinatorArgv, type LabState } from '../../src/lab/lab.js';
import type { FlowResult } from '../../src/types.js';
import { labArgs, labCli, labReport, needsRoot, runIn, withLab } from '../helpers/lab.js';

const helper = (name: string) => fileURLToPath(new URL(`../helpers/${name}`, import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const line = (r: FlowResult) => `${r.check} ${r.from}->${r.to} ${r.verdict}/${r.cause}: ${r.detail}`;

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

async function info(lab: LabState, i: number): Promise<{ sessions?: number; error?: string }> {
  const r = await runIn(inNs(lab.router, [process.execPath, helper('responder-info.mjs'), lab.nodes[i]!.address, '5478', lab.secretFile]), 20_000);
  return JSON.parse(r.stdout.trim() || '{}') as { sessions?: number; error?: string };
}

/** A coordinator run started in the background (killed by its pid at teardown); `exit` resolves with code and stdout. */
function coordinator(t: Test, lab: LabState, args: string[]): { child: ChildProcess; exit: Promise<{ code: number | null; signal: string | null; stdout: string; at: number }> } {
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

t.test('unauthenticated big and slow bodies: the responder reads no body, holds no connection, stays small', { skip: needsRoot }, async (t) => {
  const lab = await withLab(t, { nodes: 2, checks: ['bgp'] });
  const pid = lab.nodes[0]!.pid!;
  const before = await rssMb(pid);
  const attack = start(inNs(lab.router, [process.execPath, helper('body-attack.mjs'), lab.nodes[0]!.address, '5478', '600', '9000']), { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  attack.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  const done = new Promise((r) => attack.on('close', r));
  t.teardown(() => {
    if (attack.exitCode === null) attack.kill('SIGKILL');
  });
  let peak = before;
  while (attack.exitCode === null) {
    peak = Math.max(peak, await rssMb(pid));
    await sleep(200);
  }
  await done;
  const r = JSON.parse(out.trim()) as { opened: number; closedByServer: number; openAtEnd: number };
  t.ok(r.opened >= 100, `the attacker opened ${r.opened} connections`);
  t.equal(r.openAtEnd, 0, `the responder closed every one within 9 s (${r.closedByServer} closed by it)`);
  t.ok(peak - before < 64, `RSS ${before.toFixed(0)} MB before, ${peak.toFixed(0)} MB at the peak of the attack (before this fix: 1 GB at 120 connections)`);
  t.equal(typeof (await info(lab, 0)).sessions, 'number', 'the responder still answers');
  const { run } = await labReport(lab, ['pair', 'node1', 'node2']);
  t.equal(run.code, 0, 'and a pair still runs');
});

