// One run of a plan (mesh, pair, verify): open a session on every responder, have each node probe its
// peers (streaming outcomes back), fetch every witness log, join into one verdict per flow (DESIGN §3).
import { randomBytes } from 'node:crypto';
import pMap from 'p-map';
import { CATALOGUE, carrierOf } from '../checks/catalogue.js';
import { DEFAULT_TIMEOUTS, type TimeoutPolicy } from '../checks/rtt.js';
import { packInbound, type InboundFlow, type ProbeRequestBody } from '../control/protocol.js';
import { summarize } from '../report/common.js';
import type { CheckId, Facts, FlowResult, NodeErrorKind, PlannedFlow, Report, SourceOutcome } from '../types.js';
import { joinVerdict, type NodeProblem } from '../verdict.js';
import { joinMtu, type MtuSearchResult } from '../verdict-mtu.js';
import { carriedShape, type CarriedShape } from '../checks/mtu.js';
import { searchMtu } from './mtu-search.js';
import { flowDrop, parseDestKernelFacts, type DestKernelFacts } from '../kernel/facts.js';
import { EXTRA_TRIES, mergeOutcomes, pathLosses, retryPlan } from './loss.js';
import { VERSION } from '../version.js';
import { ControlClient, type ControlConnection } from './client.js';
import { nodeErrorKind } from './node-error.js';
import { OutcomeTable, PackedFlows, WitnessTable, type WitnessedFlow } from './outcomes.js';
import type { Inventory, InventoryNode } from './inventory.js';
import type { Plan } from './plan.js';

export interface RunOptions {
  secret: Buffer;
  command: 'mesh' | 'pair' | 'verify';
  tries?: number;
  timeouts?: TimeoutPolicy;
  /** Probes in flight at once per node. */
  concurrency?: number;
  /** Responders talked to at once. */
  parallelNodes?: number;
  spacingMs?: number;
  /** Wait after the last probe before asking for witness logs. */
  graceMs?: number;
  controlTimeoutMs?: number;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  /** Called once per node that could not be reached. */
  onNodeError?: (node: string, message: string) => void;
  /** How to reach one node's responder (tests give a fake); default: a ControlClient over HTTP. */
  connect?: (node: InventoryNode, secret: Buffer, timeoutMs: number) => ControlConnection;
  /** Loss above this share of a path's tries makes its lossy flows `lossy` (default DEFAULT_MAX_LOSS). */
  maxLoss?: number;
}

export interface Progress {
  total: number;
  done: number;
  failed: number;
}

/** What the coordinator learnt about one node's responder during a run. */
export interface NodeEvidence {
  reachable: boolean;
  error?: string;
  /** What kind of failure `error` is (data: nothing branches on the words). */
  errorKind?: NodeErrorKind;
  /** The control address tried ('198.18.0.3:5478'). */
  control?: string;
  capture: boolean;
  /** What it witnessed of a flow, only when its proof was for exactly that flow. */
  witness: { forFlow(flow: PlannedFlow, fromAddress: string): WitnessedFlow | undefined } | null;
  witnessError?: string;
  /** What the node's kernel said about the probes sent to it (reverse path, conntrack). */
  kernel?: DestKernelFacts;
  /** Packets its witness or capture shed or lost during the run, and probe-shaped packets with wrong proofs it saw. */
  shed?: number;
  forged?: number;
  witnessErrorKind?: NodeErrorKind;
}

/** The evidence's words and kind of why `n` could not be asked (undefined when nothing is known). */
function problemOf(n: NodeEvidence | undefined, witness: boolean): NodeProblem | undefined {
  if (!n) return undefined;
  const message = witness ? n.witnessError ?? n.error : n.error;
  if (message === undefined) return undefined;
  const kind = (witness && n.witnessError !== undefined ? n.witnessErrorKind : n.errorKind) ?? 'other';
  return { kind, message, ...(n.control ? { control: n.control } : {}) };
}

/** How long a session lives on a responder after the coordinator's last word; it renews every third of this. */
export const SESSION_LEASE_MS = 30_000;
/** After Ctrl-C, what is left of the run (witness logs of what was probed, closing sessions) gets this long. */
export const INTERRUPT_BUDGET_MS = 600;

