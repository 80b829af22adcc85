// Loss is not a firewall (DESIGN §2a): per-path loss from the first round's outcomes and witness logs,
// the flows worth another round (nothing got through, on a path where other tries did), and how a second
// round's outcome adds to the first. Pure.
import { CATALOGUE } from '../checks/catalogue.js';
import type { PlannedFlow, SourceOutcome, WitnessSummary } from '../types.js';
import { addPathLoss, flowLoss, type PathLoss } from '../verdict-facts.js';

/** Tries of the adaptive round: sent at once, so it costs one timeout whatever the count. */
export const EXTRA_TRIES = 6;

interface Evidence {
  /** What the destination witnessed of a flow, only when its proof was for exactly that flow (from that source). */
  witness: { forFlow(flow: PlannedFlow, fromAddress: string): WitnessSummary | undefined } | null;
}

type Flows = { readonly length: number; get(i: number): PlannedFlow };
type Outcomes = { get(i: number): SourceOutcome | undefined };

/**
 * A sized probe (catalogue `sizing`: mtu) that does not arrive tells the path's size limit, not its loss: it
 * neither counts towards a path's loss nor goes again in the loss round (the mtu search is its retry). Its
 * own tries and lost copies are still counted on its result (verdict.ts).
 */
const sized = (f: PlannedFlow): boolean => CATALOGUE[f.check]?.sizing !== undefined;

/** Loss of every path `from>to` over the flows that got through at least once. */
export function pathLosses(flows: Flows, outcomes: Outcomes, nodes: ReadonlyMap<string, Evidence>, addressOf: ReadonlyMap<string, string>): Map<string, PathLoss> {
  const paths = new Map<string, PathLoss>();
  for (let i = 0; i < flows.length; i++) {
    const f = flows.get(i);
    const src = outcomes.get(i);
    if (!src || sized(f)) continue;
    const wit = f.sourceOnly ? undefined : nodes.get(f.to)?.witness?.forFlow(f, addressOf.get(f.from) ?? '');
    if (!f.sourceOnly && !nodes.get(f.to)?.witness) continue;
    const key = `${f.from}>${f.to}`;
    let acc = paths.get(key);
    if (!acc) paths.set(key, (acc = { tries: 0, lost: 0 }));
    addPathLoss(acc, flowLoss(f, src, wit));
  }
  return paths;
}

/** Flows to probe again, by source node: all of their tries lost, on a path that lost only some of others' (for TCP, either way). */
export function retryPlan(flows: Flows, outcomes: Outcomes, nodes: ReadonlyMap<string, Evidence>, addressOf: ReadonlyMap<string, string>): Map<string, number[]> {
  const paths = pathLosses(flows, outcomes, nodes, addressOf);
  const again = new Map<string, number[]>();
  for (let i = 0; i < flows.length; i++) {
    const f = flows.get(i);
    if (sized(f)) continue;
    // A TCP try crosses both ways (the SYN there, the answer back): loss on either path may explain it.
    const lossy = (k: string) => (paths.get(k)?.lost ?? 0) > 0;
    if (!lossy(`${f.from}>${f.to}`) && !(f.transport === 'tcp' && !f.sourceOnly && lossy(`${f.to}>${f.from}`))) continue;
    const src = outcomes.get(i);
    const wit = f.sourceOnly ? undefined : nodes.get(f.to)?.witness?.forFlow(f, addressOf.get(f.from) ?? '');
    const l = flowLoss(f, src, wit);
    if (!l || l.lost < l.tries) continue;
    let list = again.get(f.from);
    if (!list) again.set(f.from, (list = []));
    list.push(i);
  }
  return again;
}

/** The first round's outcome with a later round's added: tries add up, the later answer counts. */
export function mergeOutcomes(first: SourceOutcome | undefined, later: SourceOutcome): SourceOutcome {
  if (!first) return later;
  const answered = !!later.reply;
  return {
    ...first,
    ...(answered ? { reply: later.reply, replyFrom: later.replyFrom, icmp: later.icmp, rttMs: later.rttMs } : {}),
    sendError: first.sendError ?? later.sendError,
    left: first.left === true || later.left === true ? true : (later.left ?? first.left),
    leftOn: first.leftOn ?? later.leftOn,
    attempts: first.attempts + later.attempts,
    // Every first-round try went unanswered (that is why it went again).
    lost: first.attempts + (later.lost ?? (answered ? 0 : later.attempts)),
    srcPort: later.srcPort ?? first.srcPort,
  };
}
