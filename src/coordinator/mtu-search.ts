// The mtu check's search rounds (after the first witness logs): for every mtu flow whose host-size
// probe did not arrive, ask its sender for a round of DF probes of a few sizes, ask its destination
// what arrived (the witness keeps the largest size per flow), and narrow (checks/mtu-search.ts) until
// the largest size that arrives is known or the bound is reached. All flows search at once, one round
// trip per round; nodes whose host-size probes arrived are not asked again.
import { advance, DEFAULT_SEARCH, nextSizes, startSearch, type SearchOptions, type SearchState } from '../checks/mtu-search.js';
import type { TimeoutPolicy } from '../checks/rtt.js';
import type { ProbeRequestBody } from '../control/protocol.js';
import { minFramedSize } from '../checks/framing.js';
import type { CarriedShape } from '../checks/mtu.js';
import { MAX_TRACE_TTL } from '../checks/mtu-prober.js';
import type { CheckId, MtuTrace, PlannedFlow } from '../types.js';
import type { MtuSearchResult } from '../verdict-mtu.js';
import type { ControlConnection } from './client.js';
import { OutcomeTable, WitnessTable } from './outcomes.js';

export interface MtuSearchNode {
  client: ControlConnection;
  reachable: boolean;
  capture: boolean;
  witness: { forFlow(flow: PlannedFlow, fromAddress: string): ReturnType<WitnessTable['forFlow']> } | null;
}

export interface MtuSearchContext {
  flows: { readonly length: number; get(i: number): PlannedFlow };
  outcomes: OutcomeTable;
  nodes: ReadonlyMap<string, MtuSearchNode>;
  sessionId: string;
  /** Node name -> address: a witness row counts only for the flow its proof names (source included). */
  addressOf: ReadonlyMap<string, string>;
  /** The sized check (catalogue `sizing`) and the shape its carrier gives its probes. */
  check: CheckId;
  shape: CarriedShape;
  timeouts: TimeoutPolicy;
  concurrency: number;
  spacingMs: number;
  /** Copies of each size per round. */
  copies?: number;
  /** Wait after a round before asking what arrived (the probes' own timeout has already passed). */
  graceMs?: number;
  search?: Partial<SearchOptions>;
  /** TTLs a silent limit's trace tries (0: no trace). */
  traceTtl?: number;
  signal?: AbortSignal;
}

interface Searching {
  i: number;
  flow: PlannedFlow;
  state: SearchState;
  result: MtuSearchResult;
}