interface NodeState extends NodeEvidence {
  node: InventoryNode;
  client: ControlConnection;
  /** It took the probe request but its stream ended early: its witness log is still worth asking for. */
  stoppedStreaming?: boolean;
  /** Went silent past its deadline: asked nothing more. */
  stopped?: boolean;
  /** Its kernel tracks connections (its session open said so); false: it does not; undefined: cannot tell. */
  tracking?: boolean;
}

/**
 * The join of a whole plan (DESIGN §3 step 5): one result per flow. With `skipUnprobed` (an interrupted
 * run) flows that never got an outcome are left out. Details are interned: a mesh repeats few of them.
 */
export function joinAll(
  flows: { readonly length: number; get(i: number): PlannedFlow },
  addressOf: ReadonlyMap<string, string>,
  outcomes: OutcomeTable,
  nodes: ReadonlyMap<string, NodeEvidence>,
  opts: { skipUnprobed: boolean; maxLoss?: number; mtu?: { carrier: CheckId; search: ReadonlyMap<number, MtuSearchResult> } },
): FlowResult[] {
  const results: FlowResult[] = [];
  const details = new Map<string, string>();
  const losses = pathLosses(flows, outcomes, nodes, addressOf);
  const factsPool = new Map<string, Facts>();
  for (let i = 0; i < flows.length; i++) {
    const src = outcomes.get(i);
    if (opts.skipUnprobed && !src) continue;
    const f = flows.get(i);
    const from = nodes.get(f.from);
    const to = f.sourceOnly ? undefined : nodes.get(f.to);
    const fromAddress = addressOf.get(f.from) ?? '';
    const path = losses.get(`${f.from}>${f.to}`);
    const ctx = {
      fromAddress,
      sourceReachable: !!src,
      sourceError: problemOf(from, false),
      witnessAvailable: f.sourceOnly ? true : !!to?.witness,
      witnessError: problemOf(to, true),
      capture: to?.capture ?? false,
      ...(to?.kernel ? { destKernel: to.kernel } : {}),
      ...dropReasonOf(f, fromAddress, to?.kernel),
      ...(path ? { pathLoss: path } : {}),
      ...(opts.maxLoss !== undefined ? { maxLoss: opts.maxLoss } : {}),
      sourceShed: from?.shed,
      destinationShed: to?.shed,
      destinationForged: to?.forged,
    };
    const wit = to?.witness?.forFlow(f, fromAddress);
    // A sized check (catalogue `sizing`: mtu) is judged by the size join; every other by the DESIGN table.
    const r = CATALOGUE[f.check].sizing ? joinMtu(f, src, wit, ctx, opts.mtu?.carrier ?? carrierOf(f.check, []), opts.mtu?.search.get(i)) : joinVerdict(f, src, wit, ctx);
    const shared = details.get(r.detail);
    if (shared !== undefined) r.detail = shared;
    else if (details.size < 1_000_000) details.set(r.detail, r.detail);
    if (r.facts) r.facts = internFacts(factsPool, r.facts);
    results.push(r);
  }
  return results;
}

/**
 * The kernel's drop reason for a flow's probes: what the destination's drop watch recorded for packets
 * from the sender to the flow's address, protocol and port; or why the destination cannot tell.
 */
function dropReasonOf(f: PlannedFlow, fromAddress: string, kernel: DestKernelFacts | undefined): { dropReason?: { reason: string } | { unavailable: string } } {
  if (!kernel) return {};
  if (kernel.dropReasonUnavailable) return { dropReason: { unavailable: kernel.dropReasonUnavailable } };
  const d = flowDrop(kernel.drops, fromAddress, f.toAddress, f.transport, f.port);
  return d ? { dropReason: { reason: d.reason } } : {};
}

/** Facts that name no address repeat across a mesh (most passes look alike): one frozen object each. */
function internFacts(pool: Map<string, Facts>, f: Facts): Facts {
  let key = '';
  for (const k in f) {
    const v = f[k as keyof Facts];
    if (typeof v === 'object' || !POOLED_FACTS.has(k)) return f;
    key += `${k}=${String(v)};`;
  }
  const shared = pool.get(key);
  if (shared) return shared;
  if (pool.size < 100_000) pool.set(key, Object.freeze(f));
  return f;
}
const POOLED_FACTS = new Set(['lost', 'tries', 'got', 'reply', 'left', 'leftOn', 'capture', 'interfaceSeen', 'arrivedOn', 'socketSeen', 'sendError']);

