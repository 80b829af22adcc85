// Issue 12, denial of service without the secret, for real in a lab: unauthenticated big and slow bodies
// (responder memory stays bounded). Killed coordinators: hardening-kills.ts; floods, a frozen responder and
// Ctrl-C: hardening-stall.ts.
import t from 'tap';
import { inNs, start } from '../../src/lab/sys.js';
import { labReport, needsRoot, withLab } from '../helpers/lab.js';
import { helper, info, rssMb, sleep } from '../helpers/hardening.js';

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

