// Candidate groups of the diagnosis: every place that could have dropped a failed flow (its receiver's
// firewall, its sender's, the path to the receiver, between their /24s, …) is a group of the failures it
// would explain. One builder per statement kind says which failures join its groups and how many flows
// its place could affect at most (its scope: smaller = more specific). Pure.
import { CATALOGUE } from '../../checks/catalogue.js';
import type { FlowResult } from '../../types.js';
import type { CoverSet } from './cover.js';
import { slot, STRIDE, type ResultIndex } from './results.js';

/** Kinds of candidate group, in the order that wins a tie of size and scope. */
export enum Kind {
  IngressNode = 0, // node's INPUT drops several checks from every node
  EgressNode = 1,
  Ingress = 2, // (to, check)
  Egress = 3, // (from, check)
  Return = 4, // (to, check)
  Rejected = 5, // (rejectedBy, check)
  PathTo = 6, // (to, check): path-blocked/blocked, security group in front of a node
  PathSubnets = 7, // (check, from /24, to /24)
  PathFrom = 8, // (from, check)
  NoRoute = 9, // from
  Responder = 10, // node
  Other = 11, // (cause, check)
}

export interface Group extends CoverSet {
  kind: Kind;
  /** Index into ResultIndex.checks, -1 for none. */
  check: number;
  /** Node / address / cause index, by kind. */
  a: number;
  b: number;
  /** Indices into the ResultIndex's failure arrays. */
  members: number[];
  /** How many flows this place could have affected at most: smaller = more specific. */
  scope: number;
  /** For merged node groups: the checks merged. */
  checks?: number[];
  /** For path groups merged across nodes with the same far ends: every node's index, and one original. */
  nodes?: number[];
  original?: Group;
  /** Creation order: the last tie-break. */
  ordinal: number;
}

/** Strings a group's `a` can stand for: rejecting addresses (Rejected), verdict + cause (Other). */
export interface Interned {
  addrs: string[];
  causes: string[];
}

export interface Candidates extends Interned {
  /** In creation order. */
  groups: Group[];
}

type Join = (kind: Kind, check: number, a: number, b: number) => void;

interface FlowBuilder {
  kind: Kind;
  /** Which failures it groups: a verdict and its causes. */
  verdict: FlowResult['verdict'];
  causes: readonly (FlowResult['cause'] & string)[];
  /** The group(s) of this kind failure m joins. */
  join(m: number, r: FlowResult, x: ResultIndex, intern: (list: 'addrs' | 'causes', s: string) => number, join: Join): void;
}

/** Builders that group failures directly, in the order their groups are made for one failure. */
export const FLOW_BUILDERS: readonly FlowBuilder[] = [
  { kind: Kind.Ingress, verdict: 'fail', causes: ['ingress-blocked'], join: (m, _r, x, _i, join) => join(Kind.Ingress, x.fCheck[m]!, x.fTo[m]!, 0) },
  { kind: Kind.Egress, verdict: 'fail', causes: ['egress-blocked'], join: (m, _r, x, _i, join) => join(Kind.Egress, x.fCheck[m]!, x.fFrom[m]!, 0) },
  // A silent drop after the probe left: in front of the receiver, between the two /24s, or after the sender.
  { kind: Kind.PathTo, verdict: 'fail', causes: ['path-blocked', 'blocked'], join: (m, _r, x, _i, join) => join(Kind.PathTo, x.fCheck[m]!, x.fTo[m]!, 0) },
  {
    kind: Kind.PathSubnets,
    verdict: 'fail',
    causes: ['path-blocked', 'blocked'],
    join: (m, _r, x, _i, join) => join(Kind.PathSubnets, x.fCheck[m]!, x.subnetOfName[x.fFrom[m]!]!, x.subnetOfName[x.fTo[m]!]!),
  },
  { kind: Kind.PathFrom, verdict: 'fail', causes: ['path-blocked', 'blocked'], join: (m, _r, x, _i, join) => join(Kind.PathFrom, x.fCheck[m]!, x.fFrom[m]!, 0) },
  // b = 1: a reset in the destination's name it never saw (forged by the path).
  { kind: Kind.Rejected, verdict: 'fail', causes: ['rejected'], join: (m, r, x, intern, join) => join(Kind.Rejected, x.fCheck[m]!, intern('addrs', r.rejectedBy ?? ''), r.facts?.forgedReset ? 1 : 0) },
  { kind: Kind.Return, verdict: 'fail', causes: ['return-blocked'], join: (m, _r, x, _i, join) => join(Kind.Return, x.fCheck[m]!, x.fTo[m]!, 0) },
  { kind: Kind.NoRoute, verdict: 'fail', causes: ['no-route'], join: (m, _r, x, _i, join) => join(Kind.NoRoute, -1, x.fFrom[m]!, 0) },
  // The facts name the responder that could not be asked; without them either end's may be the one not
  // reached: both are candidates, the cover picks the one explaining more.
  {
    kind: Kind.Responder,
    verdict: 'unknown',
    causes: ['responder-unreachable'],
    join: (m, r, x, _i, join) => {
      const named = r.facts?.responder;
      if (named !== r.to) join(Kind.Responder, -1, x.fFrom[m]!, 0);
      if (named !== r.from) join(Kind.Responder, -1, x.fTo[m]!, 0);
    },
  },
];

