// What a destination's kernel says about the probes that reached its interface but not a socket, sent to
// the coordinator with the witness log: the reverse-path verdict per (source, arrival interface), the
// rp_filter drop counter, and the IP-in-IP conntrack entries that predate the session.

export interface ReversePathFact {
  /** Source address of the probes (as observed) and the interface they arrived on. */
  source: string;
  iif: string;
  /** The kernel's answer to `ip route get SELF from SOURCE iif IIF`: null accepted, else its error text. */
  lookupError: string | null;
  /** rp_filter in force on `iif` (max(all, iif)); null when unreadable. */
  rpFilter: number | null;
  /** Interface and next hop of this node's own route back to the source. */
  backDev: string | null;
  backVia: string | null;
}

export interface DestKernelFacts {
  reversePath: ReversePathFact[];
  /** TcpExtIPReversePathFilter drops counted while the session was open (null: unreadable). */
  rpFilterDrops: number | null;
  conntrack: { available: boolean; error: string | null; preexisting: string[] };
  /** Added: why the kernel's drop reason of a probe cannot be read on this node (src/kernel/drop-reason.ts). */
  dropReasonUnavailable?: string;
}

/** Validate what a responder sent (an old responder sends nothing: undefined). */
export function parseDestKernelFacts(v: unknown): DestKernelFacts | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const str = (x: unknown) => (typeof x === 'string' ? x : null);
  const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : null);
  const rp = Array.isArray(o.reversePath) ? o.reversePath : [];
  const ct = (typeof o.conntrack === 'object' && o.conntrack !== null ? o.conntrack : {}) as Record<string, unknown>;
  return {
    reversePath: rp
      .filter((r): r is Record<string, unknown> => typeof r === 'object' && r !== null && typeof (r as { source?: unknown }).source === 'string' && typeof (r as { iif?: unknown }).iif === 'string')
      .map((r) => ({ source: r.source as string, iif: r.iif as string, lookupError: str(r.lookupError), rpFilter: num(r.rpFilter), backDev: str(r.backDev), backVia: str(r.backVia) })),
    rpFilterDrops: num(o.rpFilterDrops),
    ...(typeof o.dropReasonUnavailable === 'string' ? { dropReasonUnavailable: o.dropReasonUnavailable.slice(0, 500) } : {}),
    conntrack: {
      available: ct.available === true,
      error: str(ct.error),
      preexisting: Array.isArray(ct.preexisting) ? ct.preexisting.filter((x): x is string => typeof x === 'string') : [],
    },
  };
}
