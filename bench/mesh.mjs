#!/usr/bin/env node
// Issue 5: mesh at lab scale.
//  (a) 12-node lab, every check, all open: mesh wall time vs nmap run from every node at once to all
//      peers (-T4 -Pn -n; -sS + -sU on the same ports, -sO for protocol 4). Target: ≤ 0.5× nmap.
//  (b) 12-node lab with ~10% of flows dropped: wall time vs (a) + 1.5 × the initial probe timeout.
//  (c) 32-node lab: completes; wall time, flows/s, peak RSS of the coordinator (/usr/bin/time -v) and of
//      one responder (VmHWM). Target ≤ 80 MB.
// Lab setup (namespaces + responders) is kept out of the measured times and printed.
// Needs root. Bounded: every command has a timeout; MESH_RUNS repetitions (median).
import { existsSync } from 'node:fs';
import { emitSummary, fmt, inNs, machine, main, procStatusKb, requireRoot, runCmd, table, withLabUp, labDownNow } from './lib.mjs';

const NAME = 'mesh';
requireRoot(NAME);
const RUNS = Number(process.env.MESH_RUNS ?? 2);
const BIG = Number(process.env.MESH_BIG ?? 32);
const TIMEOUT_MS = 1000; // the coordinator's default --timeout (initial probe timeout)
const TCP = [179, 5473, 2379, 6443];
const UDP = [4789, 51820];
// 12 nodes: 4 all-pairs checks × 132 + typha/etcd/apiserver × 11 = 561 flows; these drop 56 (10%).
const FAULTS_10PCT = ['drop:ipip@node3:in', 'drop:vxlan@node4:out', 'drop:bgp@node5:in', 'drop:wireguard@node6:in', 'reject:typha@node2:in', 'drop:bgp@path:node7>node8'];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const TIME_V = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

async function meshOnce(state, lab, { timeV = false } = {}) {
  const args = ['mesh', '--format', 'json', '--inventory', state.inventory, '--secret-file', state.secretFile];
  let argv = lab.coordinatorArgv(state, args);
  if (timeV && TIME_V) argv = [TIME_V, '-v', ...argv];
  const r = await runCmd(argv, { timeoutMs: 300_000 });
  let rep = null;
  try {
    rep = JSON.parse(r.stdout);
  } catch {
    throw new Error(`mesh gave no report (exit ${r.code}): ${r.stderr.slice(-800)}`);
  }
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  return { ms: r.ms, code: r.code, rep, maxRssKb: m ? Number(m[1]) : null };
}

async function nmapAll(state) {
  const cmds = [];
  for (const from of state.nodes) {
    const peers = state.nodes.filter((n) => n !== from).map((n) => n.address);
    const base = ['nmap', '-T4', '-Pn', '-n'];
    cmds.push(inNs(from.ns, [...base, '-sS', '-sU', '-p', `T:${TCP.join(',')},U:${UDP.join(',')}`, ...peers]));
    cmds.push(inNs(from.ns, [...base, '-sO', '-p', '4', ...peers]));
  }
  const t0 = performance.now();
  const rs = await Promise.all(cmds.map((c) => runCmd(c, { timeoutMs: 300_000 })));
  const states = {};
  for (const r of rs) {
    for (const m of r.stdout.matchAll(/^\d+(?:\/(?:tcp|udp))?\s+(open\|filtered|open|closed|filtered)\s/gm)) states[m[1]] = (states[m[1]] ?? 0) + 1;
  }
  return { ms: performance.now() - t0, states, failed: rs.filter((r) => r.code !== 0).length };
}

function causes(rep) {
  const c = {};
  for (const r of rep.results) if (r.verdict !== 'pass') c[`${r.verdict}/${r.cause}`] = (c[`${r.verdict}/${r.cause}`] ?? 0) + 1;
  return c;
}

