// --explain on the coordinator: after the normal run, every flow blamed on a host is probed once more in
// a session of its own, with the blamed host tracing those probes (DESIGN §2a: the rule a trace names),
// and the rule is attached to the flow's result; the diagnosis then quotes it. No flow blamed on a host:
// nothing is contacted at all.
import { randomBytes } from 'node:crypto';
import { CATALOGUE } from '../checks/catalogue.js';
import type { TimeoutPolicy } from '../checks/rtt.js';
import { packInbound, type InboundFlow, type ProbeRequestBody } from '../control/protocol.js';
import { ControlClient } from '../coordinator/client.js';
import type { Inventory } from '../coordinator/inventory.js';
import type { CheckId, FlowResult, Report } from '../types.js';
import { directionOf, ruleDetail } from './advice.js';
import type { ExplainArmResponse, ExplainCollectResponse, ExplainSummary, TraceSpec } from './types.js';

/**
 * One try, a short wait: the blamed host traces the first packet as it is dropped, so the source waiting
 * out a silent SYN adds nothing but time (a reply after the wait changes nothing here).
 */
export const EXPLAIN_TIMEOUTS: TimeoutPolicy = { initialMs: 250, minMs: 100, maxMs: 250 };

export interface ExplainOptions {
  secret: Buffer;
  /** Tries per re-sent probe (default 1). */
  tries?: number;
  timeouts?: TimeoutPolicy;
  controlTimeoutMs?: number;
  /** Force counters (hosts where tracing misbehaves). */
  method?: 'trace' | 'counters';
  /** How long a host waits for trace events of the last probes. */
  waitMs?: number;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

/**
 * Flows traced per blamed host: each is one rule in the trace table, evaluated for every packet the host
 * sees while armed; on a node whose firewall drops a whole mesh the same few rules drop them all.
 */
export const MAX_TRACED_PER_HOST = 256;

/** The explain session's lease: every call renews it, and its hold connection ends it with this process. */
export const EXPLAIN_LEASE_MS = 120_000;

/** One flow to explain: its result, the host blamed, and which of its packets that host traces. */
export interface Blame {
  result: number;
  host: string;
  direction: TraceSpec['direction'];
}

/** The flows the verdict blames on a host's own firewall (pure). A reject blamed on a router is not one. */
export function blamedFlows(results: readonly FlowResult[], addressOf: ReadonlyMap<string, string>): Blame[] {
  const out: Blame[] = [];
  results.forEach((r, i) => {
    if (r.verdict !== 'fail' || r.sourceOnly || r.where === 'path') return;
    // A carried check (mtu) travels as its carrier, whose own flow is traced; re-sent as itself it would take the wrong shape.
    if (CATALOGUE[r.check].carriedBy) return;
    const direction = directionOf(r.cause);
    if (!direction) return;
    if (r.cause === 'rejected' && (!r.rejectedBy || r.rejectedBy !== (addressOf.get(r.to) ?? r.toAddress))) return;
    const host = direction === 'out' ? r.from : r.to;
    if (!addressOf.has(host)) return;
    out.push({ result: i, host, direction });
  });
  return out;
}

interface Flow {
  blame: Blame;
  check: CheckId;
  from: string;
  toAddress: string;
  port: number | null;
  idx: number;
  attempts: number;
}

/** Explain a finished report in place and return it (with `rule` on the flows named; a diagnosis made before is dropped). */
export async function explainReport(report: Report, inv: Inventory, o: ExplainOptions): Promise<Report> {
  const addressOf = new Map(inv.nodes.map((n) => [n.name, n.address]));
  const all = blamedFlows(report.results, addressOf);
  if (all.length === 0) return report;
  const perHost = new Map<string, number>();
  const blames: Blame[] = [];
  for (const b of all) {
    const n = (perHost.get(b.host) ?? 0) + 1;
    perHost.set(b.host, n);
    if (n <= MAX_TRACED_PER_HOST) blames.push(b);
    else report.results[b.result]!.explainNote = `not traced: only the first ${MAX_TRACED_PER_HOST} flows blamed on ${b.host} are (see theirs: the same rules usually drop them all)`;
  }
  const byName = new Map(inv.nodes.map((n) => [n.name, n]));
  const sessionId = randomBytes(8).toString('hex');
  const nextIdx = new Map<string, number>();
  const flows: Flow[] = blames.map((b) => {
    const r = report.results[b.result]!;
    const idx = nextIdx.get(r.to) ?? 0;
    nextIdx.set(r.to, idx + 1);
    return { blame: b, check: r.check, from: r.from, toAddress: addressOf.get(r.to) ?? r.toAddress ?? '', port: CATALOGUE[r.check].transport === 'ipip' ? null : (r.port ?? report.ports?.[r.check] ?? CATALOGUE[r.check].defaultPort), idx, attempts: 0 };
  });
  const nodes = new Set<string>();
  for (const f of flows) {
    nodes.add(f.from);
    nodes.add(f.blame.host);
  }
  const clients = new Map<string, ControlClient>();
  for (const n of nodes) {
    const node = byName.get(n);
    if (node) clients.set(n, new ControlClient(node.control.host, node.control.port, o.secret, node.address, o.controlTimeoutMs ?? 5000));
  }
  const ports: Partial<Record<CheckId, number>> = {};
  for (const [c, p] of Object.entries(report.ports ?? {})) if (typeof p === 'number') ports[c as CheckId] = p;
  for (const f of flows) if (f.port !== null) ports[f.check] = f.port;
  const summary: ExplainSummary = { flows: flows.length, named: 0, hosts: [] };
  const notes = new Map<number, string>();
  const opened = new Set<string>();
  const hostSpecs = new Map<string, TraceSpec[]>();
  flows.forEach((f, id) => {
    const r = report.results[f.blame.result]!;
    // Behind NAT the host saw another source: trace what it sees (the probe's tag still makes it ours).
    const src = addressOf.get(r.from) ?? '';
    const peer = f.blame.direction === 'out' ? f.toAddress : (r.observedSource ?? src);
    const list = hostSpecs.get(f.blame.host) ?? [];
    const spec: TraceSpec = { id, direction: f.blame.direction, check: f.check, transport: CATALOGUE[f.check].transport, peer, port: f.port, idx: f.idx };
    if (f.blame.direction !== 'out' && peer !== src) spec.src = src;
    list.push(spec);
    hostSpecs.set(f.blame.host, list);
  });
  o.log?.(`explaining ${flows.length} host-side failure(s): tracing on ${[...hostSpecs.keys()].join(', ')}`);
  const holds = new AbortController();
  try {
    await Promise.all(
      [...clients].map(async ([name, client]) => {
        const mine = flows.filter((f) => f.from === name);
        // The flows this node may witness: each probe proves one of them.
        const inbound: InboundFlow[] = flows
          .filter((f) => report.results[f.blame.result]!.to === name)
          .map((f) => ({ idx: f.idx, src: addressOf.get(f.from) ?? '', check: f.check, transport: CATALOGUE[f.check].transport, port: f.port }));
        try {
          await client.openSession({ id: sessionId, peers: [...new Set(mine.map((f) => f.toAddress))], ports, ttlMs: EXPLAIN_LEASE_MS, inbound: packInbound(inbound) }, o.signal);
          opened.add(name);
          // The session (and the host's trace table) ends with this process, however it ends.
          void client.hold(sessionId, holds.signal);
        } catch (err) {
          for (const [id, f] of flows.entries()) if (f.from === name || f.blame.host === name) notes.set(id, `could not open an explain session on ${name}: ${(err as Error).message}`);
        }
      }),
    );
    // Arm every blamed host before any probe leaves.
    const armed = new Set<string>();
    await Promise.all(
      [...hostSpecs].map(async ([host, specs]) => {
        if (!opened.has(host)) return;
        try {
          const a = await clients.get(host)!.explain<ExplainArmResponse>(sessionId, { op: 'arm', specs, ttlMs: 60_000, ...(o.method ? { method: o.method } : {}) }, o.signal);
          summary.hosts.push({ node: host, method: a.method, note: a.note, added: a.added, removed: null });
          if (a.armed) armed.add(host);
          else for (const s of specs) notes.set(s.id, `${host} could not trace: ${a.note ?? 'unknown reason'}`);
        } catch (err) {
          for (const s of specs) notes.set(s.id, `${host} could not trace: ${(err as Error).message}`);
        }
      }),
    );
    // The sources send the blamed flows' probes again, in the explain session.
    await Promise.all(
      [...clients].map(async ([name, client]) => {
        const mine = flows.map((f, id) => ({ f, id })).filter(({ f }) => f.from === name && armed.has(f.blame.host));
        if (mine.length === 0 || !opened.has(name)) return;
        const back = new Map(mine.map(({ f }) => [`${f.toAddress}/${f.idx}`, f]));
        const probes: ProbeRequestBody['probes'] = mine.map(({ f }) => ({ idx: f.idx, check: f.check, transport: CATALOGUE[f.check].transport, to: f.toAddress, port: f.port }));
        try {
          await client.probe(
            sessionId,
            { probes, tries: o.tries ?? 1, timeouts: o.timeouts ?? EXPLAIN_TIMEOUTS, concurrency: 64, spacingMs: 30 },
            (line) => {
              if ('outcome' in line) {
                const f = back.get(`${line.outcome.toAddress}/${line.outcome.idx}`);
                if (f) f.attempts = line.outcome.attempts;
              }
            },
            o.signal,
          );
        } catch (err) {
          for (const { id } of mine) notes.set(id, `${name} could not send the probes again: ${(err as Error).message}`);
        }
      }),
    );
    await Promise.all(
      [...hostSpecs].map(async ([host, specs]) => {
        if (!armed.has(host)) return;
        const sent: Record<string, number> = {};
        for (const s of specs) sent[String(s.id)] = flows[s.id]!.attempts;
        try {
          const c = await clients.get(host)!.explain<ExplainCollectResponse>(sessionId, { op: 'collect', sent, waitMs: o.waitMs ?? 400 }, o.signal);
          const h = summary.hosts.find((x) => x.node === host);
          if (h) h.removed = c.removed;
          for (const oc of c.outcomes) {
            const f = flows[oc.id];
            if (!f) continue;
            const r = report.results[f.blame.result]!;
            if (oc.rule) {
              r.rule = oc.rule;
              r.facts = { ...r.facts, rule: oc.rule };
              // A traced rule in the destination's OUTPUT settles what the verdict alone could not: not the return path.
              if (r.cause === 'return-blocked' && oc.rule.method === 'trace') r.where = 'destination';
              r.detail = `${r.detail} ${ruleDetail(f.blame.host, oc.rule)}`;
              summary.named++;
            } else notes.set(oc.id, oc.note ?? 'no rule named');
          }
        } catch (err) {
          for (const s of specs) notes.set(s.id, `could not collect the trace from ${host}: ${(err as Error).message}`);
        }
      }),
    );
  } finally {
    await Promise.all([...opened].map((n) => clients.get(n)!.closeSession(sessionId)));
    holds.abort();
    for (const c of clients.values()) c.close();
  }
  for (const [id, note] of notes) {
    const r = report.results[flows[id]!.blame.result]!;
    if (!r.rule) r.explainNote = note;
  }
  report.explain = summary;
  // The diagnosis, made once from the final results, quotes these rules (report/diagnosis.ts).
  delete report.diagnosis;
  return report;
}
