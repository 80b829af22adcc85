#!/usr/bin/env node
// Issue 15: what --explain adds. (1) `pair` on a 2-node lab with three host-side failures (ingress drop,
// REJECT with tcp-reset, egress drop): --no-explain vs --explain, and where the explain time goes;
// (2) a clean 3-node `mesh`: without vs with --explain (target: nothing: nothing to explain, nothing contacted).
// Needs root. Bounded: every command has a timeout; RUNS repetitions (median reported).
import { emitSummary, fmt, main, requireRoot, runCmd, table, withLabUp, labDownNow } from './lib.mjs';

const NAME = 'explain';
requireRoot(NAME);
const RUNS = Number(process.env.RUNS ?? 5);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timed(lab, state, args) {
  const r = await runCmd(lab.coordinatorArgv(state, [...args, '--format', 'json', '--inventory', state.inventory, '--secret-file', state.secretFile]), { timeoutMs: 120_000 });
  let rep = null;
  try {
    rep = JSON.parse(r.stdout);
  } catch {
    throw new Error(`${args[0]} gave no report (exit ${r.code}): ${r.stderr.slice(0, 500)}`);
  }
  return { ms: r.ms, rep };
}

await main(NAME, async () => {
  const lab = await import('../dist/lab/lab.js');
  const rows = [];
  const summary = [];

  const faults = ['drop:bgp@node2:in', 'reject:typha@node2:in', 'drop:vxlan@node1:out'];
  const { state: two } = await withLabUp({ nodes: 2, faults });
  const off = [];
  const on = [];
  let named = '';
  for (let i = 0; i < RUNS; i++) {
    off.push((await timed(lab, two, ['pair', 'node1', 'node2', '--no-explain'])).ms);
    const r = await timed(lab, two, ['pair', 'node1', 'node2']);
    on.push(r.ms);
    named = `${r.rep.explain?.named ?? 0}/${r.rep.explain?.flows ?? 0} named (${r.rep.explain?.hosts.map((h) => `${h.node}: ${h.method}`).join(', ')})`;
    if (i === 0) for (const x of r.rep.results.filter((x) => x.rule)) console.log(`  ${x.check} ${x.from}->${x.to} ${x.cause}: ${x.rule.text} [${x.rule.method}]`);
  }
  await labDownNow(two);
  const added = median(on) - median(off);
  rows.push(['pair, 3 host-side failures', fmt(median(off)), fmt(median(on)), fmt(added), named]);
  summary.push({ figure: 'what --explain adds to pair (3 failing flows)', ours: `+${fmt(added)} ms (${fmt(median(on))} vs ${fmt(median(off))} ms)`, alternative: 'operator reading iptables -S / nft list ruleset', ratio: '', target: '< 1000 ms', met: added < 1000 });

  const { state: three } = await withLabUp({ nodes: 3 });
  const moff = [];
  const mon = [];
  let explained = null;
  for (let i = 0; i < RUNS; i++) {
    moff.push((await timed(lab, three, ['mesh'])).ms);
    const r = await timed(lab, three, ['mesh', '--explain']);
    mon.push(r.ms);
    explained = r.rep.explain ?? null;
  }
  await labDownNow(three);
  const madded = median(mon) - median(moff);
  rows.push(['clean mesh, 3 nodes', fmt(median(moff)), fmt(median(mon)), fmt(madded), explained ? 'explained something!' : 'nothing explained, nothing contacted']);
  // Medians of separate runs differ by noise; "nothing" means within the run-to-run spread.
  const spread = Math.max(...moff) - Math.min(...moff);
  summary.push({ figure: 'what --explain adds to a clean mesh', ours: `${madded >= 0 ? '+' : ''}${fmt(madded)} ms (run-to-run spread ${fmt(spread)} ms)`, alternative: '', ratio: '', target: 'nothing', met: explained === null && Math.abs(madded) <= Math.max(spread, 50) });

  console.log('');
  console.log(table(rows, ['scenario', 'without ms', 'with --explain ms', 'added ms', 'explained']));
  emitSummary(NAME, summary);
});