await main(NAME, async () => {
  console.log(`# ${NAME} — ${machine()}; ${RUNS} runs each (median)`);
  const lab = await import('../dist/lab/lab.js');
  const rows = [];
  const summary = [];

  // (a) + (b): one 12-node lab; faults added after the open runs.
  const { state, setupMs } = await withLabUp({ nodes: 12 });
  console.log(`12-node lab setup: ${fmt(setupMs)} ms (not measured)`);
  await meshOnce(state, lab); // warm-up
  const open = [];
  let lastOpen;
  for (let i = 0; i < RUNS; i++) open.push((lastOpen = await meshOnce(state, lab)).ms);
  const nm = [];
  let lastNm;
  for (let i = 0; i < RUNS; i++) nm.push((lastNm = await nmapAll(state)).ms);
  const a = median(open);
  const n = median(nm);
  const flowsA = lastOpen.rep.results.length;
  console.log(`(a) mesh ${flowsA} flows, summary ${JSON.stringify(lastOpen.rep.summary)}: ${open.map((x) => fmt(x)).join(', ')} ms`);
  console.log(`    nmap from all 12 nodes at once (${state.nodes.length * 2} processes): ${nm.map((x) => fmt(x)).join(', ')} ms; nmap states ${JSON.stringify(lastNm.states)}`);
  rows.push(['(a) 12 nodes, open', flowsA, fmt(a), `nmap all-at-once ${fmt(n)}`, `${fmt(a / n, 2)}×`, '≤ 0.5×', a / n <= 0.5 ? 'met' : 'NOT met']);
  summary.push({ figure: '(a) mesh 12 nodes open', ours: `${fmt(a)} ms (${flowsA} flows)`, alternative: `nmap ${fmt(n)} ms`, ratio: `${fmt(a / n, 2)}×`, target: '≤ 0.5×', met: a / n <= 0.5 });

  await lab.labFaultAdd(state, FAULTS_10PCT);
  const dropped = [];
  let lastDrop;
  for (let i = 0; i < RUNS; i++) dropped.push((lastDrop = await meshOnce(state, lab)).ms);
  const b = median(dropped);
  const failed = lastDrop.rep.results.filter((r) => r.verdict !== 'pass').length;
  const bound = a + 1.5 * TIMEOUT_MS;
  console.log(`(b) mesh with faults ${FAULTS_10PCT.join(' ')}: ${failed}/${lastDrop.rep.results.length} flows not passed ${JSON.stringify(causes(lastDrop.rep))}; ${dropped.map((x) => fmt(x)).join(', ')} ms`);
  rows.push([`(b) 12 nodes, ${fmt((100 * failed) / lastDrop.rep.results.length, 1)}% dropped`, lastDrop.rep.results.length, fmt(b), `(a) + 1.5×${TIMEOUT_MS} = ${fmt(bound)}`, `${fmt(b - a)} ms over (a)`, `≤ ${fmt(bound)} ms`, b <= bound ? 'met' : 'NOT met']);
  summary.push({ figure: '(b) mesh 12 nodes ~10% dropped', ours: `${fmt(b)} ms`, alternative: `(a)+1.5×timeout = ${fmt(bound)} ms`, ratio: `+${fmt(b - a)} ms`, target: `≤ ${fmt(bound)} ms`, met: b <= bound });
  await labDownNow(state);

  // (c) 32 nodes.
  const big = await withLabUp({ nodes: BIG });
  console.log(`${BIG}-node lab setup: ${fmt(big.setupMs)} ms (not measured)`);
  await meshOnce(big.state, lab); // warm-up
  const c = await meshOnce(big.state, lab, { timeV: true });
  const flowsC = c.rep.results.length;
  const hwm = big.state.nodes.map((x) => procStatusKb(x.pid, 'VmHWM') ?? 0);
  const maxResp = Math.max(...hwm) / 1024;
  const coordMb = c.maxRssKb ? c.maxRssKb / 1024 : null;
  console.log(`(c) mesh ${flowsC} flows, summary ${JSON.stringify(c.rep.summary)}, exit ${c.code}: ${fmt(c.ms)} ms, ${fmt((flowsC * 1000) / c.ms)} flows/s`);
  console.log(`    coordinator max RSS ${fmt(coordMb, 1)} MB (/usr/bin/time -v); responder VmHWM: node1 ${fmt(hwm[0] / 1024, 1)} MB, max ${fmt(maxResp, 1)} MB, min ${fmt(Math.min(...hwm) / 1024, 1)} MB`);
  rows.push([`(c) ${BIG} nodes, open`, flowsC, fmt(c.ms), `${fmt((flowsC * 1000) / c.ms)} flows/s`, `coord ${fmt(coordMb, 1)} MB, responder ${fmt(maxResp, 1)} MB`, 'completes; ≤ 80 MB', c.rep.summary.fail === 0 && c.rep.summary.unknown === 0 && maxResp <= 80 ? 'met' : 'NOT met']);
  summary.push({ figure: `(c) mesh ${BIG} nodes`, ours: `${fmt(c.ms)} ms, ${fmt((flowsC * 1000) / c.ms)} flows/s`, alternative: `coordinator ${fmt(coordMb, 1)} MB`, ratio: `responder ${fmt(maxResp, 1)} MB`, target: '≤ 80 MB', met: maxResp <= 80 && (coordMb ?? 0) <= 80 });
  await labDownNow(big.state);

  console.log('');
  console.log(table(rows, ['case', 'flows', 'mesh ms', 'alternative / bound', 'ratio / figures', 'target', '']));
  emitSummary(NAME, summary);
});
