// Loss is not a firewall (DESIGN §2a, issue 11): how many of a flow's tries were lost, and how a path's loss
// adds up over its flows. classify() (verdict.ts) reads them as facts. Pure.
import type { Cause, PlannedFlow, SourceOutcome, WitnessSummary } from './types.js';

/** Default --max-loss: a path losing more than 5% of the probes' packets is `lossy` (Calico's BGP, etcd and Typha sessions suffer well before 20%). */
export const DEFAULT_MAX_LOSS = 0.05;

/** The causes that blame a firewall's silent drop (somewhere): never given to a flow of which some tries got
 *  through. (`rejected` is not among them: a REJECT's answer is the rule speaking, not a silence.) */
export const FIREWALL_CAUSES: ReadonlySet<Cause> = new Set<Cause>(['egress-blocked', 'path-blocked', 'ingress-blocked', 'blocked', 'return-blocked']);

export interface PathLoss {
  tries: number;
  lost: number;
}

/** Tries and lost tries of one flow, where the facts tell: TCP from the answered try, datagrams from the witness count. */
export function flowLoss(flow: Pick<PlannedFlow, 'transport' | 'sourceOnly'>, src: SourceOutcome | undefined, wit: WitnessSummary | undefined): PathLoss | null {
  if (!src || src.sendError || src.attempts === 0) return null;
  if (flow.transport === 'tcp') {
    if (src.reply === 'synack' || src.reply === 'rst') return { tries: src.attempts, lost: Math.min(src.attempts, src.lost ?? 0) };
    if (src.reply === 'icmp') return null; // an answer, but from something that refused it: not loss
    return { tries: src.attempts, lost: src.attempts };
  }
  if (flow.sourceOnly || !wit) return wit || flow.sourceOnly ? null : { tries: src.attempts, lost: src.attempts };
  const arrived = wit.socketSeen ? Math.min(src.attempts, wit.count) : 0;
  return { tries: src.attempts, lost: src.attempts - arrived };
}

/** Sum the losses of the flows of one path that got through at least once (a path that drops everything is a firewall's, not loss). */
export function addPathLoss(acc: PathLoss, l: PathLoss | null): void {
  if (!l || l.lost >= l.tries) return;
  acc.tries += l.tries;
  acc.lost += l.lost;
}
