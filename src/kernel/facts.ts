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
  /** Added: the packets to this node from the session's peers that its kernel dropped while the session was open, seen by the drop watch (src/kernel/drop-watch.ts). */
  drops?: KernelDrop[];
}

/** Packets of one flow the kernel dropped: addresses, IP protocol, ports (0 without), the kernel's last reason, how many. */
export interface KernelDrop {
  source: string;
  destination: string;
  proto: number;
  sport: number;
  dport: number;
  /** The reason's name without SKB_DROP_REASON_ (NETFILTER_DROP, IP_RPFILTER, NO_SOCKET, …), or the kernel's number. */
  reason: string;
  count: number;
}

const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)$/;

function parseDrops(v: unknown): KernelDrop[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const int = (x: unknown, max: number): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= max;
  const out: KernelDrop[] = [];
  for (const d of v.slice(0, 4096)) {
    if (typeof d !== 'object' || d === null) continue;
    const o = d as Record<string, unknown>;
    if (typeof o.source !== 'string' || !IPV4.test(o.source) || typeof o.destination !== 'string' || !IPV4.test(o.destination)) continue;
    if (!int(o.proto, 255) || !int(o.sport, 65535) || !int(o.dport, 65535) || !int(o.count, Number.MAX_SAFE_INTEGER)) continue;
    if (typeof o.reason !== 'string' || !/^[A-Z0-9_]{1,64}$/.test(o.reason)) continue;
    out.push({ source: o.source, destination: o.destination, proto: o.proto, sport: o.sport, dport: o.dport, reason: o.reason, count: o.count });
  }
  return out;
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
    ...(parseDrops(o.drops) ? { drops: parseDrops(o.drops)! } : {}),
    conntrack: {
      available: ct.available === true,
      error: str(ct.error),
      preexisting: Array.isArray(ct.preexisting) ? ct.preexisting.filter((x): x is string => typeof x === 'string') : [],
    },
  };
}

const PROTO = { tcp: 6, udp: 17, ipip: 4 } as const;

/**
 * The drop the destination's kernel recorded for a flow: packets from `from` to `to` of the flow's protocol,
 * to its port (TCP and UDP: the flow's port is the destination port; IP-in-IP has none). The one with the
 * most packets when several source ports match; undefined when none.
 */
export function flowDrop(drops: readonly KernelDrop[] | undefined, from: string, to: string, transport: 'tcp' | 'udp' | 'ipip', port: number | null): KernelDrop | undefined {
  let best: KernelDrop | undefined;
  for (const d of drops ?? []) {
    if (d.source !== from || d.destination !== to || d.proto !== PROTO[transport]) continue;
    if (transport !== 'ipip' && d.dport !== port) continue;
    if (!best || d.count > best.count) best = d;
  }
  return best;
}
