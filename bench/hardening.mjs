#!/usr/bin/env node
// Hardening (issue 12): the attacks of the issue as figures, this build side by side with an earlier one.
//   node bench/hardening.mjs                 this build only
//   CALICO_NETTEST_BEFORE=DIR node bench/hardening.mjs   also DIR, a built tree of an earlier commit (dist/, bin/)
// Figures: responder peak RSS under unauthenticated big/slow bodies; time for a mesh to finish when one responder
// is SIGSTOPped 1 s in; time from Ctrl-C to exit with that frozen responder; whether a mesh runs after 17
// SIGKILLed coordinators. Every wait is bounded (a stalled run is killed at its limit and reported as "> limit").
// Needs root; builds its own labs (198.18.0.0/15) and removes them, also on failure.
import { fileURLToPath } from 'node:url';
import { fmt, inNs, main, onCleanup, procStatusKb, requireRoot, sleep, startCmd, stopCmd, table, emitSummary, uniqueBenchPrefix } from './lib.mjs';

const NAME = 'hardening';
requireRoot(NAME);
const HERE = fileURLToPath(new URL('..', import.meta.url));
const helper = (name) => fileURLToPath(new URL(`../test/helpers/${name}`, import.meta.url));
const FROZEN_LIMIT_MS = 120_000;
const CTRLC_LIMIT_MS = 60_000;

/** A coordinator run in the background; `exit` resolves with its code and the time it ended. */
function coordinator(lab, mod, args) {
  const child = startCmd(mod.coordinatorArgv(lab, [...args, '--inventory', lab.inventory, '--secret-file', lab.secretFile]));
  child.stdout.resume();
  child.stderr.resume();
  const exit = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, at: performance.now() })));
  return { child, exit };
}

/** Wait for `p` at most `ms`; null on timeout. */
const within = (p, ms) => Promise.race([p, sleep(ms).then(() => null)]);

async function withLab(mod, opts, fn) {
  const state = await mod.labUp({ prefix: uniqueBenchPrefix(), ...opts });
  const down = () => mod.labDown(state);
  onCleanup(down);
  try {
    return await fn(state);
  } finally {
    for (const n of state.nodes) {
      try {
        process.kill(n.pid, 'SIGCONT');
      } catch {
        /* gone */
      }
    }
    await down();
  }
}

async function bodyAttack(mod) {
  return withLab(mod, { nodes: 2, checks: ['bgp'] }, async (lab) => {
    const pid = lab.nodes[0].pid;
    const before = procStatusKb(pid, 'VmRSS') / 1024;
    const attack = startCmd(inNs(lab.router, [process.execPath, helper('body-attack.mjs'), lab.nodes[0].address, '5478', '120', '8000']));
    let out = '';
    attack.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    const done = new Promise((r) => attack.on('exit', r));
    let peak = before;
    while (attack.exitCode === null) {
      try {
        peak = Math.max(peak, procStatusKb(pid, 'VmRSS') / 1024);
      } catch {
        break; // the responder died (OOM?)
      }
      await sleep(100);
    }
    await done;
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    const r = JSON.parse(out.trim() || '{}');
    return { before, peak, alive, openAtEnd: r.openAtEnd };
  });
}

async function frozen(mod) {
  // One path drop keeps the run probing for ~12 s (4 tries x 3 s), so the freeze lands mid-stream, as in the issue.
  return withLab(mod, { nodes: 4, checks: ['bgp', 'ipip', 'vxlan'], faults: ['drop:bgp@path:node1>node2'] }, async (lab) => {
    const SLOW = ['--tries', '4', '--timeout', '3000', '--min-timeout', '3000'];
    const t0 = performance.now();
    const c = coordinator(lab, mod, ['mesh', '--format', 'json', ...SLOW]);
    await sleep(1000);
    process.kill(lab.nodes[3].pid, 'SIGSTOP');
    const end = await within(c.exit, FROZEN_LIMIT_MS);
    if (!end) await stopCmd(c.child, 'SIGKILL');
    const finish = end ? (end.at - t0) / 1000 : null;
    // Ctrl-C with the responder still frozen.
    process.kill(lab.nodes[3].pid, 'SIGCONT');
    await sleep(500);
    const c2 = coordinator(lab, mod, ['mesh', '--format', 'json', ...SLOW]);
    await sleep(2000);
    process.kill(lab.nodes[3].pid, 'SIGSTOP');
    await sleep(1500);
    const t1 = performance.now();
    process.kill(c2.child.pid, 'SIGINT');
    const end2 = await within(c2.exit, CTRLC_LIMIT_MS);
    if (!end2) await stopCmd(c2.child, 'SIGKILL');
    return { finish, ctrlC: end2 ? end2.at - t1 : null, ctrlCode: end2?.code ?? null };
  });
}