/** Any failure no builder takes: grouped by its verdict, cause and check. */
const OTHER: FlowBuilder['join'] = (m, r, x, intern, join) => join(Kind.Other, x.fCheck[m]!, intern('causes', `${r.verdict}\u0000${r.cause ?? ''}`), 0);

const BUILDERS_BY_CAUSE = new Map<string, FlowBuilder[]>();
for (const b of FLOW_BUILDERS) {
  for (const c of b.causes) {
    const key = `${b.verdict}|${c}`;
    BUILDERS_BY_CAUSE.set(key, [...(BUILDERS_BY_CAUSE.get(key) ?? []), b]);
  }
}

/** How many flows a group's place could have affected at most, by kind. */
export const SCOPE: Readonly<Record<Kind, (g: Group, x: ResultIndex) => number>> = {
  [Kind.Ingress]: (g, x) => x.plannedTo[slot(g.a, g.check)]!,
  [Kind.Return]: (g, x) => x.plannedTo[slot(g.a, g.check)]!,
  [Kind.PathTo]: (g, x) => x.plannedTo[slot(g.a, g.check)]!,
  [Kind.Egress]: (g, x) => x.plannedFrom[slot(g.a, g.check)]!,
  [Kind.PathFrom]: (g, x) => x.plannedFrom[slot(g.a, g.check)]!,
  [Kind.IngressNode]: (g, x) => (g.checks ?? []).reduce((s, c) => s + x.plannedTo[slot(g.a, c)]!, 0),
  [Kind.EgressNode]: (g, x) => (g.checks ?? []).reduce((s, c) => s + x.plannedFrom[slot(g.a, c)]!, 0),
  // Every pair of nodes between the two /24s (a /24 to itself: not a node to itself).
  [Kind.PathSubnets]: (g, x) => {
    const na = Math.max(1, x.subnetNodeCount[g.a] ?? 1);
    const nb = Math.max(1, x.subnetNodeCount[g.b] ?? 1);
    return na * nb - (g.a === g.b ? na : 0);
  },
  [Kind.Responder]: (g, x) => {
    let s = 0;
    for (let c = 0; c < STRIDE; c++) s += x.plannedTo[slot(g.a, c)]! + x.plannedFrom[slot(g.a, c)]!;
    return s;
  },
  [Kind.Rejected]: (g) => g.members.length,
  [Kind.NoRoute]: (g) => g.members.length,
  [Kind.Other]: (g) => g.members.length,
};

const SHIFT = 2 ** 20; // node / address slots per key component

/** Every candidate group of the index's failures, with its scope. */
export function buildCandidates(x: ResultIndex): Candidates {
  const byKey = new Map<number, Group>();
  const groups: Group[] = [];
  const interned: Interned = { addrs: [], causes: [] };
  const internMaps = { addrs: new Map<string, number>(), causes: new Map<string, number>() };
  const intern = (list: 'addrs' | 'causes', s: string): number => {
    let i = internMaps[list].get(s);
    if (i === undefined) {
      i = interned[list].length;
      internMaps[list].set(s, i);
      interned[list].push(s);
    }
    return i;
  };
  let member = 0;
  const join: Join = (kind, check, a, b) => {
    const key = ((kind * STRIDE + (check + 1)) * SHIFT + a) * SHIFT + b;
    let g = byKey.get(key);
    if (g === undefined) {
      g = { kind, check, a, b, members: [], scope: 0, ordinal: groups.length };
      byKey.set(key, g);
      groups.push(g);
    }
    g.members.push(member);
  };

  for (let m = 0; m < x.fRes.length; m++) {
    const r = x.results[x.fRes[m]!]!;
    member = m;
    const builders = BUILDERS_BY_CAUSE.get(`${r.verdict}|${r.cause}`);
    if (builders) for (const b of builders) b.join(m, r, x, intern, join);
    else OTHER(m, r, x, intern, join);
  }
  groups.push(...wholeNodeGroups(groups, x));
  for (const g of groups) g.scope = SCOPE[g.kind](g, x);
  return { groups, ...interned };
}