/** Run a plan end to end. It takes `plan.flows` over (packed; the array is empty when it returns). */
export async function runPlan(inv: Inventory, plan: Plan, o: RunOptions): Promise<Report> {
  const startedAt = new Date().toISOString();
  const tries = o.tries ?? 3;
  const timeouts = o.timeouts ?? DEFAULT_TIMEOUTS;
  const byName = new Map(inv.nodes.map((n) => [n.name, n]));
  const involved = new Set<string>();
  const endpointTargets = new Set<string>();
  for (const f of plan.flows) {
    involved.add(f.from);
    if (!f.sourceOnly) involved.add(f.to);
    else endpointTargets.add(f.to);
  }
  const states = new Map<string, NodeState>();
  for (const name of involved) {
    const node = byName.get(name);
    if (!node) continue;
    const connect = o.connect ?? ((n, secret, timeoutMs) => new ControlClient(n.control.host, n.control.port, secret, n.address, timeoutMs));
    const client = connect(node, o.secret, o.controlTimeoutMs ?? 5000);
    states.set(name, { node, client, control: `${node.control.host}:${node.control.port}`, reachable: false, capture: false, witness: null });
  }
  const sessionIdBytes = randomBytes(8);
  const sessionId = sessionIdBytes.toString('hex');
  const ports: Partial<Record<CheckId, number>> = {};
  for (const c of plan.checks) {
    const p = plan.ports[c];
    if (p !== null && p !== undefined) ports[c] = p;
  }
  // Flows grouped by source node and by destination (each destination's session is told its inbound flows).
  const bySource = new Map<string, number[]>();
  const byDestination = new Map<string, number[]>();
  const group = (m: Map<string, number[]>, k: string, i: number) => {
    let l = m.get(k);
    if (!l) m.set(k, (l = []));
    l.push(i);
  };
  plan.flows.forEach((f, i) => {
    group(bySource, f.from, i);
    if (!f.sourceOnly) group(byDestination, f.to, i);
  });
  const addressOf = new Map(inv.nodes.map((n) => [n.name, n.address]));
  // From here on the flows live packed; the plan's objects are let go (a 1000-node mesh has millions).
  const flows = PackedFlows.pack(plan.flows);
  const outcomes = new OutcomeTable(flows.length, (i) => flows.get(i));
  const progress: Progress = { total: flows.length, done: 0, failed: 0 };
  const parallel = o.parallelNodes ?? 64;
  // A signal aborted before the run started is an interrupt too (its 'abort' event has already fired).
  let interrupted = o.signal?.aborted ?? false;
  const sized = plan.checks.find((c) => CATALOGUE[c].sizing);
  const carried: CarriedShape | null = sized ? carriedShape(sized, plan.checks, plan.ports) : null;
  let mtuSearch: ReadonlyMap<number, MtuSearchResult> = new Map();
  const onAbort = () => {
    interrupted = true;
  };
  o.signal?.addEventListener('abort', onAbort, { once: true });
  // Holds: one stream per responder whose close ends the session there (however this process ends).
  const holds = new AbortController();
  let renewer: NodeJS.Timeout | null = null;

  try {
    // (2) sessions everywhere.
    await pMap(states.values(), async (st) => {
      const peers = [...new Set((bySource.get(st.node.name) ?? []).map((i) => flows.get(i).toAddress))];
      const inbound = function* (): Generator<InboundFlow> {
        for (const i of byDestination.get(st.node.name) ?? []) {
          const f = flows.get(i);
          yield { idx: f.idx, src: addressOf.get(f.from) ?? '', check: f.check, transport: f.transport, port: f.port };
        }
      };
      try {
        const r = await st.client.openSession({ id: sessionId, peers, ports, ttlMs: SESSION_LEASE_MS, inbound: packInbound(inbound()) }, o.signal);
        st.reachable = true;
        st.capture = r.capture;
        if (typeof r.conntrack === 'boolean') st.tracking = r.conntrack;
        void st.client.hold(sessionId, holds.signal);
      } catch (err) {
        st.error = (err as Error).message;
        st.errorKind = nodeErrorKind(err);
        o.onNodeError?.(st.node.name, st.error);
      }
    }, { concurrency: parallel });

    // Renew every lease a third of the way through it (the hold is the fast path; this covers a broken hold).
    renewer = setInterval(() => {
      for (const st of states.values()) if (st.reachable) st.client.renew(sessionId, holds.signal).catch(() => undefined);
    }, SESSION_LEASE_MS / 3);
    renewer.unref();

    // (3) every node probes its peers, all at once; outcomes stream back. IP-in-IP goes one direction of
    // every pair first: the other direction waits until every node has cleared its conntrack entries.
    const unreachableFlows = (name: string) => {
      const n = bySource.get(name)?.length ?? 0;
      progress.done += n;
      progress.failed += n;
      o.onProgress?.({ ...progress });
    };
    const order = new Map(inv.nodes.map((n, k) => [n.name, k]));
    // IP-in-IP's two directions go one after the other, with our conntrack entries cleared between, only
    // for pairs where a node's kernel tracks connections (or cannot say): elsewhere probes make no entries.
    const mayTrack = (name: string) => states.get(name)?.tracking !== false;
    const afterClear = (f: PlannedFlow) => f.transport === 'ipip' && (order.get(f.from) ?? 0) > (order.get(f.to) ?? 0) && (mayTrack(f.from) || mayTrack(f.to));
    const round = async (pick: Map<string, number[]>, extra: { tries: number; burst?: boolean }, onOutcome: (i: number, oc: SourceOutcome) => void) => {
      const waiting = new Set<string>();
      for (const st of states.values()) if (st.reachable && (pick.get(st.node.name)?.length ?? 0) > 0) waiting.add(st.node.name);
      let released = false;
      const arrive = (name: string) => {
        waiting.delete(name);
        if (waiting.size > 0 || released) return;
        released = true;
        void Promise.all([...states.values()].filter((x) => x.reachable).map((x) => x.client.release?.(sessionId, o.signal).catch(() => undefined)));
      };
      await pMap(states.values(), async (st) => {
        const mine = pick.get(st.node.name) ?? [];
        if (mine.length === 0) return;
        if (!st.reachable) {
          arrive(st.node.name);
          return;
        }
        const back = new Map<string, number>();
        const probes: ProbeRequestBody['probes'] = mine.map((i) => {
          const f = flows.get(i);
          back.set(`${f.toAddress}/${f.idx}`, i);
          return { idx: f.idx, check: f.check, transport: f.transport, to: f.toAddress, port: f.port, ...(f.sourceOnly ? { patient: true } : {}), ...(afterClear(f) ? { afterClear: true } : {}), ...(carried && f.check === sized ? { framing: carried.framing } : {}) };
        });
        let finished = false;
        try {
          await st.client.probe(
            sessionId,
            { probes, tries: extra.tries, timeouts, concurrency: o.concurrency ?? 64, spacingMs: o.spacingMs ?? 30, ...(extra.burst ? { burst: true } : {}) },
            (line) => {
              if ('outcome' in line) {
                const i = back.get(`${line.outcome.toAddress}/${line.outcome.idx}`);
                if (i !== undefined) onOutcome(i, line.outcome);
              } else if ('cleared' in line) arrive(st.node.name);
              else if ('done' in line) finished = true;
              else if ('error' in line) {
                st.error = `probing failed on ${st.node.name}: ${line.error}`;
                st.errorKind = 'probe-failed';
              }
            },
            o.signal,
          );
        } catch (err) {
          st.error = (err as Error).message;
          st.errorKind = nodeErrorKind(err);
          // A responder that went silent is asked nothing more: its flows, and only its, are unknown.
          if ((err as { errno?: string }).errno === 'EDEADLINE') st.stopped = true;
        }
        arrive(st.node.name);
        if (!finished && !o.signal?.aborted) {
          if (st.error === undefined) {
            st.error = `${st.node.name}'s responder stopped streaming before all probes were done`;
            st.errorKind = 'stopped-streaming';
          }
          st.reachable = false;
          st.stoppedStreaming = true;
          o.onNodeError?.(st.node.name, st.error);
        }
      }, { concurrency: parallel });
    };
    for (const st of states.values()) if (!st.reachable) unreachableFlows(st.node.name);
    await round(bySource, { tries }, (i, oc) => {
      if (outcomes.has(i)) return;
      outcomes.set(i, oc);
      progress.done++;
      if (oc.sendError || (CATALOGUE[oc.check].transport === 'tcp' && oc.reply !== 'synack' && oc.reply !== 'rst')) progress.failed++;
      o.onProgress?.({ ...progress });
    });

    // (4) grace, then every witness log (also after an interrupt: what was probed gets its verdict, quickly).
    const fetchOne = async (st: NodeState) => {
      if (st.stopped) {
        st.witnessError = st.error;
        st.witnessErrorKind = st.errorKind;
        return;
      }
      // A stream that ended early or said probing failed came from our responder: its witness log still counts.
      if (!st.reachable && !st.stoppedStreaming && st.errorKind !== 'probe-failed') return;
      try {
        const w = await st.client.witness(sessionId, undefined, interrupted ? INTERRUPT_BUDGET_MS : undefined);
        st.capture = w.capture;
        st.witness = new WitnessTable(w.rows);
        st.shed = w.lost;
        st.forged = w.forged;
        st.kernel = parseDestKernelFacts(w.kernel);
        st.witnessError = undefined;
      } catch (err) {
        st.witnessError = (err as Error).message;
        st.witnessErrorKind = nodeErrorKind(err);
        if ((err as { errno?: string }).errno === 'EDEADLINE') st.stopped = true;
      }
    };
    const fetchWitness = async (only?: Set<string>) => {
      if (!interrupted) await new Promise((r) => setTimeout(r, o.graceMs ?? 250));
      const asked = [...states.values()].filter((st) => !only || only.has(st.node.name));
      await pMap(asked, fetchOne, { concurrency: interrupted ? Math.max(1, states.size) : parallel });
    };
    await fetchWitness();

    // (5) loss is not a firewall: flows that got nothing through, on paths where other tries did, go again
    // (all extra tries at once, one timeout), and their outcomes add up.
    if (!interrupted) {
      const again = retryPlan(flows, outcomes, states, addressOf);
      if (again.size > 0) {
        const dests = new Set<string>();
        for (const list of again.values()) for (const i of list) dests.add(flows.get(i).to);
        await round(again, { tries: EXTRA_TRIES, burst: true }, (i, oc) => outcomes.set(i, mergeOutcomes(outcomes.get(i), oc)));
        await fetchWitness(dests);
      }
    }

    // (5b) a sized check's search (mtu), for the flows whose host-size probe did not arrive.
    if (sized && carried && !interrupted) {
      mtuSearch = await searchMtu({ check: sized, flows, outcomes, nodes: states, sessionId, addressOf, shape: carried, timeouts, concurrency: o.concurrency ?? 64, spacingMs: o.spacingMs ?? 30, signal: o.signal });
    }
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    if (renewer) clearInterval(renewer);
    await Promise.all([...states.values()].map((st) => (st.reachable && !st.stopped ? st.client.closeSession(sessionId, interrupted ? INTERRUPT_BUDGET_MS / 2 : undefined) : undefined)));
    holds.abort();
    for (const st of states.values()) st.client.close();
  }

  // (5) the join.
  const results = joinAll(flows, addressOf, outcomes, states, { skipUnprobed: interrupted, maxLoss: o.maxLoss, ...(carried ? { mtu: { carrier: carried.carrier, search: mtuSearch } } : {}) });
  const report: Report = {
    schemaVersion: 1,
    tool: { name: 'calico-nettest', version: VERSION },
    startedAt,
    finishedAt: new Date().toISOString(),
    nodes: inv.nodes.filter((n) => involved.has(n.name)).map((n) => ({ name: n.name, address: n.address, ...(n.roles.length ? { roles: n.roles } : {}) })),
    results,
    summary: summarize(results),
    command: o.command,
    checks: plan.checks,
    ports,
  };
  for (const e of inv.endpoints ?? []) if (involved.has(e.name) || endpointTargets.has(e.name)) report.nodes.push({ name: e.name, address: e.address });
  if (interrupted) report.incomplete = true;
  // No diagnosis here: the caller may still add to the results (--explain, nodes without a responder);
  // it is made once from the final ones (report/write.ts withDiagnosis).
  return report;
}
