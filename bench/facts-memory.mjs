#!/usr/bin/env node
// Issue 10: what keeping the evidence as data (each result's `facts`) costs in memory, against the
// prose-only results of before (the same results without `facts`: only `detail` says what was seen).
// A synthetic mesh of N nodes (every check; ≈2% failures of mixed kinds), each flow joined by the real
// verdict code (verdict.ts joinVerdict → classify + describe); then, after a forced GC each time, the heap
// the results hold with facts and without, and the JSON report's size both ways. No root, no packets.
//
//   node --expose-gc bench/facts-memory.mjs [N ...]        (default 50 300; re-runs itself with --expose-gc)
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { emitSummary, fmt, machine, table } from './lib.mjs';

const NAME = 'facts-memory';
if (typeof globalThis.gc !== 'function') {
  const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
const { parseInventory } = await import('../dist/coordinator/inventory.js');
const { planMesh } = await import('../dist/coordinator/plan.js');
const { joinVerdict } = await import('../dist/verdict.js');
const { renderJson } = await import('../dist/report/json.js');
const { diagnose } = await import('../dist/report/diagnosis.js');

const heap = () => {
  globalThis.gc();
  globalThis.gc();
  return process.memoryUsage().heapUsed;
};

function results(n) {
  const addr = (i) => `10.0.${i >> 8}.${i & 255}`;
  const lines = ['nodes:'];
  for (let i = 1; i <= n; i++) lines.push(`  - name: node-${String(i).padStart(4, '0')}`, `    address: ${addr(i)}`, ...(i <= 3 ? ['    roles: [apiserver, etcd]'] : i <= 13 ? ['    roles: [typha]'] : []));
  const inv = parseInventory(lines.join('\n'), 'synthetic.yaml');
  const plan = planMesh(inv);
  const addrOf = new Map(inv.nodes.map((x) => [x.name, x.address]));
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const KINDS = ['egress-eperm', 'path', 'ingress', 'rejected', 'return', 'left-never'];
  const out = [];
  for (const f of plan.flows) {
    const tcp = f.transport === 'tcp';
    const fail = rnd() < 0.02 ? KINDS[Math.floor(rnd() * KINDS.length)] : null;
    const k = fail === 'return' && !tcp ? 'path' : fail;
    const src = {
      idx: f.idx, toAddress: f.toAddress, check: f.check,
      reply: k === null ? (tcp ? 'synack' : null) : k === 'rejected' ? 'rst' : null,
      replyFrom: k === 'rejected' ? '10.255.0.1' : null, icmp: null,
      sendError: k === 'egress-eperm' ? 'EPERM' : null,
      left: k === 'left-never' ? false : k === 'egress-eperm' ? null : true,
      leftOn: k === 'left-never' || k === 'egress-eperm' ? null : 'eth0',
      rttMs: k === null ? 0.2 + rnd() : null, attempts: k === null ? 1 : 3, srcPort: tcp ? 40000 : null,
    };
    const seen = k === null || k === 'ingress' || k === 'return';
    const wit = seen ? { idx: f.idx, interfaceSeen: true, interfaceName: 'eth0', socketSeen: k !== 'ingress', observedSource: addrOf.get(f.from), count: k === null ? 1 : 3 } : undefined;
    out.push(joinVerdict(f, src, wit, { fromAddress: addrOf.get(f.from), sourceReachable: true, witnessAvailable: true, capture: true }));
  }
  return { inv, plan, results: out };
}

const ns = process.argv.slice(2).map(Number).filter((x) => x > 1);
const rows = [];
const summary = [];
console.log(`${NAME} — ${machine()}`);
for (const n of ns.length ? ns : [50, 300]) {
  const base = heap();
  const built = results(n);
  const { inv, plan } = built;
  let withFacts = built.results;
  built.results = null;
  const flows = withFacts.length;
  const report = (rs) => ({ schemaVersion: 1, tool: { name: 'calico-nettest', version: 'bench' }, startedAt: '', finishedAt: '', nodes: inv.nodes.map((x) => ({ name: x.name, address: x.address })), results: rs, summary: { pass: 0, fail: 0, unknown: 0 }, command: 'mesh', checks: plan.checks });
  plan.flows.length = 0;
  const hFacts = heap() - base;
  const jsonFacts = Buffer.byteLength(renderJson(report(withFacts)));
  const d = diagnose(report(withFacts)).length;
  // The same results as they were before issue 10: no facts, the prose alone. The field is emptied, not
  // deleted or copied without it (either would change the objects' shape and measure V8, not the facts).
  const prose = withFacts;
  withFacts = null;
  for (const r of prose) r.facts = undefined;
  const hProse = heap() - base;
  const jsonProse = Buffer.byteLength(renderJson(report(prose)));
  const per = (b) => `${fmt(b / flows)} B`;
  rows.push([n, flows, `${(hFacts / 1048576).toFixed(1)} MB (${per(hFacts)})`, `${(hProse / 1048576).toFixed(1)} MB (${per(hProse)})`, `+${(((hFacts - hProse) / hProse) * 100).toFixed(0)}% (${per(hFacts - hProse)})`, `${(jsonFacts / 1048576).toFixed(1)} MB`, `${(jsonProse / 1048576).toFixed(1)} MB`, `+${(((jsonFacts - jsonProse) / jsonProse) * 100).toFixed(0)}%`, d]);
  summary.push({ figure: `results heap, ${n}-node mesh (${flows} flows), with facts`, ours: `${(hFacts / 1048576).toFixed(1)} MB`, alternative: `${(hProse / 1048576).toFixed(1)} MB prose-only`, ratio: `${(hFacts / hProse).toFixed(2)}x`, target: 'report', met: null });
  summary.push({ figure: `JSON report, ${n}-node mesh, with facts`, ours: `${(jsonFacts / 1048576).toFixed(1)} MB`, alternative: `${(jsonProse / 1048576).toFixed(1)} MB prose-only`, ratio: `${(jsonFacts / jsonProse).toFixed(2)}x`, target: 'report', met: null });
}
console.log(table(rows, ['N', 'flows', 'heap with facts', 'heap prose-only', 'facts cost', 'JSON with facts', 'JSON prose-only', 'JSON cost', 'statements']));
emitSummary(NAME, summary);
