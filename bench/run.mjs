#!/usr/bin/env node
// Runs every benchmark in sequence (each in its own process, bounded in time) and prints one summary
// table: each figure side by side with its alternative and target.
//   node bench/run.mjs [name ...]      names: witness-cost receive-rate pair mesh coordinator-scale cli-scale explain hardening facts-memory mtu verdict-truth
// The lab benchmarks need root; without it they are skipped (coordinator-scale still runs).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { machine, table } from './lib.mjs';

const ALL = [
  { name: 'witness-cost', root: true, limitMs: 120_000 },
  { name: 'receive-rate', root: true, limitMs: 90_000 },
  { name: 'pair', root: true, limitMs: 180_000 },
  { name: 'mesh', root: true, limitMs: 240_000 },
  { name: 'coordinator-scale', root: false, limitMs: 300_000 },
  { name: 'cli-scale', root: false, limitMs: 900_000 },
  { name: 'explain', root: true, limitMs: 240_000 },
  { name: 'hardening', root: true, limitMs: 900_000 },
  { name: 'facts-memory', root: false, limitMs: 180_000 },
  { name: 'mtu', root: true, limitMs: 900_000 },
  { name: 'verdict-truth', root: true, limitMs: 900_000 },
];
const wanted = process.argv.slice(2);
const benches = wanted.length ? ALL.filter((b) => wanted.includes(b.name)) : ALL;
const isRoot = process.getuid?.() === 0;

let current = null;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    // Pass it on to the running benchmark (it cleans up its namespaces itself), then stop.
    if (current) current.kill(sig);
    setTimeout(() => process.exit(130), 8000).unref();
  });
}

function runOne(b) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [fileURLToPath(new URL(`./${b.name}.mjs`, import.meta.url))], { stdio: ['ignore', 'pipe', 'inherit'] });
    current = child;
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d) => {
      out += d;
      for (const line of d.split('\n')) if (line && !line.startsWith('BENCH-SUMMARY ')) process.stdout.write(`${line}\n`);
    });
    // Bounded: SIGTERM at the limit (the benchmark cleans up), SIGKILL 15 s later.
    const soft = setTimeout(() => child.kill('SIGTERM'), b.limitMs);
    const hard = setTimeout(() => child.kill('SIGKILL'), b.limitMs + 15_000);
    child.on('close', (code) => {
      clearTimeout(soft);
      clearTimeout(hard);
      current = null;
      const line = out.split('\n').find((l) => l.startsWith('BENCH-SUMMARY '));
      resolve({ code, ms: performance.now() - t0, summary: line ? JSON.parse(line.slice(14)) : null });
    });
  });
}

console.log(`calico-nettest benchmarks — ${machine()} — ${new Date().toISOString()}`);
const rows = [];
let failed = 0;
const t0 = performance.now();
for (const b of benches) {
  console.log(`\n===== ${b.name} =====`);
  if (b.root && !isRoot) {
    console.log(`skipped: needs root (network namespaces, raw sockets, iptables); run: sudo node bench/run.mjs`);
    rows.push([b.name, 'skipped (needs root)', '', '', '', '', '']);
    continue;
  }
  const r = await runOne(b);
  if (r.code !== 0) failed++;
  if (!r.summary) {
    rows.push([b.name, `FAILED (exit ${r.code})`, '', '', '', '', `${(r.ms / 1000).toFixed(0)} s`]);
    continue;
  }
  for (const s of r.summary.rows) rows.push([b.name, s.figure, s.ours, s.alternative, s.ratio, s.target, s.met === null || s.met === undefined ? '' : s.met ? 'met' : 'NOT met']);
  console.log(`(${b.name}: ${(r.ms / 1000).toFixed(1)} s)`);
}
console.log(`\n===== summary (${((performance.now() - t0) / 1000).toFixed(0)} s) =====`);
console.log(table(rows, ['bench', 'figure', 'ours', 'alternative', 'ratio', 'target', '']));
process.exit(failed ? 1 : 0);
