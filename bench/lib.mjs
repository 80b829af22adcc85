// Shared helpers for the benchmarks: root check, labs that always come down (also on failure and
// Ctrl-C), child processes killed by pid only, CPU time and peak RSS from /proc, bounded commands.
// Everything here touches only namespaces and processes the benchmark itself made.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';

export const ROOT_MESSAGE = 'needs root: it builds network namespaces, raw/packet sockets and iptables rules (run: sudo node bench/<name>.mjs)';

/** Exit 2 with a clear message when not root. */
export function requireRoot(name) {
  if (process.getuid?.() !== 0) {
    console.error(`${name}: ${ROOT_MESSAGE}`);
    process.exit(2);
  }
}

/** Import a module of the built tool (dist/), with a hint when it is not built. */
export async function dist(path) {
  try {
    return await import(new URL(`../dist/${path}`, import.meta.url));
  } catch (err) {
    if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
      console.error(`cannot load dist/${path}: build first (npm install && npm run build)`);
      process.exit(3);
    }
    throw err;
  }
}

// ---- cleanup: pids we started and labs we built -------------------------------------------------
const ourPids = new Set();
const ourLabs = new Set();
const cleanups = new Set();
let exiting = false;

export function trackPid(pid) {
  if (pid) ourPids.add(pid);
  return pid;
}
export function untrackPid(pid) {
  ourPids.delete(pid);
}
export function onCleanup(fn) {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

function killOurs(signal = 'SIGKILL') {
  for (const pid of ourPids) {
    try {
      // Our children were started detached (own process group): the group holds only what they
      // started (ip netns exec -> the tool, hping3, nmap), so signal the group, by its id.
      process.kill(-pid, signal);
    } catch {
      try {
        process.kill(pid, signal);
      } catch {
        /* gone */
      }
    }
  }
}

export async function cleanupAll() {
  killOurs('SIGKILL');
  ourPids.clear();
  for (const fn of [...cleanups]) {
    try {
      await fn();
    } catch (err) {
      console.error(`cleanup: ${err?.message ?? err}`);
    }
  }
  cleanups.clear();
  const { labDown } = await import(new URL('../dist/lab/lab.js', import.meta.url));
  for (const state of [...ourLabs]) {
    try {
      await labDown(state);
    } catch (err) {
      console.error(`cleanup: lab ${state.prefix}: ${err?.message ?? err}`);
    }
    ourLabs.delete(state);
  }
  if (ourTopos.size) {
    const { destroyTopology } = await import(new URL('../dist/lab/topology.js', import.meta.url));
    for (const topo of [...ourTopos]) {
      await destroyTopology(topo).catch((err) => console.error(`cleanup: ${topo.prefix}: ${err?.message ?? err}`));
      ourTopos.delete(topo);
    }
  }
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (exiting) return;
    exiting = true;
    console.error(`\n${sig}: cleaning up (our processes, our namespaces)...`);
    cleanupAll().finally(() => process.exit(130));
  });
}

/** Run `main` and always clean up; exit status 1 on error. */
export async function main(name, fn) {
  let code = 0;
  try {
    await fn();
  } catch (err) {
    console.error(`${name}: FAILED: ${err?.stack ?? err}`);
    code = 1;
  } finally {
    if (!exiting) await cleanupAll();
  }
  if (!exiting) process.exit(code);
}

// ---- labs --------------------------------------------------------------------------------------
export async function withLabUp(opts) {
  const { labUp } = await dist('lab/lab.js');
  const t0 = performance.now();
  // labUp removes what it made on its own failure; once it returns, the lab is ours to remove.
  const state = await labUp({ prefix: uniqueBenchPrefix(), ...opts });
  ourLabs.add(state);
  return { state, setupMs: performance.now() - t0 };
}

const ourTopos = new Set();
/** Bare namespaces (no responders): src/lab/topology.ts createTopology; removed by cleanupAll. */
export async function withTopology(count) {
  const { describeTopology, createTopology } = await dist('lab/topology.js');
  const topo = describeTopology(uniqueBenchPrefix(), count);
  ourTopos.add(topo);
  const t0 = performance.now();
  await createTopology(topo);
  return { topo, setupMs: performance.now() - t0 };
}
export async function topologyDownNow(topo) {
  const { destroyTopology } = await dist('lab/topology.js');
  ourTopos.delete(topo);
  await destroyTopology(topo);
}

