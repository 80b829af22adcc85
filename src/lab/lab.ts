// `calico-nettest lab`: simulated nodes (network namespaces behind a router namespace), each running a
// real responder, with faults injected as real iptables rules. State lives in one directory per lab.
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join, relative, resolve, isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';
import { defaultPorts } from '../checks/catalogue.js';
import { DEFAULT_CONTROL_PORT } from '../control/protocol.js';
import type { CheckId, Role } from '../types.js';
import { faultClearArgv, faultRules, parseFault, validateFaultNodes, type Fault } from './faults.js';
import { inNs, isRoot, run, start, which } from './sys.js';
import { createTopology, describeTopology, destroyTopology, uniquePrefix, MAX_NODES, type Topology } from './topology.js';
import { EXIT, UserError } from '../errors.js';

export const LAB_ROOT = process.env.CALICO_NETTEST_LAB_DIR ?? '/run/calico-nettest';
export const LAB_CONTROL_PORT = DEFAULT_CONTROL_PORT;

export interface LabNodeState {
  name: string;
  ns: string;
  address: string;
  roles: Role[];
  pid: number | null;
  log: string;
}

export interface LabState {
  prefix: string;
  dir: string;
  router: string;
  createdAt: string;
  inventory: string;
  secretFile: string;
  nodes: LabNodeState[];
  faults: string[];
}

export class LabError extends UserError {
  readonly code = 'ELAB';
  constructor(message: string, exitCode: number = EXIT.cannotRun) {
    super(message, exitCode);
    this.name = 'LabError';
  }
}

/** The launcher of this very installation, so labs run the same build as the command that made them. */
export const LAUNCHER = fileURLToPath(new URL('../../bin/calico-nettest', import.meta.url));

/** How to show the launcher to a person: relative to the working directory when it is below it. */
export function launcherForHumans(): string {
  const rel = relative(process.cwd(), LAUNCHER);
  return !rel.startsWith('..') && !isAbsolute(rel) ? `./${rel}` : LAUNCHER;
}

/** Refuse early, with what to do, when the lab cannot work here. */
export async function checkPrerequisites(): Promise<void> {
  if (!isRoot()) throw new LabError('the lab needs root (it creates network namespaces and firewall rules) — run it with sudo', 2);
  const missing: string[] = [];
  if (!(await which('ip'))) missing.push('ip (Debian/Ubuntu: apt-get install iproute2; RHEL: dnf install iproute)');
  if (!(await which('iptables'))) missing.push('iptables (Debian/Ubuntu: apt-get install iptables; RHEL: dnf install iptables-nft)');
  if (missing.length) throw new LabError(`the lab needs these commands: ${missing.join('; ')}`, 2);
}

function labRoles(i: number): Role[] {
  // node1 is the control plane (apiserver + etcd), node2 runs Typha: every kind of check has a target.
  if (i === 1) return ['apiserver', 'etcd'];
  if (i === 2) return ['typha'];
  return [];
}

async function saveState(state: LabState): Promise<void> {
  await writeFile(join(state.dir, 'lab.json'), `${JSON.stringify(state, null, 2)}\n`);
}

export async function loadState(prefixOrDir: string): Promise<LabState> {
  const dir = prefixOrDir.includes('/') ? prefixOrDir : join(LAB_ROOT, prefixOrDir);
  try {
    return JSON.parse(await readFile(join(dir, 'lab.json'), 'utf8')) as LabState;
  } catch {
    throw new LabError(`no lab at ${dir} (see: calico-nettest lab status)`, 2);
  }
}

export async function listLabs(): Promise<LabState[]> {
  let names: string[];
  try {
    names = await readdir(LAB_ROOT);
  } catch {
    return [];
  }
  const labs: LabState[] = [];
  for (const n of names) {
    try {
      labs.push(await loadState(join(LAB_ROOT, n)));
    } catch {
      /* not a lab */
    }
  }
  return labs;
}

/** The lab a command means: the one named, else the only one there is. */
export async function resolveLab(name?: string): Promise<LabState> {
  if (name) return loadState(name);
  const labs = await listLabs();
  if (labs.length === 1) return labs[0]!;
  if (labs.length === 0) throw new LabError('no lab is up (start one with: calico-nettest lab up)', 2);
  throw new LabError(`${labs.length} labs are up (${labs.map((l) => l.prefix).join(', ')}); say which with --lab`, 2);
}

function faultContext(topo: Topology): Parameters<typeof faultRules>[1] {
  return { router: topo.router, nodes: topo.nodes, ports: defaultPorts() };
}

