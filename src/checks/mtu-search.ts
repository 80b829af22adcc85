// The mtu check's search for the largest outer size that arrives: pure, bounded and paced. Each round
// tries a few sizes spread over the interval still open (one size per round is a binary search; more
// per round costs bytes, saves rounds, and every round costs a control round trip); the answer is the
// largest size the destination witnessed. A next-hop MTU named by an ICMP "fragmentation needed" is
// taken as the upper bound and tried at once. Arrival is taken as monotonic in size: a smaller packet passes wherever a larger one did.
// The first round also tries the common path MTUs and the size above each (most real limits end there),
// and a round with few sizes left tries them all: a 1500-byte host's search takes 1-2 rounds, not 3.

export interface SearchOptions {
  /** Smallest size tried: below it the path does not carry the framing at all (not an MTU limit). */
  floor: number;
  /** Sizes per round, ≥ 1. */
  perRound: number;
  /** Rounds at most: the search stops there with an interval instead of a value. */
  maxRounds: number;
  /**
   * Path MTUs met in practice, tried in the first round with the size one above each (1400 arriving
   * and 1401 not ends the search in that round): most real limits are one of these.
   */
  common?: readonly number[];
  /** When no more than this many sizes are still open, the round tries them all (one last round). */
  dense?: number;
}

/** Sizes one round may send at most (the control protocol's MAX_PROBE_SIZES). */
export const MAX_SIZES_PER_ROUND = 32;

/**
 * PPPoE 1492, IP-in-IP 1480, VXLAN 1450, a VPN's 1440, WireGuard 1420, the cloud and overlay values
 * 1400 / 1380, IPv6's minimum 1280: the path MTUs an operator meets (Calico's MTU docs, RFC 2516, RFC 8200).
 */
export const COMMON_PATH_MTUS: readonly number[] = Object.freeze([1492, 1480, 1450, 1440, 1420, 1400, 1380, 1280]);

export const DEFAULT_SEARCH: SearchOptions = Object.freeze({ floor: 576, perRound: 12, maxRounds: 6, common: COMMON_PATH_MTUS, dense: MAX_SIZES_PER_ROUND });

export type SearchEnd = 'converged' | 'bounded' | 'nothing-arrives';

export interface SearchState {
  /** Largest size known to arrive; null while none is. */
  lo: number | null;
  /** Smallest size known not to arrive. */
  hi: number;
  rounds: number;
  /** Set when the search is over. */
  end: SearchEnd | null;
  /** A next-hop MTU reported by frag-needed, not yet tried. */
  hint: number | null;
}

function checkOptions(o: SearchOptions): void {
  if (!Number.isInteger(o.floor) || o.floor < 1) throw new RangeError(`floor must be a positive integer, got ${o.floor}`);
  if (!Number.isInteger(o.perRound) || o.perRound < 1) throw new RangeError(`perRound must be ≥ 1, got ${o.perRound}`);
  if (!Number.isInteger(o.maxRounds) || o.maxRounds < 1) throw new RangeError(`maxRounds must be ≥ 1, got ${o.maxRounds}`);
  if (o.dense !== undefined && (!Number.isInteger(o.dense) || o.dense < 0 || o.dense > MAX_SIZES_PER_ROUND)) throw new RangeError(`dense must be 0..${MAX_SIZES_PER_ROUND}, got ${o.dense}`);
  if (o.perRound > MAX_SIZES_PER_ROUND - 1) throw new RangeError(`perRound must be ≤ ${MAX_SIZES_PER_ROUND - 1}, got ${o.perRound}`);
}

/** Start after `failedSize` (the host MTU) did not arrive; `hint`: the next-hop MTU its frag-needed named. */
export function startSearch(failedSize: number, o: SearchOptions = DEFAULT_SEARCH, hint: number | null = null): SearchState {
  checkOptions(o);
  if (!Number.isInteger(failedSize) || failedSize < 1) throw new RangeError(`failedSize must be a positive integer, got ${failedSize}`);
  if (failedSize <= o.floor) return { lo: null, hi: failedSize, rounds: 0, end: 'nothing-arrives', hint: null };
  const useful = hint !== null && Number.isInteger(hint) && hint >= o.floor && hint < failedSize;
  return { lo: null, hi: useful ? hint + 1 : failedSize, rounds: 0, end: null, hint: useful ? hint : null };
}