export async function labDownNow(state) {
  const { labDown } = await dist('lab/lab.js');
  ourLabs.delete(state);
  const t0 = performance.now();
  await labDown(state);
  return performance.now() - t0;
}

export function uniqueBenchPrefix() {
  return `cnb-${Math.random().toString(16).slice(2, 8)}`;
}

// ---- processes ---------------------------------------------------------------------------------
/**
 * Run argv to completion, bounded by timeoutMs (then SIGKILL to its own process group).
 * Resolves { code, signal, stdout, stderr, ms, pid }.
 */
export function runCmd(argv, { timeoutMs = 120_000, input, env } = {}) {
  const [cmd, ...args] = argv;
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { detached: true, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', ...env } });
    trackPid(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      untrackPid(child.pid);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      untrackPid(child.pid);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - t0, pid: child.pid });
    });
    if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
  });
}

/** Start a long-running process (detached, own group, tracked). Returns the ChildProcess. */
export function startCmd(argv, opts = {}) {
  const [cmd, ...args] = argv;
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  trackPid(child.pid);
  child.on('exit', () => untrackPid(child.pid));
  return child;
}

export function stopCmd(child, signal = 'SIGTERM') {
  try {
    process.kill(-child.pid, signal);
  } catch {
    /* gone */
  }
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, 3000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

export const inNs = (ns, argv) => ['ip', 'netns', 'exec', ns, ...argv];

// ---- /proc -------------------------------------------------------------------------------------
const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux

/** utime+stime of a process in ms (its own threads; not its children). */
export function cpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields after "(comm) ": state is index 0 → utime is field 14 → index 11, stime index 12.
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / CLK_TCK;
}

/**
 * CPU time of a process in ms with ns resolution: the sum of its threads' on-CPU time
 * (/proc/<pid>/task/<tid>/schedstat, first field). utime+stime (cpuMs) moves in 10 ms ticks, too coarse
 * for a few ms; this also misses threads that exited between two readings, so use it on processes
 * whose threads live as long as they do (the responder, the receiver). Falls back to cpuMs.
 */
export function cpuFineMs(pid) {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        /* thread gone */
      }
    }
    return ns / 1e6;
  } catch {
    return cpuMs(pid);
  }
}

/** Selected fields of /proc/<pid>/status in kB (VmHWM, VmRSS). */
export function procStatusKb(pid, field) {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) : null;
}

/** The innermost process of `ip netns exec ... node ...`: ip netns exec execs, so the pid is the tool's. */
export function commOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null;
  }
}

/** Poll VmHWM of a running process; returns { stop(): peakKb }. */
export function pollPeak(pidFn, everyMs = 50) {
  let peak = 0;
  const tick = () => {
    const pid = pidFn();
    if (!pid) return;
    try {
      const hwm = procStatusKb(pid, 'VmHWM');
      if (hwm && hwm > peak) peak = hwm;
    } catch {
      /* exited */
    }
  };
  const t = setInterval(tick, everyMs);
  return {
    stop() {
      clearInterval(t);
      tick();
      return peak;
    },
    get peak() {
      return peak;
    },
  };
}

// ---- printing ----------------------------------------------------------------------------------
export const fmt = (n, d = 0) => (n === null || n === undefined || Number.isNaN(n) ? '-' : Number(n).toFixed(d));

export function table(rows, headers) {
  const all = [headers, ...rows].map((r) => r.map((c) => String(c)));
  const widths = headers.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => c.padEnd(widths[i])).join('  ');
  return [line(all[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...all.slice(1).map(line)].join('\n');
}

export function machine() {
  return `${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}`;
}

/** Figures for bench/run.mjs: one JSON line on stdout, prefixed, after the human output. */
export function emitSummary(name, rows) {
  console.log(`BENCH-SUMMARY ${JSON.stringify({ name, rows })}`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
