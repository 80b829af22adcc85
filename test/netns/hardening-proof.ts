// Issue 12, forged proof: attacks that used to turn blocked flows into passes, each reproduced for real in a
// lab (an on-path re-wrapper on the router, a spoofed-SYN brute force of the TCP tag, an impostor on a control
// port, a captured request replayed to another node and after a restart). Every verdict must stay true.
import t, { type Test } from 'tap';
import { readFile } from 'node:fs/promises';
import { openSync, closeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { inNs, start } from '../../src/lab/sys.js';
import { LAUNCHER, type LabState } from '../../src/lab/lab.js';
import type { FlowResult } from '../../src/types.js';
import { labReport, needsRoot, runIn, withLab } from '../helpers/lab.js';

const helper = (name: string) => fileURLToPath(new URL(`../helpers/${name}`, import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const find = (results: FlowResult[], check: string, from: string, to: string) => results.find((r) => r.check === check && r.from === from && r.to === to);
const line = (r: FlowResult | undefined) => (r ? `${r.verdict}/${r.cause}: ${r.detail}` : 'missing');

/** Start a helper script inside namespace `ns`; killed (by its pid) at teardown; `done` resolves with its stdout. */
function spawnHelper(t: Test, ns: string, argv: string[]): { pid: number; done: Promise<string> } {
  const child = start(inNs(ns, [process.execPath, ...argv]), { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  const done = new Promise<string>((resolve) => child.on('close', () => resolve(out)));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await done;
  });
  return { pid: child.pid ?? -1, done };
}

t.test('an on-path re-wrapper (IP-in-IP re-sent as UDP to 51820, node1->node2 probes re-sent to node3) proves nothing', { skip: needsRoot }, async (t) => {
  const lab = await withLab(t, { nodes: 3, checks: ['ipip', 'wireguard'], faults: ['drop:ipip@node2:in', 'drop:ipip@path:node1>node3'] });
  const [n1, n2, n3] = lab.nodes.map((n) => n.address) as [string, string, string];
  const rewrap = spawnHelper(t, lab.router, [helper('rewrap.mjs'), n1, n2, n3, '60000', '2000']);
  await sleep(500);
  const { report } = await labReport(lab, ['mesh']);
  process.kill(rewrap.pid, 'SIGTERM');
  const stats = JSON.parse((await rewrap.done).trim()) as { captured: number; sent: number };
  t.ok(stats.captured >= 1 && stats.sent >= 2, `the attacker captured ${stats.captured} IP-in-IP probes and re-sent ${stats.sent} packets`);
  const to2 = find(report.results, 'ipip', 'node1', 'node2');
  const to3 = find(report.results, 'ipip', 'node1', 'node3');
  t.match(to2, { verdict: 'fail', cause: 'ingress-blocked' }, `ipip node1->node2 stays dropped by node2's INPUT: ${line(to2)}`);
  t.match(to3, { verdict: 'fail', cause: 'path-blocked' }, `ipip node1->node3 stays dropped in the path: ${line(to3)}`);
  t.ok((to2?.facts?.forged ?? 0) > 0, `node2 saw the re-wrapped probes and counted them forged (${to2?.facts?.forged})`);
  t.ok((to3?.facts?.forged ?? 0) > 0, `node3 saw the re-sent probes and counted them forged (${to3?.facts?.forged})`);
  t.match(find(report.results, 'wireguard', 'node1', 'node2'), { verdict: 'pass' }, 'the real WireGuard flow still passes');
  // node2's INPUT drops IP-in-IP from everyone: node3 -> node2 fails too, truly.
  const others = report.results.filter((r) => r !== to2 && r !== to3 && !(r.check === 'ipip' && r.to === 'node2'));
  t.match(find(report.results, 'ipip', 'node3', 'node2'), { verdict: 'fail', cause: 'ingress-blocked' });
  t.same(others.filter((r) => r.verdict !== 'pass').map((r) => `${r.check} ${r.from}->${r.to} ${line(r)}`), [], 'every other flow passes');
});

t.test('a bounded spoofed stamped-SYN brute force of the TCP tag cannot forge a witness for a REJECTed flow', { skip: needsRoot }, async (t) => {
  // The REJECTed SYN is answered at once; a VXLAN flow dropped in the path keeps each run's session open for
  // its 3 s timeout, so the brute force meets a live session, and the flood runs throughout.
  const lab = await withLab(t, { nodes: 2, checks: ['bgp', 'vxlan'], faults: ['reject:bgp@node2:in', 'drop:vxlan@path:node1>node2'] });
  const [n1, n2] = lab.nodes.map((n) => n.address) as [string, string];
  const flood = spawnHelper(t, lab.router, [helper('syn-flood.mjs'), n1, n2, '179', '1000000', '15000', '4']);
  await sleep(300);
  const runs: FlowResult[] = [];
  for (let i = 0; i < 2; i++) {
    const { report } = await labReport(lab, ['mesh', '--checks', 'bgp,vxlan', '--timeout', '3000', '--min-timeout', '3000']);
    runs.push(...report.results.filter((r) => r.check === 'bgp'));
  }
  const stats = JSON.parse((await flood.done).trim()) as { sent: number; pps: number };
  t.ok(stats.sent >= 10_000, `the attacker sent ${stats.sent} stamped SYNs (${stats.pps}/s) at node2:179`);
  // Never a pass, never witnessed: rejected — or, when the flood cost the responder packets, honestly unknown.
  for (const r of runs.filter((x) => x.from === 'node1')) {
    t.not(r.verdict, 'pass', `bgp node1->node2 is not a pass: ${line(r)}`);
    t.not(r.facts?.socketSeen, true, 'no guess was taken for its probe');
    t.ok(r.cause === 'rejected' || (r.cause === 'overloaded' && (r.facts?.shed ?? 0) > 0), `rejected, or unknown under load with the count: ${r.cause}`);
  }
  const forged = Math.max(...runs.filter((x) => x.from === 'node1').map((r) => r.facts?.forged ?? 0));
  t.ok(forged > 0, `node2 checked the guesses and counted them forged (${forged} in one run)`);
});

t.test('an impostor on a control port without the secret: its answers are refused, its flows unknown, never pass', { skip: needsRoot }, async (t) => {
  const lab = await withLab(t, { nodes: 3, checks: ['bgp', 'ipip', 'vxlan'], faults: ['drop:all@node3:in'] });
  const node3 = lab.nodes[2]!;
  process.kill(node3.pid!, 'SIGTERM');
  await sleep(1000);
  const impostor = spawnHelper(t, node3.ns, [helper('impostor.mjs'), node3.address, '5478', '60000']);
  await sleep(800);
  const { report } = await labReport(lab, ['mesh']);
  process.kill(impostor.pid, 'SIGTERM');
  const served = JSON.parse((await impostor.done).trim().split('\n').pop()!) as { requests: number };
  t.ok(served.requests >= 1, `the impostor answered ${served.requests} requests`);
  const involving3 = report.results.filter((r) => r.from === 'node3' || r.to === 'node3');
  t.ok(involving3.length > 0);
  for (const r of involving3) {
    // Flows into node3 are judged from their (genuine, signed) sender's side as far as it can be (issue 11):
    // TCP silence is a drop somewhere — true here, node3 drops everything. Datagrams and node3's own flows need
    // node3's witness or prober: unknown. Nothing involving node3 passes on the impostor's word.
    if (r.to === 'node3' && r.check === 'bgp') t.match(r, { verdict: 'fail', cause: 'blocked', where: null, facts: { responder: 'node3' } }, `${r.check} ${r.from}->${r.to}: ${line(r)}`);
    else t.match(r, { verdict: 'unknown', cause: 'responder-unreachable' }, `${r.check} ${r.from}->${r.to}: ${line(r)}`);
  }
  t.notOk(involving3.some((r) => r.verdict === 'pass'), 'no flow involving node3 passes');
  t.ok(involving3.some((r) => r.facts?.errorKind === 'unsigned'), 'the reason is data: the answers were not signed');
  for (const r of report.results.filter((x) => x.from !== 'node3' && x.to !== 'node3')) t.equal(r.verdict, 'pass', `${r.check} ${r.from}->${r.to} still passes`);
});

/** Start a responder for node `i` again (as the lab does), stopped by its pid at teardown. */
async function restartResponder(t: Test, lab: LabState, i: number): Promise<void> {
  const n = lab.nodes[i]!;
  process.kill(n.pid!, 'SIGTERM');
  await sleep(800);
  const fd = openSync(n.log, 'a');
  const child = start(inNs(n.ns, [process.execPath, LAUNCHER, 'responder', '--listen', n.address, '--secret-file', lab.secretFile, '--log-format', 'json']), { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  n.pid = child.pid ?? null;
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGTERM');
  });
  for (let k = 0; k < 50; k++) {
    const r = await runIn(inNs(lab.router, [process.execPath, helper('responder-info.mjs'), n.address, '5478', lab.secretFile]));
    if (r.code === 0) return;
    await sleep(200);
  }
  throw new Error('the restarted responder did not answer');
}

t.test('a captured signed request is refused by another node, and by its own node after a restart', { skip: needsRoot }, async (t) => {
  const lab = await withLab(t, { nodes: 2, checks: ['bgp'] });
  const [n1, n2] = lab.nodes.map((n) => n.address) as [string, string];
  const secret = (await readFile(lab.secretFile, 'utf8')).trim();
  const first = await runIn(inNs(lab.router, [process.execPath, helper('control-attack.mjs'), n1, '5478', secret, n2, n2]));
  t.equal(first.code, 0, first.stderr);
  const out = JSON.parse(first.stdout) as { open: number; otherNode: number; replay: number; captured: { headers: Record<string, string>; body: string } };
  t.equal(out.open, 201, 'the request was good for node1');
  t.equal(out.otherNode, 401, 'the same signed request sent to node2 is refused: it names node1');
  t.equal(out.replay, 401, 'replayed to node1 at once: refused (nonce seen)');
  await restartResponder(t, lab, 0);
  const replay = await runIn(
    inNs(lab.router, [
      process.execPath,
      '-e',
      `const h=${JSON.stringify(out.captured.headers)};const r=require('node:http').request({host:${JSON.stringify(n1)},port:5478,method:'POST',path:'/v1/sessions',headers:{...h,'content-type':'application/json'}},(res)=>{console.log(res.statusCode);res.resume()});r.on('error',(e)=>console.log(e.code));r.end(${JSON.stringify(out.captured.body)});`,
    ]),
  );
  t.equal(replay.stdout.trim(), '401', 'replayed within the 30 s window after a restart: refused (an earlier run of the responder)');
  const log = await readFile(lab.nodes[0]!.log, 'utf8');
  t.match(log, /earlier run of this responder/, 'the responder says why');
});