/** The sizes of the next round, ascending; empty when the search is over. */
export function nextSizes(s: SearchState, o: SearchOptions = DEFAULT_SEARCH): number[] {
  if (s.end) return [];
  const out = new Set<number>();
  const low = s.lo ?? o.floor - 1; // sizes strictly between low and hi are open
  const open = s.hi - low - 1;
  const inside = (x: number) => x > low && x < s.hi;
  // Few enough left: try every one, and the search ends with this round.
  if (o.dense !== undefined && open <= o.dense) {
    for (let x = low + 1; x < s.hi; x++) out.add(x);
    return [...out];
  }
  if (s.lo === null) out.add(o.floor);
  if (s.hint !== null && inside(s.hint)) out.add(s.hint);
  const base = out.size;
  if (s.rounds === 0) {
    for (const m of o.common ?? []) {
      if (out.size + 2 > MAX_SIZES_PER_ROUND - o.perRound) break;
      if (inside(m)) out.add(m);
      if (inside(m + 1)) out.add(m + 1);
    }
  }
  const want = Math.max(0, Math.min(Math.min(open, o.perRound) - base, MAX_SIZES_PER_ROUND - out.size));
  // Evenly spread over (low, hi): with `want` points the open interval shrinks by want + 1.
  for (let j = 1; j <= want; j++) out.add(low + Math.round((j * (s.hi - low)) / (want + 1)));
  return [...out].filter((x) => x > low && x < s.hi).sort((a, b) => a - b);
}

/**
 * The state after a round: `sent` the sizes tried, `largestArrived` the largest size of this flow the
 * destination has witnessed so far (0: none), `hint` a next-hop MTU a frag-needed named (or null).
 */
export function advance(s: SearchState, sent: readonly number[], largestArrived: number, hint: number | null, o: SearchOptions = DEFAULT_SEARCH): SearchState {
  if (s.end) return s;
  let lo = s.lo;
  let hi = s.hi;
  if (largestArrived >= o.floor && largestArrived < s.hi && (lo === null || largestArrived > lo)) lo = largestArrived;
  for (const x of sent) if (x > (lo ?? 0) && x < hi) hi = x;
  // A router that says "fragmentation needed, next hop M" will not forward more than M: hi is M + 1.
  if (hint !== null && hint >= o.floor && hint > (lo ?? 0) && hint + 1 < hi) hi = hint + 1;
  const tried = new Set(sent);
  let nextHint = hint !== null && !tried.has(hint) ? hint : s.hint !== null && !tried.has(s.hint) ? s.hint : null;
  if (nextHint !== null && (nextHint <= (lo ?? o.floor - 1) || nextHint >= hi)) nextHint = null;
  const rounds = s.rounds + 1;
  let end: SearchEnd | null = null;
  if (lo === null && sent.includes(o.floor)) end = 'nothing-arrives';
  else if (lo !== null && hi - lo <= 1) end = 'converged';
  else if (rounds >= o.maxRounds) end = 'bounded';
  return { lo, hi, rounds, end, hint: nextHint };
}

/**
 * When each copy of a round's probes goes: every size once, then every size again (a burst of loss
 * then takes one copy of several sizes, not every copy of one), `spacingMs` apart. Paced, because
 * routers rate-limit the ICMP errors (Linux: a burst of 6, then one a second per peer).
 */
export function roundSchedule(sizes: readonly number[], copies: number, spacingMs: number): Array<{ size: number; copy: number; atMs: number }> {
  const out: Array<{ size: number; copy: number; atMs: number }> = [];
  const desc = [...sizes].sort((a, b) => b - a);
  for (let copy = 0; copy < copies; copy++) for (const size of desc) out.push({ size, copy, atMs: out.length * spacingMs });
  return out;
}

/** The worst-case number of rounds for an interval of `width` open sizes (for benchmarks and docs). */
export function roundsFor(width: number, perRound: number): number {
  let open = width;
  let rounds = 0;
  while (open > 0) {
    open = Math.floor(open / (perRound + 1));
    rounds++;
  }
  return rounds;
}