/** Flows to search, and every mtu flow's result by flow index. */
export async function searchMtu(ctx: MtuSearchContext): Promise<Map<number, MtuSearchResult>> {
  const opts: SearchOptions = { ...DEFAULT_SEARCH, ...ctx.search };
  opts.floor = Math.max(opts.floor, minFramedSize(ctx.shape.framing, ctx.shape.transport === 'udp' ? 'udp' : 'ipip'));
  const out = new Map<number, MtuSearchResult>();
  let active: Searching[] = [];
  for (let i = 0; i < ctx.flows.length; i++) {
    const flow = ctx.flows.get(i);
    if (flow.check !== ctx.check || flow.sourceOnly) continue;
    const src = ctx.outcomes.get(i);
    const hostMtu = src?.mtu?.hostMtu ?? null;
    const to = ctx.nodes.get(flow.to);
    const from = ctx.nodes.get(flow.from);
    if (!src || src.sendError || hostMtu === null || !to?.witness || !from?.reachable) continue;
    const wit = to.witness.forFlow(flow, ctx.addressOf.get(flow.from) ?? '');
    const arrived = (to.capture ? wit?.ifaceSize : wit?.socketSize) ?? 0;
    if (arrived >= hostMtu) continue;
    const frag = src.mtu?.fragNeeded ?? null;
    const state = startSearch(hostMtu, opts, frag?.mtu || null);
    const result: MtuSearchResult = { lo: null, hi: hostMtu, end: state.end ?? 'bounded', rounds: 0, fragNeeded: frag, refusedSize: src.mtu?.refusedSize ?? null, kernelPmtuAfter: src.mtu?.kernelPmtuAfter ?? null };
    out.set(i, result);
    if (!state.end) active.push({ i, flow, state, result });
  }

  const timeouts = roundTimeouts(ctx);
  const tracer = new Tracer(ctx, out, opts.floor);
  while (active.length > 0 && !ctx.signal?.aborted) {
    const round = new Map<string, { s: Searching; sizes: number[] }[]>();
    for (const s of active) {
      const sizes = nextSizes(s.state, opts);
      let l = round.get(s.flow.from);
      if (!l) round.set(s.flow.from, (l = []));
      l.push({ s, sizes });
    }
    // Silent limits known so far are traced in this round's requests (the sender runs them side by side):
    // no round of their own.
    // (Not a flow still searched: one request may name a probe only once.)
    const traces = tracer.due(new Set(active.map((a) => a.i)));
    // One probe request per sender, all senders at once.
    await Promise.all(
      [...new Set([...round.keys(), ...traces.keys()])].map(async (name) => {
        const node = ctx.nodes.get(name);
        const items = round.get(name) ?? [];
        if (!node) return;
        const byKey = new Map(items.map((x) => [`${x.s.flow.toAddress}/${x.s.flow.idx}`, x.s]));
        const probes: ProbeRequestBody['probes'] = items.map(({ s, sizes }) => ({ idx: s.flow.idx, check: ctx.check, transport: s.flow.transport, to: s.flow.toAddress, port: s.flow.port, sizes, framing: ctx.shape.framing }));
        const traced = tracer.entries(traces.get(name) ?? []);
        probes.push(...traced.probes);
        try {
          await node.client.probe(ctx.sessionId, { probes, tries: Math.max(1, ctx.copies ?? 2), timeouts, concurrency: ctx.concurrency, spacingMs: ctx.spacingMs }, (line) => {
            if (!('outcome' in line)) return;
            const m = line.outcome.mtu;
            if (m?.trace) return traced.onTrace(line.outcome.toAddress, line.outcome.idx, m.trace);
            const s = byKey.get(`${line.outcome.toAddress}/${line.outcome.idx}`);
            if (!s || !m) return;
            s.result.fragNeeded ??= m.fragNeeded;
            if (m.refusedSize !== null) s.result.refusedSize = Math.min(s.result.refusedSize ?? m.refusedSize, m.refusedSize);
            if (m.kernelPmtuAfter !== null) s.result.kernelPmtuAfter = m.kernelPmtuAfter;
          }, ctx.signal);
        } catch {
          // This sender cannot search now: its flows keep what is known (the interval so far), and no hop.
          for (const { s } of items) s.state = { ...s.state, end: 'bounded' };
        }
      }),
    );
    await new Promise((r) => setTimeout(r, ctx.graceMs ?? 20));
    // What arrived: one witness log per destination of this round.
    const dests = [...new Set(active.map((s) => s.flow.to))];
    await Promise.all(
      dests.map(async (name) => {
        const node = ctx.nodes.get(name);
        if (!node) return;
        try {
          const w = await node.client.witness(ctx.sessionId, ctx.signal);
          node.witness = new WitnessTable(w.rows);
        } catch {
          for (const s of active) if (s.flow.to === name) s.state = { ...s.state, end: 'bounded' };
        }
      }),
    );
    const next: Searching[] = [];
    for (const { s, sizes } of [...round.values()].flat()) {
      if (!s.state.end) {
        const to = ctx.nodes.get(s.flow.to);
        const wit = to?.witness?.forFlow(s.flow, ctx.addressOf.get(s.flow.from) ?? '');
        const arrived = (to?.capture ? wit?.ifaceSize : wit?.socketSize) ?? 0;
        s.state = advance(s.state, sizes, arrived, s.result.fragNeeded?.mtu || null, opts);
      }
      Object.assign(s.result, { lo: s.state.lo, hi: s.state.hi, rounds: s.state.rounds, end: s.state.end ?? 'bounded' });
      if (!s.state.end) next.push(s);
    }
    active = next;
  }
  // Limits found silent in the last round: one request of traces per sender, all at once.
  const last = tracer.due();
  if (!ctx.signal?.aborted && last.size > 0) {
    await Promise.all(
      [...last].map(async ([name, items]) => {
        const node = ctx.nodes.get(name);
        if (!node?.reachable) return;
        const traced = tracer.entries(items);
        try {
          await node.client.probe(ctx.sessionId, { probes: traced.probes, tries: 1, timeouts, concurrency: ctx.concurrency, spacingMs: ctx.spacingMs }, (line) => {
            if ('outcome' in line && line.outcome.mtu?.trace) traced.onTrace(line.outcome.toAddress, line.outcome.idx, line.outcome.mtu.trace);
          }, ctx.signal);
        } catch {
          // No trace from this sender: its flows keep no hop (the verdict does not depend on one).
        }
      }),
    );
  }
  return out;
}

