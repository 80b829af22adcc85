// The diagnosis's index of a report's results: names, addresses and /24s as integers, per (node, check)
// counts of planned and unjudged flows, and the failed or unknown flows as parallel integer arrays. Pure;
// one pass over the results, so a 300-node mesh (626k flows) is indexed without a string key per flow.
import { checkIds } from '../../checks/catalogue.js';
import type { FlowResult, Report } from '../../types.js';

export type DiagnoseInput = Pick<Report, 'nodes' | 'results'> & Partial<Pick<Report, 'ports'>>;

/** Check slots per node in the counters (the known checks plus room for ids the catalogue lacks). */
export const STRIDE = 16;

export interface ResultIndex {
  input: DiagnoseInput;
  results: readonly FlowResult[];
  /** Node names: the report's nodes first (0 … nodeCount-1), then names only the results hold. */
  names: string[];
  addrOf: string[];
  /** How many of `names` are the report's own nodes. */
  nodeCount: number;
  /** A node's /24 (index into subnets), and how many of the report's nodes each /24 holds. */
  subnetOfName: number[];
  subnets: string[];
  subnetNodeCount: number[];
  /** The first report node with each address. */
  addrToNode: Map<string, number>;
  /** Check ids by slot: the catalogue's first, then unknown ids (all past STRIDE-1 share the last slot). */
  checks: string[];
  /** Flows planned to / from a node, per check: index node * STRIDE + check. */
  plannedTo: number[];
  plannedFrom: number[];
  /** Flows not judged (unknown): a sender or receiver that could not be measured is no counter-example. */
  unknownTo: number[];
  unknownFrom: number[];
  /** The failures (verdict fail or unknown), in result order: result index, sender, receiver, check slot. */
  fRes: number[];
  fFrom: number[];
  fTo: number[];
  fCheck: number[];
}

/** The counter slot of (node, check). */
export const slot = (node: number, check: number): number => node * STRIDE + check;

/** "198.18.1.0/24" for an IPv4 address; anything else is its own subnet; no address is 'unknown'. */
export function subnetOf(address: string): string {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(address);
  if (m) return `${m[1]}.${m[2]}.${m[3]}.0/24`;
  return address === '' ? 'unknown' : address;
}

export function indexResults(input: DiagnoseInput): ResultIndex {
  const { nodes, results } = input;
  const nameIdx = new Map<string, number>();
  const subnetIdx = new Map<string, number>();
  const x: ResultIndex = {
    input,
    results,
    names: [],
    addrOf: [],
    nodeCount: 0,
    subnetOfName: [],
    subnets: [],
    subnetNodeCount: [],
    addrToNode: new Map(),
    checks: [],
    plannedTo: [],
    plannedFrom: [],
    unknownTo: [],
    unknownFrom: [],
    fRes: [],
    fFrom: [],
    fTo: [],
    fCheck: [],
  };

  const internSubnet = (s: string): number => {
    let i = subnetIdx.get(s);
    if (i === undefined) {
      i = x.subnets.length;
      subnetIdx.set(s, i);
      x.subnets.push(s);
      x.subnetNodeCount.push(0);
    }
    return i;
  };
  const addName = (name: string, address: string): number => {
    const i = x.names.length;
    nameIdx.set(name, i);
    x.names.push(name);
    x.addrOf.push(address);
    x.subnetOfName.push(internSubnet(subnetOf(address)));
    for (let k = 0; k < STRIDE; k++) {
      x.plannedTo.push(0);
      x.plannedFrom.push(0);
      x.unknownTo.push(0);
      x.unknownFrom.push(0);
    }
    return i;
  };
  for (const n of nodes) {
    if (nameIdx.has(n.name)) continue;
    const i = addName(n.name, n.address);
    x.subnetNodeCount[x.subnetOfName[i]!]!++;
    if (!x.addrToNode.has(n.address)) x.addrToNode.set(n.address, i);
  }
  x.nodeCount = x.names.length;

  const checkIdx = new Map<string, number>(checkIds().slice(0, STRIDE - 1).map((c, i) => [c, i]));
  x.checks.push(...checkIdx.keys());
  const internCheck = (c: string): number => {
    let i = checkIdx.get(c);
    if (i === undefined) {
      i = Math.min(x.checks.length, STRIDE - 1);
      if (i === x.checks.length) x.checks.push(c);
      checkIdx.set(c, i);
    }
    return i;
  };

  for (let i = 0; i < results.length; i++) {
    const r = results[i]!;
    let f = nameIdx.get(r.from);
    if (f === undefined) f = addName(r.from, '');
    let t = nameIdx.get(r.to);
    if (t === undefined) t = addName(r.to, r.toAddress ?? '');
    const c = internCheck(r.check);
    x.plannedTo[slot(t, c)]!++;
    x.plannedFrom[slot(f, c)]!++;
    if (r.verdict === 'pass') continue;
    if (r.verdict === 'unknown') {
      x.unknownTo[slot(t, c)]!++;
      x.unknownFrom[slot(f, c)]!++;
    }
    x.fRes.push(i);
    x.fFrom.push(f);
    x.fTo.push(t);
    x.fCheck.push(c);
  }
  return x;
}
