#!/usr/bin/env node
// Issue 4: `pair node1 node2` time-to-verdict, on an open 2-node lab and with one check dropped
// (drop:ipip@node2:in), side by side with what a user would script instead for the same checks in
// both directions: nmap (-sS TCP 179,5473,2379,6443; -sU UDP 4789,51820; -sO protocol 4; -T4 -Pn -n)
// and hping3 (one probe per port/protocol, all at once). Also: what nmap can say (open|filtered)
// against our verdicts, and the responders' peak RSS (VmHWM) after the runs.
// Needs root. Bounded: every command has a timeout; RUNS repetitions (median reported).
import { emitSummary, fmt, inNs, machine, main, procStatusKb, requireRoot, runCmd, table, withLabUp, labDownNow } from './lib.mjs';

const NAME = 'pair';
requireRoot(NAME);
const RUNS = Number(process.env.RUNS ?? 3);
const TCP = [179, 5473, 2379, 6443];
const UDP = [4789, 51820];

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function pairOnce(state, lab) {
  const r = await runCmd(lab.coordinatorArgv(state, ['pair', 'node1', 'node2', '--format', 'json', '--inventory', state.inventory, '--secret-file', state.secretFile]), { timeoutMs: 120_000 });
  let rep = null;
  try {
    rep = JSON.parse(r.stdout);
  } catch {
    /* below */
  }
  if (!rep) throw new Error(`pair gave no report (exit ${r.code}): ${r.stderr.slice(0, 500)}`);
  return { ms: r.ms, code: r.code, rep };
}

function nmapStates(stdout) {
  // "179/tcp  closed bgp", "4789/udp open|filtered", "4  open|filtered ipv4" (protocol scan)
  const out = [];
  for (const line of stdout.split('\n')) {
    const m = /^(\d+)(\/(tcp|udp))?\s+(open\|filtered|open|closed\|filtered|closed|filtered|unfiltered)\s/.exec(line);
    if (m) out.push(`${m[3] ?? 'proto'} ${m[1]} ${m[4]}`);
  }
  return out;
}

async function nmapDirection(from, to, parallel) {
  const base = ['nmap', '-T4', '-Pn', '-n'];
  const cmds = [
    inNs(from.ns, [...base, '-sS', '-sU', '-p', `T:${TCP.join(',')},U:${UDP.join(',')}`, to.address]),
    inNs(from.ns, [...base, '-sO', '-p', '4', to.address]),
  ];
  const t0 = performance.now();
  const results = parallel ? await Promise.all(cmds.map((c) => runCmd(c, { timeoutMs: 120_000 }))) : [];
  if (!parallel) for (const c of cmds) results.push(await runCmd(c, { timeoutMs: 120_000 }));
  return { ms: performance.now() - t0, states: results.flatMap((r) => nmapStates(r.stdout)), codes: results.map((r) => r.code) };
}

async function nmapBoth(state, parallel) {
  const [n1, n2] = state.nodes;
  const t0 = performance.now();
  let a;
  let b;
  if (parallel) [a, b] = await Promise.all([nmapDirection(n1, n2, true), nmapDirection(n2, n1, true)]);
  else {
    a = await nmapDirection(n1, n2, false);
    b = await nmapDirection(n2, n1, false);
  }
  return { ms: performance.now() - t0, states: { 'node1->node2': a.states, 'node2->node1': b.states } };
}

async function hpingBoth(state) {
  const [n1, n2] = state.nodes;
  const cmds = [];
  for (const [from, to] of [
    [n1, n2],
    [n2, n1],
  ]) {
    for (const p of TCP) cmds.push(inNs(from.ns, ['hping3', '-S', '-p', String(p), '-c', '1', to.address]));
    for (const p of UDP) cmds.push(inNs(from.ns, ['hping3', '--udp', '-p', String(p), '-c', '1', to.address]));
    cmds.push(inNs(from.ns, ['hping3', '--rawip', '--ipproto', '4', '-c', '1', to.address]));
  }
  const t0 = performance.now();
  const rs = await Promise.all(cmds.map((c) => runCmd(c, { timeoutMs: 30_000 })));
  return { ms: performance.now() - t0, replies: rs.filter((r) => /len=|ICMP/.test(r.stdout)).length, total: rs.length };
}

await main(NAME, async () => {
  console.log(`# ${NAME} — ${machine()}; ${RUNS} runs each, median wall time`);
  const lab = await import('../dist/lab/lab.js');
  const { state, setupMs } = await withLabUp({ nodes: 2 });
  console.log(`lab setup: ${fmt(setupMs)} ms (not measured)`);
  const rows = [];
  const summary = [];
  const verdicts = {};
  for (const scenario of ['open', 'drop:ipip@node2:in']) {
    if (scenario !== 'open') await lab.labFaultAdd(state, [scenario]);
    await pairOnce(state, lab); // warm-up (page cache, ARP)
    const ours = [];
    let last;
    for (let i = 0; i < RUNS; i++) ours.push((last = await pairOnce(state, lab)).ms);
    verdicts[scenario] = last.rep.results.map((r) => `${r.check} ${r.from}->${r.to}: ${r.verdict}${r.cause ? ` (${r.cause})` : ''}`);
    const nseq = [];
    const npar = [];
    const hp = [];
    let nm;
    for (let i = 0; i < RUNS; i++) {
      nseq.push((nm = await nmapBoth(state, false)).ms);
      npar.push((await nmapBoth(state, true)).ms);
      hp.push((await hpingBoth(state)).ms);
    }
    const o = median(ours);
    rows.push([scenario, `${last.rep.results.length} flows, exit ${last.code}`, fmt(o), fmt(median(nseq)), fmt(median(npar)), fmt(median(hp)), `${fmt(o / median(npar), 2)}×`]);
    summary.push({ figure: `pair time-to-verdict (${scenario})`, ours: `${fmt(o)} ms`, alternative: `nmap ${fmt(median(npar))} ms parallel / ${fmt(median(nseq))} ms sequential; hping3 ${fmt(median(hp))} ms`, ratio: `${fmt(o / median(npar), 2)}× nmap(par)`, target: 'report', met: null });
    console.log(`\n[${scenario}] ours (median of ${RUNS}): ${fmt(o)} ms; runs: ${ours.map((x) => fmt(x)).join(', ')}`);
    console.log(`  our verdicts:\n    ${verdicts[scenario].join('\n    ')}`);
    console.log(`  nmap says:`);
    for (const [dir, st] of Object.entries(nm.states)) console.log(`    ${dir}: ${st.join('; ')}`);
  }
  const hwm = state.nodes.map((n) => procStatusKb(n.pid, 'VmHWM'));
  const rss = state.nodes.map((n) => procStatusKb(n.pid, 'VmRSS'));
  console.log('');
  console.log(table(rows, ['lab', 'pair', 'pair ms', 'nmap seq ms', 'nmap par ms', 'hping3 par ms', 'pair/nmap(par)']));
  console.log(`responder peak RSS (VmHWM): node1 ${fmt(hwm[0] / 1024, 1)} MB, node2 ${fmt(hwm[1] / 1024, 1)} MB (current RSS ${fmt(rss[0] / 1024, 1)} / ${fmt(rss[1] / 1024, 1)} MB)`);
  summary.push({ figure: 'responder peak RSS after pair runs', ours: `${fmt(Math.max(...hwm) / 1024, 1)} MB`, alternative: '', ratio: '', target: '≤ 80 MB', met: Math.max(...hwm) / 1024 <= 80 });
  await labDownNow(state);
  emitSummary(NAME, summary);
});
