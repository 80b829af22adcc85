#!/usr/bin/env node
// Issue 13: what the mtu check adds to a mesh.
//  (a) clean 12-node lab, every check: mesh wall time without mtu (--checks of the seven others) vs with
//      it (the default set). Target: ≤ 15% more.
//  (b) a second 12-node lab with one black-holed node (mtu:1400@node2: the router's link at 1400, its
//      frag-needed dropped), with mtu, vs (a) with mtu. Target: ≤ 2 s more (the search rounds and the trace).
// Both labs stay up and the three cases run interleaved, MTU_RUNS times, so a load spike on this shared
// machine hits every case alike; min and median are printed. Also the search rounds each failing flow
// took (a figure load cannot move), side by side with what the previous search (12 sizes a round, no
// common sizes, no dense last round) takes for the same path MTUs. Lab setup is kept out of the times.
// Needs root. Bounded: timeouts; MTU_RUNS repetitions.
import { emitSummary, fmt, machine, main, requireRoot, runCmd, table, withLabUp, labDownNow, dist } from './lib.mjs';

const NAME = 'mtu';
requireRoot(NAME);
const RUNS = Number(process.env.MTU_RUNS ?? 9);
const WITHOUT = 'bgp,ipip,vxlan,wireguard,typha,etcd,apiserver';
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const min = (xs) => Math.min(...xs);

async function meshMs(lab, state, checks) {
  const args = ['mesh', '--format', 'json', '--inventory', state.inventory, '--secret-file', state.secretFile, ...(checks ? ['--checks', checks] : [])];
  const r = await runCmd(lab.coordinatorArgv(state, args), { timeoutMs: 300_000 });
  const rep = JSON.parse(r.stdout);
  const mtu = rep.results.filter((x) => x.check === 'mtu' && x.verdict !== 'pass');
  return { ms: r.ms, flows: rep.results.length, fail: rep.summary.fail, mtu };
}

/** Rounds the pure search takes for a path MTU with these options (the previous search's figure). */
function roundsWith(search, opts, hostMtu, pathMtu) {
  let s = search.startSearch(hostMtu, opts);
  while (!s.end) {
    const sizes = search.nextSizes(s, opts);
    s = search.advance(s, sizes, Math.max(0, ...sizes.filter((x) => x <= pathMtu)), null, opts);
  }
  return s.rounds;
}

await main(NAME, async () => {
  console.log(machine());
  const lab = await import('../dist/lab/lab.js');
  const search = await dist('checks/mtu-search.js');
  const clean = await withLabUp({ nodes: 12 });
  const runs = { without: [], with: [], blackhole: [] };
  let meta = {};
  let bh;
  try {
    bh = await withLabUp({ nodes: 12, faults: ['mtu:1400@node2'] });
    // One warm-up round (page cache, JIT, first ARP of every lab address), not counted.
    await meshMs(lab, clean.state, WITHOUT);
    await meshMs(lab, bh.state, null);
    for (let i = 0; i < RUNS; i++) {
      const a = await meshMs(lab, clean.state, WITHOUT);
      const b = await meshMs(lab, clean.state, null);
      const c = await meshMs(lab, bh.state, null);
      runs.without.push(a.ms);
      runs.with.push(b.ms);
      runs.blackhole.push(c.ms);
      meta = { flowsWithout: a.flows, flowsWith: b.flows, failClean: b.fail, mtuFail: c.mtu };
    }
  } finally {
    await labDownNow(clean.state);
    if (bh) await labDownNow(bh.state);
  }
  const [w0, w1, w2] = [runs.without, runs.with, runs.blackhole];
  const rows = [
    ['(a) clean 12 nodes, without mtu', `${fmt(min(w0))} / ${fmt(median(w0))} ms`, `${meta.flowsWithout} flows`, '—'],
    ['(a) clean 12 nodes, with mtu', `${fmt(min(w1))} / ${fmt(median(w1))} ms`, `${meta.flowsWith} flows, ${meta.failClean} fail`, `+${((100 * (min(w1) - min(w0))) / min(w0)).toFixed(1)}% min, +${((100 * (median(w1) - median(w0))) / median(w0)).toFixed(1)}% median (target ≤ 15%)`],
    ['(b) mtu:1400@node2, with mtu', `${fmt(min(w2))} / ${fmt(median(w2))} ms`, `${meta.mtuFail.length} mtu flows fail`, `+${fmt(min(w2) - min(w1))} ms min, +${fmt(median(w2) - median(w1))} ms median vs (a) with mtu (target ≤ 2000 ms)`],
  ];
  console.log(table(rows, ['case', `min / median of ${RUNS}`, 'flows', 'added']));
  // Rounds: measured now vs what the previous search needs for the same paths.
  const previous = { floor: 576, perRound: 12, maxRounds: 6 };
  const byPath = new Map();
  for (const r of meta.mtuFail) {
    const k = `pathMtu ${r.pathMtu}`;
    const e = byPath.get(k) ?? { flows: 0, now: new Set(), before: roundsWith(search, previous, r.hostMtu, r.pathMtu), hops: new Set() };
    e.flows++;
    e.now.add(r.facts?.searchRounds ?? '?');
    e.hops.add(r.hop ? `${r.hop.address} ${r.hop.link ?? 'frag-needed'}` : 'none');
    byPath.set(k, e);
  }
  const roundRows = [...byPath].map(([k, e]) => [k, `${e.flows}`, `${e.before}`, [...e.now].join('/'), [...e.hops].join(', ')]);
  console.log(table(roundRows, ['failing mtu flows', 'flows', 'rounds before', 'rounds now', 'hop found']));
  console.log(`runs (ms): without ${w0.map((x) => fmt(x)).join(', ')}; with ${w1.map((x) => fmt(x)).join(', ')}; black hole ${w2.map((x) => fmt(x)).join(', ')}`);
  const pct = (100 * (median(w1) - median(w0))) / median(w0);
  const extra = median(w2) - median(w1);
  emitSummary(NAME, [
    { figure: 'clean 12-node mesh: mtu adds (median)', ours: `${fmt(median(w1))} ms`, alternative: `${fmt(median(w0))} ms without mtu`, ratio: `+${pct.toFixed(1)}%`, target: '≤ 15%', met: pct <= 15 },
    { figure: 'one black-holed node: time added (median)', ours: `${fmt(median(w2))} ms`, alternative: `${fmt(median(w1))} ms clean`, ratio: `+${fmt(extra)} ms`, target: '≤ 2000 ms', met: extra <= 2000 },
    ...roundRows.map((r) => ({ figure: `search rounds, ${r[0]} (${r[1]} flows)`, ours: r[3], alternative: `${r[2]} before`, ratio: '', target: '', met: null })),
  ]);
});