/** Silent limits traced per sender at most: time-exceeded is rate-limited per peer (Linux: a burst of 6, then 1/s). */
export const MAX_TRACES_PER_SENDER = 4;

/**
 * Which flows get a TTL-limited trace, and when: those whose limit is silent so far (a size arrived, a
 * larger did not, no frag-needed, no refusal), once each, at most MAX_TRACES_PER_SENDER a sender. The
 * trace's large size is the smallest known not to arrive.
 */
class Tracer {
  private readonly done = new Set<number>();
  private readonly perSender = new Map<string, number>();
  constructor(
    private readonly ctx: MtuSearchContext,
    private readonly results: Map<number, MtuSearchResult>,
    private readonly floor: number,
  ) {}

  /** Flows due for a trace now, by sender (each is then counted as traced). */
  due(busy: ReadonlySet<number> = new Set()): Map<string, Array<{ flow: PlannedFlow; r: MtuSearchResult }>> {
    const out = new Map<string, Array<{ flow: PlannedFlow; r: MtuSearchResult }>>();
    if ((this.ctx.traceTtl ?? MAX_TRACE_TTL) <= 0) return out;
    for (const [i, r] of this.results) {
      if (this.done.has(i) || busy.has(i) || r.lo === null || r.fragNeeded || r.refusedSize !== null) continue;
      const flow = this.ctx.flows.get(i);
      const n = this.perSender.get(flow.from) ?? 0;
      if (n >= MAX_TRACES_PER_SENDER) continue;
      this.perSender.set(flow.from, n + 1);
      this.done.add(i);
      let l = out.get(flow.from);
      if (!l) out.set(flow.from, (l = []));
      l.push({ flow, r });
    }
    return out;
  }

  /** The probe entries of these traces, and where each trace's answer goes. */
  entries(items: Array<{ flow: PlannedFlow; r: MtuSearchResult }>): { probes: ProbeRequestBody['probes']; onTrace: (to: string, idx: number, t: MtuTrace) => void } {
    const byKey = new Map(items.map((x) => [`${x.flow.toAddress}/${x.flow.idx}`, x.r]));
    const probes: ProbeRequestBody['probes'] = items.map(({ flow, r }) => ({
      idx: flow.idx, check: this.ctx.check, transport: flow.transport, to: flow.toAddress, port: flow.port, framing: this.ctx.shape.framing,
      trace: { size: r.hi, small: this.floor, maxTtl: this.ctx.traceTtl ?? MAX_TRACE_TTL },
    }));
    return {
      probes,
      onTrace: (to, idx, t) => {
        const r = byKey.get(`${to}/${idx}`);
        if (r) r.trace = t;
      },
    };
  }
}

/**
 * How long a round's sender waits for a frag-needed: three times the median round trip the first pass
 * measured (any check; at most 10 000 samples) plus 20 ms, within the run's policy; 150 ms when none was
 * measured. The median, not the worst: one slow handshake under load must not stretch every round, and
 * the host-size probe already waited the full adaptive timeout, so a late ICMP here costs precision
 * (a size called lost), not the verdict.
 */
function roundTimeouts(ctx: MtuSearchContext): TimeoutPolicy {
  const rtts: number[] = [];
  for (let i = 0; i < ctx.flows.length && rtts.length < 10_000; i++) {
    const rtt = ctx.outcomes.get(i)?.rttMs;
    if (rtt !== null && rtt !== undefined) rtts.push(rtt);
  }
  rtts.sort((a, b) => a - b);
  const median = rtts.length ? rtts[Math.floor(rtts.length / 2)]! : -1;
  const p = ctx.timeouts;
  const wait = Math.round(Math.min(p.maxMs, Math.max(p.minMs, median < 0 ? 150 : 3 * median + 20)));
  return { initialMs: Math.max(10, wait), minMs: Math.max(1, Math.min(wait, p.minMs)), maxMs: Math.max(10, wait) };
}
