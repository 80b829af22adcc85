#!/usr/bin/env node
// Issue 13: what the mtu check adds to a mesh.
//  (a) clean 12-node lab, every check: mesh wall time without mtu (--checks of the seven others, the
//      code path main runs) vs with it (the default set). Target: ≤ 15% more.
//  (b) the same lab with one black-holed node (mtu:1400@node2: the router's link at 1400, its
//      frag-needed dropped): with mtu vs (a)'s with-mtu time. Target: ≤ 2 s more (the search rounds).
// Lab setup is kept out of the measured times. Needs root. Bounded: timeouts; MTU_RUNS repetitions (median).
import { emitSummary, fmt, machine, main, requireRoot, runCmd, table, withLabUp, labDownNow } from './lib.mjs';

const NAME = 'mtu';
requireRoot(NAME);
const RUNS = Number(process.env.MTU_RUNS ?? 3);
const WITHOUT = 'bgp,ipip,vxlan,wireguard,typha,etcd,apiserver';
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function meshMs(lab, state, checks) {
  const args = ['mesh', '--format', 'json', '--inventory', state.inventory, '--secret-file', state.secretFile, ...(checks ? ['--checks', checks] : [])];
  const r = await runCmd(lab.coordinatorArgv(state, args), { timeoutMs: 300_000 });
  const rep = JSON.parse(r.stdout);
  return { ms: r.ms, flows: rep.results.length, fail: rep.summary.fail, mtuFail: rep.results.filter((x) => x.check === 'mtu' && x.verdict !== 'pass').length };
}

await main(NAME, async () => {
  console.log(machine());
  const lab = await import('../dist/lab/lab.js');
  const clean = await withLabUp({ nodes: 12 });
  const runs = { without: [], with: [], blackhole: [] };
  let meta = {};
  try {
    for (let i = 0; i < RUNS; i++) {
      const a = await meshMs(lab, clean.state, WITHOUT);
      const b = await meshMs(lab, clean.state, null);
      runs.without.push(a.ms);
      runs.with.push(b.ms);
      meta = { ...meta, flowsWithout: a.flows, flowsWith: b.flows, failClean: b.fail };
    }
  } finally {
    await labDownNow(clean.state);
  }
  const bh = await withLabUp({ nodes: 12, faults: ['mtu:1400@node2'] });
  try {
    for (let i = 0; i < RUNS; i++) {
      const c = await meshMs(lab, bh.state, null);
      runs.blackhole.push(c.ms);
      meta = { ...meta, mtuFailBlackhole: c.mtuFail };
    }
  } finally {
    await labDownNow(bh.state);
  }
  const w0 = median(runs.without);
  const w1 = median(runs.with);
  const w2 = median(runs.blackhole);
  const rows = [
    ['(a) clean 12 nodes, without mtu', `${fmt(w0)} ms`, `${meta.flowsWithout} flows`, '—'],
    ['(a) clean 12 nodes, with mtu', `${fmt(w1)} ms`, `${meta.flowsWith} flows, ${meta.failClean} fail`, `+${((100 * (w1 - w0)) / w0).toFixed(1)}% (target ≤ 15%)`],
    ['(b) mtu:1400@node2, with mtu', `${fmt(w2)} ms`, `${meta.mtuFailBlackhole} mtu flows fail`, `+${fmt(w2 - w1)} ms vs (a) with mtu (target ≤ 2000 ms)`],
  ];
  console.log(table(rows, ['case', `median of ${RUNS}`, 'flows', 'added']));
  console.log(`runs (ms): without ${runs.without.map(fmt).join(', ')}; with ${runs.with.map(fmt).join(', ')}; black hole ${runs.blackhole.map(fmt).join(', ')}`);
  emitSummary(NAME, rows);
});
