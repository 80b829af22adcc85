// The mtu check's join: DF probes at the host MTU, the search's answer and the ICMP that came back ->
// pass, mtu-limited (the limit was signalled: frag-needed, or the sender's kernel knew it) or
// mtu-blackhole (large packets vanish silently). Anything that stops small probes too is not an MTU
// limit: those flows get the ordinary verdict (classify in verdict.ts). Pure, like verdict.ts.
import { CATALOGUE } from './checks/catalogue.js';
import { calicoMtuAdvice } from './checks/mtu.js';
import type { SearchEnd } from './checks/mtu-search.js';
import type { CheckId, FlowResult, Hop, MtuTrace, PlannedFlow, SourceOutcome, WitnessSummary } from './types.js';
import { classify, describe, toResult, type Classified, type Evidence, type JoinContext } from './verdict.js';
import { DEFAULT_MAX_LOSS } from './verdict-facts.js';

/** What the coordinator's search found for one flow whose host-size probe did not arrive. */
export interface MtuSearchResult {
  /** Largest size witnessed; null when none arrived. */
  lo: number | null;
  /** Smallest size known not to arrive. */
  hi: number;
  end: SearchEnd;
  rounds: number;
  /** The first frag-needed quoting any of the search's probes. */
  fragNeeded: { from: string; mtu: number; size: number } | null;
  refusedSize: number | null;
  kernelPmtuAfter: number | null;
  /** The TTL-limited trace of a silent limit, when one was sent. */
  trace?: MtuTrace;
}

/**
 * The hop a trace locates: the farthest hop a too-large probe reached (the limit is on its next link), or,
 * when none was reached, the first hop a small probe names (the limit is on the link into it). None
 * when the farthest TTL tried was answered too (the limit lies beyond the trace) or nothing answered.
 */
export function hopFromTrace(trace: MtuTrace | undefined, pathMtu: number): Hop | null {
  if (!trace) return null;
  const far = trace.reached.reduce<{ ttl: number; from: string } | null>((a, b) => (!a || b.ttl > a.ttl ? b : a), null);
  if (far) return far.ttl >= trace.maxTtl ? null : { address: far.from, mtu: pathMtu, by: 'time-exceeded', ttl: far.ttl, link: 'after' };
  return trace.first ? { address: trace.first, mtu: pathMtu, by: 'time-exceeded', ttl: 1, link: 'before' } : null;
}

/** The size that counts as arrived: on the destination's interface when it captures, else at its socket. */
function largestArrived(wit: WitnessSummary | undefined, capture: boolean): number {
  if (!wit) return 0;
  return (capture ? wit.ifaceSize : wit.socketSize) ?? 0;
}

