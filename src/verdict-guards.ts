// Evidence that takes the meaning out of a missing witness (DESIGN §2a): when a responder on the flow shed
// or lost packets during the run (a flood shaped like probes, a full receive queue), "not seen" may be the
// load's doing, so a failure built on it becomes unknown. Failures built on positive evidence stay.
import type { FlowResult } from './types.js';

export interface FlowLoad {
  /** Packets the source's capture lost or shed during the run (it may have missed the probe leaving). */
  sourceShed: number;
  /** Packets the destination's witness lost or shed during the run. */
  destinationShed: number;
  /** Probe-shaped packets with a wrong proof the destination saw during the run. */
  destinationForged: number;
  /** Names, for the words. */
  from: string;
  to: string;
}

/** Causes that rest on something not being seen (a witness, a capture, a reply). */
const FROM_ABSENCE = new Set(['egress-blocked', 'path-blocked', 'ingress-blocked', 'blocked', 'rejected', 'return-blocked']);

/** `r` with the load facts added and, where the load could explain a missing sighting, turned unknown. */
export function guardLoad(r: FlowResult, load: FlowLoad, sentRefused: boolean): FlowResult {
  const shed = load.sourceShed + load.destinationShed;
  if (load.destinationForged > 0) r.forgedProbes = load.destinationForged;
  if (shed > 0) r.shedPackets = shed;
  if (shed === 0 || r.verdict !== 'fail' || sentRefused || !FROM_ABSENCE.has(r.cause ?? '')) return r;
  const who = [load.sourceShed > 0 ? `${load.from} (${load.sourceShed})` : null, load.destinationShed > 0 ? `${load.to} (${load.destinationShed})` : null].filter(Boolean).join(' and ');
  return {
    ...r,
    verdict: 'unknown',
    cause: 'overloaded',
    detail:
      `cannot tell: the responder on ${who} shed or lost packets under load during the run (a flood shaped like probes?), ` +
      `so what it did not see proves nothing. Without the load this would read: ${r.detail}`,
  };
}
