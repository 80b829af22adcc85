#!/usr/bin/env node
// Issue 2: how many packets per second can one core take in when EVERY packet matches the filter?
// Two bare namespaces (src/lab/topology.ts, no responders). n1 sends valid-looking UDP probes
// (probe payload with the magic, src/packets encoders) to UDP 4789 of n2 as fast as it can for a bounded
// time; in n2 a receiver process holds a socket with udpProbeToPorts([4789]) attached (so every probe
// passes the kernel filter) and counts what reaches its JS callback (addon: libuv poll + recvmmsg batches).
// Reported: sent/s, received/s, receiver CPU% (utime+stime over the window), received per CPU-second
// (= packets/s per core), and the socket's drop count from stats().
// Needs root. Bounded: each run ≤ RUN_MS and ≤ RUN_MAX packets.
import { fileURLToPath } from 'node:url';
import { cpuMs, emitSummary, fmt, inNs, machine, main, requireRoot, runCmd, sleep, startCmd, stopCmd, table, withTopology, topologyDownNow } from './lib.mjs';

const NAME = 'receive-rate';
requireRoot(NAME);
const RUN_MS = Number(process.env.RUN_MS ?? 4000);
const RUN_MAX = Number(process.env.RUN_MAX ?? 3_000_000);
const FLOOD = fileURLToPath(new URL('./flood.mjs', import.meta.url));
const RECEIVER = fileURLToPath(new URL('./receiver.mjs', import.meta.url));

async function once(topo, sockets, batch) {
  const [n1, n2] = topo.nodes;
  const child = startCmd(inNs(n2.ns, [process.execPath, RECEIVER, '--bind', n2.address, '--filter', 'udpprobe', '--ports', '4789', '--sockets', sockets, '--batch', String(batch), '--ms', '60000']));
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('receiver did not start')), 10_000);
    child.stderr.setEncoding('utf8').on('data', (d) => d.includes('ready') && (clearTimeout(t), resolve()));
    child.once('exit', () => reject(new Error('receiver exited early')));
  });
  const c0 = cpuMs(child.pid);
  const t0 = performance.now();
  const f = await runCmd(inNs(n1.ns, [process.execPath, FLOOD, '--src', n1.address, '--dst', n2.address, '--kind', 'udpprobe', '--uports', '4789', '--ms', String(RUN_MS), '--max', String(RUN_MAX)]), {
    timeoutMs: RUN_MS + 20_000,
  });
  if (f.code !== 0) throw new Error(`flood failed: ${f.stderr}`);
  await sleep(200); // drain
  const wallMs = performance.now() - t0;
  const cpu = cpuMs(child.pid) - c0;
  await stopCmd(child, 'SIGTERM');
  const r = JSON.parse(out.trim().split('\n').pop());
  const sent = JSON.parse(f.stdout.trim().split('\n').pop());
  const kind = sockets;
  const received = r.received[kind];
  return { sockets, batch, sent: sent.sent, sendErrors: sent.errors, sendMs: sent.ms, received, drops: r.stats[kind].drops, kernelRawDrops: r.stats.kernelRawDrops, batches: r.stats[kind].batches, cpu, wallMs };
}

await main(NAME, async () => {
  console.log(`# ${NAME} — ${machine()}`);
  const { topo, setupMs } = await withTopology(2);
  console.log(`namespaces setup: ${fmt(setupMs)} ms (not measured)`);
  const rows = [];
  const summary = [];
  for (const [sockets, batch] of [
    ['udp', 64],
    ['udp', 1],
    ['packet', 64],
  ]) {
    const r = await once(topo, sockets, batch);
    const rxRate = (r.received * 1000) / r.sendMs;
    const perCore = r.cpu > 0 ? (r.received * 1000) / r.cpu : null;
    const cpuPct = (100 * r.cpu) / r.sendMs;
    rows.push([`${sockets === 'udp' ? 'raw UDP' : 'packet (SOCK_DGRAM)'} batch ${batch}`, fmt((r.sent * 1000) / r.sendMs), fmt(rxRate), `${fmt(cpuPct)}%`, fmt(perCore), r.drops, sockets === 'packet' ? 'n/a' : r.kernelRawDrops, fmt(r.received / Math.max(1, r.batches), 1), r.sendErrors]);
    summary.push({ figure: `receive ${sockets} batch ${batch}`, ours: `${fmt(rxRate)} pkt/s rx, ${fmt(perCore)} pkt/s per core`, alternative: `${fmt((r.sent * 1000) / r.sendMs)} pkt/s sent`, ratio: `${fmt((100 * r.received) / r.sent, 1)}% received, drops stats()=${r.drops}${sockets === 'packet' ? '' : ` kernel=${r.kernelRawDrops}`}`, target: 'report', met: null });
  }
  console.log('');
  console.log(table(rows, ['receiver', 'sent/s', 'received/s', 'rx CPU%', 'rx per CPU-second', 'drops (stats)', 'drops (/proc/net/raw)', 'pkts/batch', 'send errors']));
  console.log('(2 cores: sender, kernel forwarding through the router namespace and receiver share them)');
  await topologyDownNow(topo);
  emitSummary(NAME, summary);
});