export function classifyMtu(flow: PlannedFlow, ev: Evidence, carrier: CheckId, search?: MtuSearchResult): Classified {
  const m = ev.src?.mtu;
  // A frag-needed is this check's evidence, not a reject: the ordinary join must not see it as one.
  const plainSrc: SourceOutcome | undefined = ev.src && ev.src.reply === 'icmp' && ev.src.icmp?.type === 3 && ev.src.icmp.code === 4 ? { ...ev.src, reply: null, replyFrom: null, icmp: null } : ev.src;
  const base = classify(flow, { ...ev, src: plainSrc });
  const f = base.facts;
  f.encapsulation = carrier;
  if (!m || base.verdict === 'unknown' || base.cause === 'egress-blocked' || base.cause === 'no-route') return base;
  const hostMtu = m.hostMtu;
  if (hostMtu === null) return { ...base, verdict: 'unknown', cause: 'not-probed', where: null };
  f.hostMtu = hostMtu;
  const frag = m.fragNeeded ?? search?.fragNeeded ?? null;
  const refused = minOf(m.refusedSize, search?.refusedSize ?? null);
  if (m.kernelPmtu !== null && m.kernelPmtu < hostMtu) f.kernelPmtu = m.kernelPmtu;
  const after = search?.kernelPmtuAfter ?? m.kernelPmtuAfter;
  if (after !== null && after < hostMtu && after !== f.kernelPmtu) f.kernelPmtuLearnt = after;
  if (search) f.searchRounds = search.rounds;

  const arrived = largestArrived(ev.wit, ev.capture);
  if (arrived >= hostMtu) {
    f.pathMtu = hostMtu;
    return base.verdict === 'pass' ? { ...base, cause: null, where: null } : base;
  }
  const pathMtu = search?.lo ?? null;
  // Nothing arrived at any size: not an MTU limit (a firewall, a route): the ordinary verdict stands.
  if (pathMtu === null || !(ev.wit?.socketSeen ?? false)) {
    if (frag) f.hop = { address: frag.from, mtu: frag.mtu };
    return base;
  }
  f.pathMtu = pathMtu;
  // Copies of the host size that did not arrive were cut by size, not lost (the witness count mixes in the
  // search's smaller probes): no loss facts on a size limit.
  for (const k of ['lost', 'pathLost', 'pathTries', 'maxLoss'] as const) delete f[k];
  if (search && search.end === 'bounded' && search.hi - 1 > pathMtu) f.pathMtuBelow = search.hi;
  if (refused !== null) f.refusedSize = refused;
  if (frag) f.hop = { address: frag.from, mtu: frag.mtu };
  else {
    const h = hopFromTrace(search?.trace, pathMtu);
    if (h) f.hop = h;
  }
  const signalled = frag !== null || refused !== null || f.kernelPmtu !== undefined;
  // A silent limit is only the absence of the host-size copies. On a path that loses packets, loss alone
  // may explain that absence: when it would with a chance above 1 in 1000 (the path's loss rate to the
  // power of the copies sent), a size limit cannot be told from loss, and the result says lossy.
  if (!signalled && ev.pathLoss && ev.pathLoss.tries > 0 && ev.pathLoss.lost > 0) {
    const rate = ev.pathLoss.lost / ev.pathLoss.tries;
    const copies = Math.max(1, ev.src?.attempts ?? 1);
    if (rate ** copies > LOSS_EXPLAINS) {
      f.pathLost = ev.pathLoss.lost;
      f.pathTries = ev.pathLoss.tries;
      f.maxLoss = ev.maxLoss ?? DEFAULT_MAX_LOSS;
      f.hostCopies = copies;
      f.tries = copies;
      f.lost = copies;
      return { verdict: 'fail', cause: 'lossy', where: 'path', rejectedBy: null, facts: f };
    }
  }
  // The sender's own kernel refusing the size: its route leaves by an interface smaller than its address's.
  const where = refused !== null && frag === null ? 'source' : 'path';
  return { verdict: 'fail', cause: signalled ? 'mtu-limited' : 'mtu-blackhole', where, rejectedBy: frag?.from ?? null, facts: f };
}

/** Above this chance that loss alone lost every host-size copy, a silent limit is not concluded. */
const LOSS_EXPLAINS = 0.001;

function minOf(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.min(a, b);
}

function kernelNote(flow: PlannedFlow, c: Classified): string {
  const f = c.facts;
  const notes: string[] = [];
  if (f.kernelPmtu !== undefined) notes.push(` ${flow.from}'s kernel already knew a path MTU of ${f.kernelPmtu} for ${flow.toAddress} before the test (IP_MTU); the probes were sent past it, at full size.`);
  if (f.kernelPmtuLearnt !== undefined)
    notes.push(` These probes' frag-needed taught ${flow.from}'s kernel a path MTU of ${f.kernelPmtuLearnt} for ${flow.toAddress}: it expires on its own (net.ipv4.route.mtu_expires, 10 min by default); \`ip route flush cache\` on ${flow.from} clears it now.`);
  return notes.join('');
}