async function killed(mod) {
  return withLab(mod, { nodes: 3, checks: ['bgp', 'vxlan'], faults: ['drop:bgp@path:node1>node2'] }, async (lab) => {
    for (let i = 0; i < 17; i++) {
      const c = coordinator(lab, mod, ['mesh', '--format', 'json', '--checks', 'bgp,vxlan', '--tries', '10', '--timeout', '3000', '--min-timeout', '3000']);
      await sleep(4000); // its sessions are open by now (the dropped SYN is retried for 30 s)
      c.child.kill('SIGKILL');
      await c.exit;
    }
    const c = coordinator(lab, mod, ['mesh', '--format', 'json', '--checks', 'vxlan']);
    const end = await within(c.exit, 60_000);
    if (!end) await stopCmd(c.child, 'SIGKILL');
    return { code: end?.code ?? null };
  });
}

await main(NAME, async () => {
  const builds = [{ name: 'this build', root: HERE }];
  if (process.env.CALICO_NETTEST_BEFORE) builds.push({ name: `before (${process.env.CALICO_NETTEST_BEFORE})`, root: process.env.CALICO_NETTEST_BEFORE });
  const figures = [];
  for (const b of builds) {
    const mod = await import(new URL(`file://${b.root.replace(/\/?$/, '/')}dist/lab/lab.js`));
    console.log(`\n[${b.name}] body attack…`);
    const body = await bodyAttack(mod);
    console.log(`[${b.name}] frozen responder and Ctrl-C…`);
    const fr = await frozen(mod);
    console.log(`[${b.name}] 17 SIGKILLed coordinators…`);
    const k = await killed(mod);
    figures.push({ b, body, fr, k });
  }
  const col = (f) => [
    `${fmt(f.body.before)} → ${fmt(f.body.peak)} MB${f.body.alive ? '' : ' (responder died)'}, ${f.body.openAtEnd ?? '?'} left open`,
    f.fr.finish === null ? `> ${FROZEN_LIMIT_MS / 1000} s (killed)` : `${fmt(f.fr.finish, 1)} s`,
    f.fr.ctrlC === null ? `> ${CTRLC_LIMIT_MS / 1000} s (killed)` : `${fmt(f.fr.ctrlC)} ms (exit ${f.fr.ctrlCode})`,
    f.k.code === 0 ? 'runs (exit 0)' : `does not run (exit ${f.k.code ?? 'none: killed at 60 s'})`,
  ];
  const labels = ['responder RSS under 120 unauthenticated big/slow-body connections (8 s)', 'mesh of 4 (~12 s of probing) with one responder SIGSTOPped 1 s in: time to finish', 'Ctrl-C with that responder frozen: time to exit', 'a mesh after 17 SIGKILLed coordinators'];
  const cols = figures.map(col);
  console.log('');
  console.log(table(labels.map((l, i) => [l, ...cols.map((c) => c[i])]), ['figure', ...figures.map((f) => f.b.name)]));
  const ours = figures[0];
  emitSummary(NAME, [
    { figure: 'responder peak RSS, 120 unauthenticated body connections', ours: `${fmt(ours.body.peak)} MB`, alternative: figures[1] ? cols[1][0] : '', ratio: '', target: '< before + 64 MB', met: ours.body.peak - ours.body.before < 64 },
    { figure: 'mesh with a frozen responder: time to finish', ours: cols[0][1], alternative: figures[1] ? cols[1][1] : '', ratio: '', target: '< 60 s', met: ours.fr.finish !== null && ours.fr.finish < 60 },
    { figure: 'Ctrl-C with a frozen responder: time to exit', ours: cols[0][2], alternative: figures[1] ? cols[1][2] : '', ratio: '', target: '≤ 1 s', met: ours.fr.ctrlC !== null && ours.fr.ctrlC <= 1000 },
    { figure: 'mesh after 17 SIGKILLed coordinators', ours: cols[0][3], alternative: figures[1] ? cols[1][3] : '', ratio: '', target: 'runs', met: ours.k.code === 0 },
  ]);
});
