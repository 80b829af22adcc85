// `calico-nettest lab`: simulated nodes (network namespaces behind a router namespace), each running a
// real responder, with faults injected as real iptables rules. State lives in one directory per lab.
import { closeSync, openSync } from 'node:fs';
import { access, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';
import { defaultPorts } from '../checks/catalogue.js';
import { DEFAULT_CONTROL_PORT } from '../control/protocol.js';
import type { CheckId, Role } from '../types.js';
import { faultClearArgv, faultRules, parseFault, validateFaultNodes, type Fault } from './faults.js';
import { inNs, isRoot, isRunning, run, start, which } from './sys.js';
import { createTopology, describeTopology, destroyTopology, listNamespaces, uniquePrefix, MAX_NODES, type Topology } from './topology.js';
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
  /** Set when lab.json was missing or broken and the state was rebuilt from the lab's namespaces: why. */
  broken?: string;
}

export class LabError extends UserError {
  readonly code = 'ELAB';
  constructor(message: string, exitCode: number = EXIT.cannotRun) {
    super(message, exitCode);
    this.name = 'LabError';
  }
}

/** The labs are root's and this process is not: nothing can be listed (exit 2). */
export class LabHiddenError extends LabError {
  constructor(message: string) {
    super(message, 2);
    this.name = 'LabHiddenError';
  }
}

/** The launcher of this very installation, so labs run the same build as the command that made them. */
export const LAUNCHER = fileURLToPath(new URL('../../bin/calico-nettest', import.meta.url));

/**
 * How to show a command of this installation to a person so that it works pasted anywhere: the absolute
 * launcher, behind `sudo` only when the person is not root already (and sudo is not there as root).
 */
export function launcherForHumans(asRoot = isRoot()): string {
  return asRoot ? LAUNCHER : `sudo ${LAUNCHER}`;
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

/** Write lab.json whole or not at all (a process killed mid-write must not leave an empty file). */
async function saveState(state: LabState): Promise<void> {
  const file = join(state.dir, 'lab.json');
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, file);
}

/** A lab prefix as uniquePrefix makes them: only such names are ever taken for a lab's traces. */
const PREFIX_RE = /^cnt-[0-9a-f]{6}$/;


/**
 * What is left of a lab whose lab.json is missing or broken (killed while it was being built): rebuilt from
 * its namespaces. Its responders have no recorded pid; `labDown` ends them through `ip netns pids`.
 */
async function reconstructState(prefix: string, dir: string, why: string): Promise<LabState> {
  const names = await listNamespaces(prefix);
  const indexes = names.map((ns) => /-n(\d+)$/.exec(ns)?.[1]).filter((x): x is string => !!x).map(Number).filter((i) => i >= 1 && i <= MAX_NODES).sort((a, b) => a - b);
  const topo = describeTopology(prefix, Math.max(0, ...indexes));
  return {
    prefix,
    dir,
    router: `${prefix}-r`,
    createdAt: '',
    inventory: join(dir, 'inventory.yaml'),
    secretFile: join(dir, 'secret'),
    nodes: indexes.map((i) => {
      const n = topo.nodes[i - 1]!;
      return { name: n.name, ns: n.ns, address: n.address, roles: labRoles(i), pid: null, log: join(dir, `${n.name}.log`) };
    }),
    faults: [],
    broken: why,
  };
}