async function waitForResponder(log: string, pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await readFile(log, 'utf8').catch(() => '');
    if (text.includes('"event":"start"') && text.includes('"controlPort"')) return;
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (!alive || Date.now() > deadline) {
      const tail = text.trim().split('\n').slice(-8).join('\n  ');
      throw new LabError(`responder (pid ${pid}) ${alive ? 'did not start in time' : 'exited'}; its log (${log}):\n  ${tail || '(empty)'}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface LabUpOptions {
  nodes: number;
  faults?: string[];
  prefix?: string;
  checks?: CheckId[];
  onStep?: (msg: string) => void;
  /** Runs after the namespaces exist and before the responders start (tests start real services here). */
  beforeResponders?: (state: LabState) => Promise<void>;
}

/** Build the lab: namespaces, responders, faults. On any failure everything made so far is removed. */
export async function labUp(o: LabUpOptions): Promise<LabState> {
  await checkPrerequisites();
  if (!Number.isInteger(o.nodes) || o.nodes < 2 || o.nodes > MAX_NODES) throw new LabError(`--nodes must be 2..${MAX_NODES}`, 2);
  const faults = (o.faults ?? []).map(parseFault);
  const topo = describeTopology(o.prefix ?? uniquePrefix(), o.nodes);
  for (const f of faults) validateFaultNodes(f, topo.nodes.map((n) => n.name));
  const dir = join(LAB_ROOT, topo.prefix);
  const step = o.onStep ?? (() => undefined);
  const state: LabState = {
    prefix: topo.prefix,
    dir,
    router: topo.router,
    createdAt: new Date().toISOString(),
    inventory: join(dir, 'inventory.yaml'),
    secretFile: join(dir, 'secret'),
    nodes: topo.nodes.map((n, i) => ({ name: n.name, ns: n.ns, address: n.address, roles: labRoles(i + 1), pid: null, log: join(dir, `${n.name}.log`) })),
    faults: [],
  };
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await saveState(state);
    await writeFile(state.secretFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    const inventory = {
      nodes: state.nodes.map((n) => ({ name: n.name, address: n.address, ...(n.roles.length ? { roles: n.roles } : {}) })),
      ...(o.checks ? { checks: o.checks } : {}),
    };
    await writeFile(state.inventory, `# calico-nettest lab ${topo.prefix}: ${o.nodes} nodes behind router namespace ${topo.router}\n${toYaml(inventory)}`);
    step(`creating ${o.nodes} node namespaces and the router ${topo.router}`);
    await createTopology(topo);
    await o.beforeResponders?.(state);
    step('starting a responder on every node');
    for (const n of state.nodes) {
      const fd = openSync(n.log, 'a');
      try {
        const child = start(inNs(n.ns, [process.execPath, LAUNCHER, 'responder', '--listen', n.address, '--secret-file', state.secretFile, '--log-format', 'json']), {
          detached: true,
          stdio: ['ignore', fd, fd],
        });
        child.unref();
        n.pid = child.pid ?? null;
      } finally {
        closeSync(fd);
      }
      await saveState(state);
    }
    await Promise.all(state.nodes.map((n) => waitForResponder(n.log, n.pid ?? -1, 20_000)));
    for (const f of faults) await applyFault(state, topo, f);
    await saveState(state);
    return state;
  } catch (err) {
    await labDown(state).catch(() => undefined);
    throw err;
  }
}

async function applyFault(state: LabState, topo: Topology, f: Fault): Promise<void> {
  for (const r of faultRules(f, faultContext(topo))) await run(inNs(r.ns, r.argv));
  state.faults.push(f.spec);
}

export function topologyOf(state: LabState): Topology {
  return describeTopology(state.prefix, state.nodes.length);
}

export async function labFaultAdd(state: LabState, specs: string[]): Promise<void> {
  const topo = topologyOf(state);
  const faults = specs.map(parseFault);
  for (const f of faults) validateFaultNodes(f, state.nodes.map((n) => n.name));
  for (const f of faults) await applyFault(state, topo, f);
  await saveState(state);
}

export async function labFaultClear(state: LabState): Promise<number> {
  const topo = topologyOf(state);
  let n = 0;
  for (const spec of state.faults) {
    for (const r of faultClearArgv(parseFault(spec), faultContext(topo))) {
      await run(inNs(r.ns, r.argv), { allowFail: true });
      n++;
    }
  }
  state.faults = [];
  await saveState(state);
  return n;
}

/** Stop the responders (by pid), remove the namespaces and the lab's directory. Safe on a half-built lab. */
export async function labDown(state: Pick<LabState, 'prefix' | 'dir' | 'nodes'>): Promise<void> {
  for (const n of state.nodes) {
    if (!n.pid) continue;
    try {
      process.kill(n.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  const deadline = Date.now() + 3000;
  for (const n of state.nodes) {
    while (n.pid && Date.now() < deadline) {
      try {
        process.kill(n.pid, 0);
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  await destroyTopology({ prefix: state.prefix });
  await rm(resolve(state.dir), { recursive: true, force: true });
}

export async function labStatus(state: LabState): Promise<Array<{ name: string; address: string; alive: boolean; roles: Role[] }>> {
  const { stdout } = await run(['ip', 'netns', 'list'], { allowFail: true });
  const present = new Set(stdout.split('\n').map((l) => l.trim().split(/\s+/)[0]));
  return state.nodes.map((n) => {
    let alive = false;
    if (n.pid && present.has(n.ns)) {
      try {
        process.kill(n.pid, 0);
        alive = true;
      } catch {
        alive = false;
      }
    }
    return { name: n.name, address: n.address, alive, roles: n.roles };
  });
}

/** argv that runs calico-nettest inside the lab's router namespace (it reaches every node). */
export function coordinatorArgv(state: LabState, args: string[]): string[] {
  return inNs(state.router, [process.execPath, LAUNCHER, ...args]);
}
