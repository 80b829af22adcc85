#!/usr/bin/env node
// Issue 12 (item 9): the real CLI (bin/calico-nettest mesh) on large inventories, as a user runs it:
// N nodes whose control addresses are 127.0.0.1:1 (nothing listens: every flow is unknown at once, no
// packet is ever sent), the report streamed to a file. Per N: wall time, CPU time, peak RSS (VmHWM of
// the child), exit status, and the first line of stderr. A 10 000-node mesh is refused by the memory
// estimate (exit 3 in seconds); before it, Node died of a heap OOM (exit 134).
//
//   node bench/cli-scale.mjs [N ...]        (default 1000 10000)
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { emitSummary, fmt, machine, table } from './lib.mjs';

const NAME = 'cli-scale';
const BIN = fileURLToPath(new URL('../bin/calico-nettest', import.meta.url));
const LIMIT_MS = Number(process.env.SCALE_TIMEOUT_MS ?? 400_000);

// Measured before this change (same machine, ~8 engineers sharing 2 cores; bench/results/scale.md).
const BEFORE = {
  1000: 'main ab5c206: exit 3 (no responder), 110 s wall / 51 s CPU, peak 1476 MB',
  10000: 'main ab5c206: V8 heap OOM, exit 134 after 2.75 GB (issue); here >500 s, >2.1 GB, killed',
};

function inventory(n) {
  const lines = ['nodes:'];
  for (let i = 1; i <= n; i++) {
    const roles = i <= 3 ? ['apiserver', 'etcd'] : i <= 13 ? ['typha'] : [];
    lines.push(`  - name: node-${String(i).padStart(5, '0')}`, `    address: 198.${18 + ((i >> 16) & 1)}.${(i >> 8) & 255}.${i & 255}`, '    control: 127.0.0.1:1', ...(roles.length ? [`    roles: [${roles.join(', ')}]`] : []));
  }
  return `${lines.join('\n')}\n`;
}

function runOne(dir, n) {
  const inv = join(dir, `inv${n}.yaml`);
  writeFileSync(inv, inventory(n));
  return new Promise((resolve) => {
    const t0 = performance.now();
    const c = spawn(process.execPath, [BIN, 'mesh', '-i', inv, '-s', join(dir, 'secret'), '-q', '-o', join(dir, `out${n}.json`)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d) => (err += d));
    let peakKb = 0;
    let cpu = 0;
    const poll = setInterval(() => {
      try {
        const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${c.pid}/status`, 'utf8'));
        if (m) peakKb = Math.max(peakKb, Number(m[1]));
        const f = readFileSync(`/proc/${c.pid}/stat`, 'utf8').split(') ')[1].split(' ');
        cpu = (Number(f[11]) + Number(f[12])) / 100;
      } catch {
        /* exited */
      }
    }, 100);
    const kill = setTimeout(() => c.kill('SIGKILL'), LIMIT_MS);
    process.once('SIGINT', () => c.kill('SIGKILL'));
    c.on('close', (code, signal) => {
      clearInterval(poll);
      clearTimeout(kill);
      rmSync(join(dir, `out${n}.json`), { force: true });
      resolve({ n, code: code ?? signal, wallMs: performance.now() - t0, cpuS: cpu, peakMb: peakKb / 1024, first: err.split('\n').find((l) => l.startsWith('calico-nettest:')) ?? '' });
    });
  });
}

const sizes = process.argv.slice(2).map(Number).filter(Boolean);
const dir = mkdtempSync(join(tmpdir(), 'cnt-cli-scale-'));
writeFileSync(join(dir, 'secret'), `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
console.log(`# ${NAME} — ${machine()}`);
const rows = [];
const summary = [];
try {
  for (const n of sizes.length ? sizes : [1000, 10000]) {
    const r = await runOne(dir, n);
    rows.push([n, r.code, fmt(r.wallMs), `${fmt(r.cpuS)} s`, fmt(r.peakMb), r.first.slice(0, 90)]);
    summary.push({ figure: `CLI mesh, ${n} nodes (unreachable responders)`, ours: `exit ${r.code}, ${fmt(r.wallMs)} ms, peak ${fmt(r.peakMb)} MB`, alternative: BEFORE[n] ?? '', ratio: '', target: n >= 10000 ? 'exit 2/3 with a message, no OOM' : 'report', met: n >= 10000 ? r.code === 3 : null });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(table(rows, ['N', 'exit', 'wall ms', 'CPU', 'peak MB', 'message']));
emitSummary(NAME, summary);