/** The sentence of an mtu result; the ordinary describe() for the causes the mtu check does not own. */
export function describeMtu(flow: PlannedFlow, c: Classified): string {
  const f = c.facts;
  const { from, to } = flow;
  const framing = CATALOGUE[f.encapsulation ?? 'ipip'].title;
  const sizeWords = (p: number) => (f.pathMtuBelow !== undefined ? `between ${p} and ${f.pathMtuBelow - 1} bytes (the search stopped at its bound)` : `${p} bytes`);
  if (c.verdict === 'pass' && f.hostMtu !== undefined) {
    return `${f.hostMtu}-byte DF probes (${framing}, ${from}'s host MTU) arrived at ${to}: the path carries the host MTU.${kernelNote(flow, c)}`;
  }
  if (c.cause === 'not-probed') return `${from} could not read the MTU of the interface holding its address, so it sent no mtu probe to ${to}.`;
  if (c.cause === 'lossy' && f.hostCopies !== undefined && f.pathTries) {
    const rate = f.pathLost! / f.pathTries;
    return `cannot tell a size limit from loss: DF probes of up to ${f.pathMtu} bytes arrive at ${to}, none of the ${f.hostCopies} ${f.hostMtu}-byte copies did, but the path ${from}→${to} loses packets (${f.pathLost} of ${f.pathTries} tries of its other flows, ${Math.round(rate * 1000) / 10}%), which would lose all ${f.hostCopies} copies ${(rate ** f.hostCopies * 100).toFixed(1)}% of the time — fix the loss (check the links and devices between them), then test again.`;
  }
  if (c.cause !== 'mtu-blackhole' && c.cause !== 'mtu-limited') return describe(flow, c);
  const pathMtu = f.pathMtu ?? 0;
  const advice = calicoMtuAdvice(pathMtu);
  const upTo = `DF probes of up to ${sizeWords(pathMtu)} arrive at ${to}, ${from}'s host MTU (${f.hostMtu}) does not`;
  if (c.cause === 'mtu-blackhole') {
    const h = f.hop;
    const link = !h
      ? `a link between ${from} and ${to}`
      : h.link === 'before'
        ? `the first link, from ${from} to ${h.address} (TTL-limited probes: not even the first hop answered a large one, it answered a small one)`
        : `the link after ${h.address} (${h.ttl} hop${h.ttl === 1 ? '' : 's'} from ${from}: the farthest that answered TTL-limited large probes)`;
    return `large packets vanish without a word: ${upTo}, and no ICMP fragmentation-needed came back — ${link} carries less than the host MTU and the ICMP that would say so is dropped or never sent (a firewall dropping ICMP type 3 code 4, or a link whose receiver discards oversize frames); pod traffic in ${framing} hangs once packets are large. Fix: ${advice}.${kernelNote(flow, c)}`;
  }
  const how = f.hop
    ? `${f.hop.address} answered with ICMP fragmentation needed (next-hop MTU ${f.hop.mtu})`
    : f.refusedSize !== undefined
      ? `${from}'s own kernel refused ${f.refusedSize}-byte packets to ${flow.toAddress} (EMSGSIZE): its route there leaves by an interface with a smaller MTU than the one holding ${from}'s address`
      : `${from}'s kernel knows the limit (IP_MTU ${f.kernelPmtu})`;
  return `the path is limited: ${upTo}; ${how}. Path MTU discovery works here, but Calico sets its tunnels to the host MTU minus the overhead, so every large pod packet costs a drop and a retry. Fix: ${advice}.${kernelNote(flow, c)}`;
}

/** Join one mtu flow into its result, with pathMtu / hostMtu / hop / kernelPmtu on the result itself. */
export function joinMtu(flow: PlannedFlow, src: SourceOutcome | undefined, wit: WitnessSummary | undefined, ctx: JoinContext, carrier: CheckId, search?: MtuSearchResult): FlowResult {
  const c = classifyMtu(flow, { ...ctx, src, wit }, carrier, search);
  const r = toResult(flow, src, wit, c, describeMtu(flow, c));
  const f = c.facts;
  if (f.hostMtu !== undefined) {
    r.hostMtu = f.hostMtu;
    r.pathMtu = f.pathMtu ?? null;
    r.hop = f.hop ?? null;
    r.kernelPmtu = f.kernelPmtu ?? null;
  }
  return r;
}