export async function loadState(prefixOrDir: string): Promise<LabState> {
  const dir = prefixOrDir.includes('/') ? prefixOrDir : join(LAB_ROOT, prefixOrDir);
  const prefix = basename(dir);
  let text: string;
  try {
    text = await readFile(join(dir, 'lab.json'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EACCES') throw needsRootToSee();
    if (PREFIX_RE.test(prefix) && ((await listNamespaces(prefix)).length > 0 || (await exists(dir)))) return reconstructState(prefix, dir, 'its lab.json is missing');
    throw new LabError(`no lab ${prefix} (no ${join(dir, 'lab.json')} and no namespace named ${prefix}-*; see: calico-nettest lab status)`, 2);
  }
  try {
    const state = JSON.parse(text) as LabState;
    if (typeof state?.prefix === 'string' && Array.isArray(state.nodes)) return state;
  } catch {
    /* broken: rebuilt below */
  }
  if (PREFIX_RE.test(prefix)) return reconstructState(prefix, dir, `its lab.json is ${text.trim() === '' ? 'empty' : 'unreadable'}`);
  throw new LabError(`${join(dir, 'lab.json')} is not a lab's state`, 2);
}

function needsRootToSee(): LabError {
  return new LabHiddenError(`cannot see the labs: ${LAB_ROOT} and the lab namespaces are root's — run it with sudo`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** Every lab on this machine: its state directory, or only namespaces named like a lab's (a lab killed half-built). */
export async function listLabs(): Promise<LabState[]> {
  let names: string[] = [];
  try {
    names = await readdir(LAB_ROOT);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EACCES') throw needsRootToSee();
  }
  const prefixes = new Set(names.filter((n) => PREFIX_RE.test(n)));
  for (const ns of await listNamespaces('cnt')) {
    const m = /^(cnt-[0-9a-f]{6})-(r|n\d+)$/.exec(ns);
    if (m) prefixes.add(m[1]!);
  }
  const labs: LabState[] = [];
  for (const p of [...prefixes].sort()) {
    try {
      labs.push(await loadState(join(LAB_ROOT, p)));
    } catch (err) {
      if (err instanceof LabHiddenError) throw err;
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

/** A responder's JSON log line saying it listens (`{"event":"start","controlPort":…}`). */
function isStartEvent(line: string): boolean {
  try {
    const e = JSON.parse(line) as { event?: unknown; controlPort?: unknown };
    return e.event === 'start' && typeof e.controlPort === 'number';
  } catch {
    return false;
  }
}

async function waitForResponder(log: string, pid: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (signal?.aborted) return; // the caller's next checkpoint turns this into LabInterrupted
    const text = await readFile(log, 'utf8').catch(() => '');
    if (text.split('\n').some(isStartEvent)) return;
    const alive = isRunning(pid);
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
  /** Aborting it (Ctrl-C) stops the build at the next step and removes everything made so far. */
  signal?: AbortSignal;
}

/** `lab up` was interrupted: everything it had made is gone again, and this says what that was. */
export class LabInterrupted extends LabError {
  constructor(readonly prefix: string, readonly removed: LabRemoval) {
    super(`interrupted: lab ${prefix} not built; removed ${describeRemoval(removed)}`, 130);
  }
}

export interface LabRemoval {
  namespaces: number;
  processes: number;
}

export function describeRemoval(r: LabRemoval): string {
  const ns = `${r.namespaces} namespace${r.namespaces === 1 ? '' : 's'}`;
  const pr = `${r.processes} responder process${r.processes === 1 ? '' : 'es'}`;
  return `${ns}, ${pr} and its state directory`;
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
  const checkpoint = () => {
    if (o.signal?.aborted) throw new LabInterrupted(state.prefix, { namespaces: 0, processes: 0 });
  };
  try {
    checkpoint();
    // The state comes first: whatever happens next, `lab down --lab PREFIX` finds what was made.
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await saveState(state);
    await writeFile(state.secretFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    const inventory = {
      nodes: state.nodes.map((n) => ({ name: n.name, address: n.address, ...(n.roles.length ? { roles: n.roles } : {}) })),
      ...(o.checks ? { checks: o.checks } : {}),
    };
    await writeFile(state.inventory, `# calico-nettest lab ${topo.prefix}: ${o.nodes} nodes behind router namespace ${topo.router}\n${toYaml(inventory)}`);
    step(`creating ${o.nodes} node namespaces and the router ${topo.router}`);
    checkpoint();
    await createTopology(topo, o.signal);
    checkpoint();
    await o.beforeResponders?.(state);
    step('starting a responder on every node');
    for (const n of state.nodes) {
      checkpoint();
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
    await Promise.all(state.nodes.map((n) => waitForResponder(n.log, n.pid ?? -1, 20_000, o.signal)));
    for (const f of faults) {
      checkpoint();
      await applyFault(state, topo, f);
    }
    await saveState(state);
    return state;
  } catch (err) {
    const removed = await labDown(state).catch(() => ({ namespaces: 0, processes: 0 }));
    if (err instanceof LabInterrupted || o.signal?.aborted) throw new LabInterrupted(state.prefix, removed);
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

/**
 * Stop the responders (by pid), remove the namespaces and the lab's directory. Safe on a half-built lab:
 * namespaces are found by the lab's prefix and processes still in them by `ip netns pids`. Says what went.
 */
export async function labDown(state: Pick<LabState, 'prefix' | 'dir' | 'nodes'>): Promise<LabRemoval> {
  const signalled: number[] = [];
  for (const n of state.nodes) {
    if (!n.pid) continue;
    try {
      process.kill(n.pid, 'SIGTERM');
      signalled.push(n.pid);
    } catch {
      /* gone */
    }
  }
  const deadline = Date.now() + 3000;
  for (const n of state.nodes) {
    while (n.pid && isRunning(n.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  }
  // Those that did not end on SIGTERM are killed (and counted) by destroyTopology: count each once.
  const stopped = signalled.filter((pid) => !isRunning(pid)).length;
  const left = await destroyTopology({ prefix: state.prefix });
  await rm(resolve(state.dir), { recursive: true, force: true });
  return { namespaces: left.namespaces, processes: stopped + left.processes };
}

export async function labStatus(state: LabState): Promise<Array<{ name: string; address: string; alive: boolean; roles: Role[] }>> {
  const { stdout } = await run(['ip', 'netns', 'list'], { allowFail: true });
  const present = new Set(stdout.split('\n').map((l) => l.trim().split(/\s+/)[0]));
  return state.nodes.map((n) => {
    const alive = !!n.pid && present.has(n.ns) && isRunning(n.pid);
    return { name: n.name, address: n.address, alive, roles: n.roles };
  });
}

/** argv that runs calico-nettest inside the lab's router namespace (it reaches every node). */
export function coordinatorArgv(state: LabState, args: string[]): string[] {
  return inNs(state.router, [process.execPath, LAUNCHER, ...args]);
}

/** The first line `lab up` writes into its inventory: names the lab and its router namespace. */
const LAB_INVENTORY_HEADER = /^# calico-nettest lab (cnt-[0-9a-f]{6}): .* router namespace (\S+)/;

/**
 * When `inventoryFile` came from `lab up` and this process is not in that lab's router namespace, what to do
 * instead (else null). Lab addresses are reachable only from there: run elsewhere, the control requests
 * would go out by the default route to whatever answers for 198.18.0.0/15 (an HTTP 404 from upstream).
 */
export async function labNamespaceProblem(inventoryFile: string): Promise<string | null> {
  let head: string;
  try {
    head = (await readFile(inventoryFile, 'utf8')).slice(0, 512).split('\n', 1)[0] ?? '';
  } catch {
    return null; // loading the inventory reports that
  }
  const m = LAB_INVENTORY_HEADER.exec(head);
  if (!m) return null;
  const [, prefix, router] = m as unknown as [string, string, string];
  const [here, there] = await Promise.all([stat('/proc/self/ns/net').catch(() => null), stat(`/run/netns/${router}`).catch(() => null)]);
  if (!there) return `${inventoryFile} is the inventory of lab ${prefix}, which is not up any more (no namespace ${router}); start a lab: ${launcherForHumans()} lab up`;
  if (here && here.ino === there.ino && here.dev === there.dev) return null;
  const args = process.argv.slice(2).join(' ');
  return `${inventoryFile} is the inventory of lab ${prefix}: its nodes are reachable only from the lab's router namespace. Run:\n  ${isRoot() ? '' : 'sudo '}ip netns exec ${router} ${LAUNCHER} ${args}`;
}