/**
 * A node whose own firewall drops ≥ 2 checks from (to) every other node: one group for the node, the
 * union of its per-check groups (counting flows not judged as the node's: they are no counter-example).
 */
export function wholeNodeGroups(groups: readonly Group[], x: ResultIndex): Group[] {
  const everyOther = x.nodeCount - 1;
  const fullByNode = new Map<string, Group[]>();
  if (everyOther < 2) return [];
  for (const g of groups) {
    if ((g.kind !== Kind.Ingress && g.kind !== Kind.Egress) || g.a >= x.nodeCount) continue;
    // A carried check (mtu) fails with its carrier: it is not a second kind of traffic the node drops.
    if ((CATALOGUE as Record<string, { carriedBy?: readonly string[] } | undefined>)[x.checks[g.check] ?? '']?.carriedBy) continue;
    const ingress = g.kind === Kind.Ingress;
    const unmeasured = (ingress ? x.unknownTo : x.unknownFrom)[slot(g.a, g.check)]!;
    if (distinctCount(g.members, ingress ? x.fFrom : x.fTo) + unmeasured !== everyOther) continue;
    const k = `${g.kind}:${g.a}`;
    const list = fullByNode.get(k) ?? [];
    list.push(g);
    fullByNode.set(k, list);
  }
  const out: Group[] = [];
  for (const list of fullByNode.values()) {
    if (list.length < 2) continue;
    const first = list[0]!;
    list.sort((p, q) => p.check - q.check);
    const members: number[] = [];
    for (const g of list) for (const m of g.members) members.push(m);
    out.push({
      kind: first.kind === Kind.Ingress ? Kind.IngressNode : Kind.EgressNode,
      check: -1,
      a: first.a,
      b: 0,
      members,
      scope: 0,
      checks: list.map((g) => g.check),
      ordinal: groups.length + out.length,
    });
  }
  return out;
}

/** For two groups explaining as many new failures: the smaller scope, then the kind order, then the first made. */
export function tieBefore(a: Group, b: Group): boolean {
  if (a.scope !== b.scope) return a.scope < b.scope;
  if (a.kind !== b.kind) return a.kind < b.kind;
  return a.ordinal < b.ordinal;
}

/**
 * One device often explains many chosen path groups at once (a security group between two zones
 * drops VXLAN for every sender in one of them): path groups of one check whose far ends are the same
 * set (counting the node itself, which never probes itself) become one group.
 */
export function mergeAlike(chosen: readonly Group[], x: Pick<ResultIndex, 'fFrom' | 'fTo'>): Group[] {
  const out: Group[] = [];
  const byKey = new Map<string, Group>();
  for (const g of chosen) {
    if (g.kind !== Kind.PathFrom && g.kind !== Kind.PathTo) {
      out.push(g);
      continue;
    }
    const far = new Set<number>();
    for (const m of g.members) far.add(g.kind === Kind.PathFrom ? x.fTo[m]! : x.fFrom[m]!);
    const sorted = [...far].sort((p, q) => p - q);
    // Same far ends as given, or the same once the node itself is counted (all-to-all: node1 cannot reach node1).
    const key = `${g.kind}:${g.check}:${sorted.join(',')}`;
    const withSelf = `${g.kind}:${g.check}:${[...sorted, g.a].sort((p, q) => p - q).join(',')}`;
    const into = byKey.get(key) ?? byKey.get(withSelf);
    if (!into) {
      const copy: Group = { ...g, members: g.members, nodes: [g.a], original: g };
      byKey.set(key, copy);
      byKey.set(withSelf, copy);
      out.push(copy);
    } else {
      if (into.members === into.original!.members) into.members = [...into.members];
      for (const m of g.members) into.members.push(m);
      into.nodes!.push(g.a);
    }
  }
  return out;
}

function distinctCount(members: readonly number[], idx: readonly number[]): number {
  const s = new Set<number>();
  for (const m of members) s.add(idx[m]!);
  return s.size;
}
