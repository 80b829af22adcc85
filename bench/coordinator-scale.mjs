#!/usr/bin/env node
// Issue 5: the coordinator's pure pipeline at cluster scale, no lab, no packets. A synthetic mesh of N
// nodes (every check; 3 apiserver+etcd nodes, 10 typha nodes): parseInventory → planMesh → synthesise one
// SourceOutcome per flow (held in one array, as coordinator/run.ts holds them) and each destination's
// witness log (one packed WitnessTable per destination, as run.ts holds them), ≈2% failures of mixed kinds → joinAll
// per flow (as run.ts does) → diagnose → render JSON, both as the CLI does it (report/write.ts
// renderReport → one string) and streamed (a bench-local writer to /dev/null, one result at a time).
// Each N runs in its own child process (peaks do not mix); per phase: time, RSS, VmHWM (kernel peak), heap.
// Target for N=1000: < 30 s and < 1.5 GB. No root needed.
//
//   node bench/coordinator-scale.mjs [N ...]        (default 100 300 1000)
import { spawn } from 'node:child_process';
import { openSync, readFileSync, writeSync, closeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { emitSummary, fmt, machine, table } from './lib.mjs';

const NAME = 'coordinator-scale';
const SELF = fileURLToPath(import.meta.url);
// Node's own default heap limit unless asked: what a user running the CLI gets.
const HEAP_MB = process.env.SCALE_HEAP_MB ? Number(process.env.SCALE_HEAP_MB) : null;
const CHILD_TIMEOUT_MS = Number(process.env.SCALE_TIMEOUT_MS ?? 240_000);

const mb = (b) => b / 1048576;
function hwmMb() {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : null;
}

// ---------------------------------------------------------------------------------------------
async function child(n) {
  const { parseInventory } = await import('../dist/coordinator/inventory.js');
  const { planMesh, countFlows } = await import('../dist/coordinator/plan.js');
  const { joinAll } = await import('../dist/coordinator/run.js');
  const { OutcomeTable } = await import('../dist/coordinator/outcomes.js');
  const { diagnose } = await import('../dist/report/diagnosis.js');
  const { reportChunks } = await import('../dist/report/write.js');
  const phases = [];
  let t = performance.now();
  const mark = (name, extra = {}) => {
    const now = performance.now();
    const mu = process.memoryUsage();
    phases.push({ name, ms: now - t, rssMb: mb(mu.rss), hwmMb: hwmMb(), heapMb: mb(mu.heapUsed), extMb: mb(mu.external + mu.arrayBuffers), ...extra });
    t = performance.now();
  };
  mark('start');

  // Inventory: names node-0001..; addresses 10.a.b.c (never used: no packets here).
  const addr = (i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  const lines = ['nodes:'];
  for (let i = 1; i <= n; i++) {
    const roles = i <= 3 ? ['apiserver', 'etcd'] : i <= 13 ? ['typha'] : [];
    lines.push(`  - name: node-${String(i).padStart(4, '0')}`, `    address: ${addr(i)}`, ...(roles.length ? [`    roles: [${roles.join(', ')}]`] : []));
  }
  const inv = parseInventory(lines.join('\n'), 'synthetic.yaml');
  mark('parseInventory');
  const expected = countFlows(inv);
  const plan = planMesh(inv);
  const F = plan.flows.length;
  const { PackedFlows } = await import('../dist/coordinator/outcomes.js');
  const flows = PackedFlows.pack(plan.flows); // as runPlan does first: the plan's objects are let go
  mark('planMesh', { flows: F, countFlows: expected });

  // Synthesise evidence as the responders would return it.
  const addrOf = new Map(inv.nodes.map((x) => [x.name, x.address]));
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const KINDS = ['egress-eperm', 'path', 'ingress', 'rejected', 'return', 'left-never'];
  const kindOf = new Int8Array(F); // index into KINDS, -1: passes
  let outcomes = new OutcomeTable(F, (i) => flows.get(i)); // as run.ts holds them
  const nodeIndex = new Map(inv.nodes.map((x, j) => [x.name, j]));
  const toOf = new Int32Array(F); // destination of each flow, to build each node's witness log in turn
  for (let i = 0; i < F; i++) {
    const f = flows.get(i);
    const fail = rnd() < 0.02 ? KINDS[Math.floor(rnd() * KINDS.length)] : null;
    const tcp = f.transport === 'tcp';
    const k = fail === 'return' && !tcp ? 'path' : fail;
    kindOf[i] = k === null ? -1 : KINDS.indexOf(k);
    toOf[i] = nodeIndex.get(f.to);
    outcomes.set(i, {
      idx: f.idx,
      toAddress: f.toAddress,
      check: f.check,
      reply: k === null ? (tcp ? 'synack' : null) : k === 'rejected' ? 'rst' : null,
      replyFrom: k === 'rejected' ? '10.255.0.1' : null,
      icmp: null,
      sendError: k === 'egress-eperm' ? 'EPERM' : null,
      left: k === 'left-never' ? false : k === 'egress-eperm' ? null : true,
      leftOn: k === 'left-never' || k === 'egress-eperm' ? null : 'eth0',
      rttMs: k === null ? 0.2 + rnd() : null,
      attempts: k === null ? 1 : 3,
      srcPort: f.transport === 'ipip' ? null : 40000 + (i % 20000),
    });

  }
  mark('synthesise outcomes');

  // The coordinator's own join (run.ts joinAll), with what every node reported.
  // Each destination's witness log as its responder sends it (rows), packed at once as run.ts does per
  // response; only one node's rows exist at a time, as with responses fetched a few at a time.
  const { WitnessTable } = await import('../dist/coordinator/outcomes.js');
  const byTo = inv.nodes.map(() => []);
  for (let i = 0; i < F; i++) byTo[toOf[i]].push(i);
  const nodes = new Map();
  inv.nodes.forEach((x, j) => {
    const rows = [];
    for (const i of byTo[j]) {
      const k = kindOf[i] < 0 ? null : KINDS[kindOf[i]];
      const f = flows.get(i);
      if (k === null || k === 'ingress' || k === 'return') rows.push([f.idx, 1, 'eth0', k !== 'ingress' ? 1 : 0, addrOf.get(f.from), k === null ? 1 : 3]);
    }
    byTo[j] = null;
    nodes.set(x.name, { reachable: true, capture: true, witness: new WitnessTable(rows) });
  });
  const results = joinAll(flows, addrOf, outcomes, nodes, { skipUnprobed: false });
  mark('join (run.ts joinAll)', { results: results.length });
  // run.ts keeps outcomes/witness reachable until it returns; drop them now as the report is all that is left.
  nodes.clear();
  outcomes = null; // runPlan returns here: its outcome table and witness tables go with it
  const summary = { pass: 0, fail: 0, unknown: 0 };
  for (const r of results) summary[r.verdict]++;
  const report = {
    schemaVersion: 1,
    tool: { name: 'calico-nettest', version: 'bench' },
    startedAt: new Date().toISOString(),
    finishedAt: new Date().toISOString(),
    nodes: inv.nodes.map((x) => ({ name: x.name, address: x.address, ...(x.roles.length ? { roles: x.roles } : {}) })),
    results,
    summary,
    command: 'mesh',
    checks: plan.checks,
    ports: Object.fromEntries(Object.entries(plan.ports).filter(([, p]) => p !== null)),
  };
  report.diagnosis = diagnose(report);
  mark('diagnose', { statements: report.diagnosis.length, failing: summary.fail + summary.unknown });

  // As the CLI writes it (report/write.ts reportChunks: streamed above 50 000 results), to /dev/null.
  const fd = openSync('/dev/null', 'w');
  let bytes = 0;
  for (const piece of reportChunks(report, 'json', { color: false })) bytes += writeSync(fd, piece);
  closeSync(fd);
  mark('render JSON (CLI)', { bytes });
  console.log(`SCALE-RESULT ${JSON.stringify({ n, flows: F, phases })}`);
}

// ---------------------------------------------------------------------------------------------
function runChild(n) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const c = spawn(process.execPath, [...(HEAP_MB ? [`--max-old-space-size=${HEAP_MB}`] : []), SELF, '--child', String(n)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    // The child's peak, polled from outside too (covers a child that dies of OOM before it reports).
    let peakKb = 0;
    const poll = setInterval(() => {
      try {
        const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${c.pid}/status`, 'utf8'));
        if (m) peakKb = Math.max(peakKb, Number(m[1]));
      } catch {
        /* exited */
      }
    }, 100);
    const kill = setTimeout(() => c.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    const stop = () => {
      clearInterval(poll);
      clearTimeout(kill);
    };
    process.once('SIGINT', () => c.kill('SIGKILL'));
    c.on('close', (code, signal) => {
      stop();
      const line = out.split('\n').find((l) => l.startsWith('SCALE-RESULT '));
      resolve({ n, code, signal, wallMs: performance.now() - t0, peakMb: peakKb / 1024, res: line ? JSON.parse(line.slice(13)) : null, err: err.slice(-1500) });
    });
  });
}

// The same pipeline before the typed-array/streaming changes, as recorded in RESULTS.md (2026-11-22,
// same machine): coordinator time INCLUDING the bench's evidence synthesis (at N=1000 5.4 s of the 30.4 s
// streamed), and peak RSS.
const BEFORE = {
  100: 'before: 498 ms incl. synthesis, peak 143 MB',
  300: 'before: 3601 ms incl. synthesis, peak 535 MB',
  1000: 'before: 68 s, peak 4707 MB, CLI render threw RangeError; streamed 30.4 s (incl. 5.4 s synthesis), 2.67 GB',
};

if (process.argv[2] === '--child') {
  await child(Number(process.argv[3]));
} else {
  const ns = process.argv.slice(2).map(Number).filter(Boolean);
  const sizes = ns.length ? ns : [100, 300, 1000];
  console.log(`# ${NAME} — ${machine()}; child heap limit ${HEAP_MB ? `--max-old-space-size=${HEAP_MB}` : "Node's default"}`);
  const rows = [];
  const summary = [];
  let code = 0;
  for (const n of sizes) {
    const r = await runChild(n);
    if (!r.res) {
      console.log(`N=${n}: child failed (exit ${r.code} ${r.signal ?? ''}) after ${fmt(r.wallMs)} ms, peak ${fmt(r.peakMb)} MB\n${r.err}`);
      rows.push([n, '-', 'FAILED', '', '', '', '', fmt(r.peakMb), '']);
      rows.push([n, '-', 'FAILED', '', '', '', '', '', fmt(r.peakMb), '']);
      continue;
    }
    const { flows, phases } = r.res;
    console.log(`\nN=${n}: ${flows} flows — per phase (ms; RSS / peak / heap MB after):`);
    for (const p of phases.slice(1)) {
      const extra = Object.entries(p)
        .filter(([k]) => !['name', 'ms', 'rssMb', 'hwmMb', 'heapMb', 'extMb'].includes(k))
        .map(([k, v]) => `${k}=${typeof v === 'number' ? fmt(v) : v}`)
        .join(' ');
      console.log(`  ${p.name.padEnd(32)} ${fmt(p.ms).padStart(7)} ms  rss ${fmt(p.rssMb).padStart(5)}  peak ${fmt(p.hwmMb).padStart(5)}  heap ${fmt(p.heapMb).padStart(5)}  ${extra}`);
    }
    const get = (name) => phases.find((p) => p.name === name);
    const total = phases.reduce((s, p) => s + (p.name === 'start' ? 0 : p.ms), 0);
    const beforeJoin = get('synthesise outcomes');
    const planP = get('planMesh');
    const join = get('join (run.ts joinAll)');
    const cli = get('render JSON (CLI)');
    const bytesPerResult = ((join.heapMb - beforeJoin.heapMb) * 1048576) / flows;
    const bytesPerFlow = ((planP.heapMb - get('parseInventory').heapMb) * 1048576) / flows;
    const evidencePerFlow = ((beforeJoin.heapMb - planP.heapMb) * 1048576) / flows;
    // Heap deltas between phases without a forced GC: garbage of the phase before (planMesh's objects,
    // let go as they are packed) can be collected in the next one, so a delta can come out negative.
    const perB = (v) => (v > 0 ? `${fmt(v)} B` : 'n/a (GC of the phase before)');
    console.log(`  heap delta (no forced GC, noisy) per planned flow ≈ ${perB(bytesPerFlow)}, per flow of evidence (outcome + witness) ≈ ${perB(evidencePerFlow)}, per FlowResult ≈ ${perB(bytesPerResult)}`);
    // Synthesis stands in for the network: it is not the coordinator's work.
    const coordinatorMs = total - beforeJoin.ms;
    rows.push([n, flows, fmt(planP.ms), fmt(beforeJoin.ms), fmt(join.ms), fmt(get('diagnose').ms), `${fmt(cli.ms)} (${fmt(cli.bytes / 1048576)} MB)`, fmt(coordinatorMs), fmt(r.peakMb), fmt(bytesPerResult)]);
    const met = coordinatorMs < 30_000 && r.peakMb < 1536;
    summary.push({ figure: `coordinator plan+join+diagnose+JSON, N=${n} (${flows} results)`, ours: `${fmt(coordinatorMs)} ms (+${fmt(beforeJoin.ms)} ms synthesis), peak ${fmt(r.peakMb)} MB`, alternative: BEFORE[n] ?? '', ratio: `${fmt(bytesPerResult)} B/result`, target: n >= 1000 ? '< 30 s, < 1.5 GB' : 'report', met: n >= 1000 ? met : null });
  }
  console.log('');
  console.log(table(rows, ['N', 'results', 'plan ms', 'synth ms (not counted)', 'join ms', 'diagnose ms', 'JSON (CLI) ms', 'coordinator ms', 'peak MB', 'B/result']));
  emitSummary(NAME, summary);
  process.exit(code);
}
