// Explains failed and unknown flows in the fewest statements: candidate groups (one per firewall that
// could have dropped them) chosen by greedy set cover, largest first, ties to the more specific place.
// Built to scale: one pass over the results with integer-indexed counters; only failures are grouped.
import { checkIds } from '../checks/catalogue.js';
import { type CheckId, type DiagnosisStatement, type FlowResult, type Report } from '../types.js';
import { listNames, plural, portOf, ruleMatch, trafficName } from './common.js';

export type DiagnoseInput = Pick<Report, 'nodes' | 'results'> & Partial<Pick<Report, 'ports'>>;

/** Kinds of candidate group, in the order that wins a tie of size and scope. */
enum Kind {
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

interface Group {
  kind: Kind;
  check: number; // index into checks, -1 for none
  a: number; // node / address / cause index, by kind
  b: number;
  members: number[]; // indices into the failure arrays
  /** How many flows this place could have affected at most: smaller = more specific. */
  scope: number;
  /** For merged node groups: the checks merged. */
  checks?: number[];
  /** For path groups merged across nodes with the same far ends: every node's index, and one original. */
  nodes?: number[];
  original?: Group;
  uncovered: number;
  ordinal: number;
}

const STRIDE = 16; // check slots per node in the counters (7 known checks + room for unknown ids)
const SHIFT = 2 ** 20; // node / address slots per key component

export function diagnose(report: DiagnoseInput): DiagnosisStatement[] {
  const { nodes, results } = report;

  // ---- names, addresses, subnets -------------------------------------------------------------
  const nameIdx = new Map<string, number>();
  const names: string[] = [];
  const addrOf: string[] = [];
  const subnetOfName: number[] = [];
  const subnetIdx = new Map<string, number>();
  const subnets: string[] = [];
  const subnetNodeCount: number[] = [];
  const plannedTo: number[] = [];
  const plannedFrom: number[] = [];
  // Flows not judged (unknown): a sender or receiver that could not be measured is not a counter-example.
  const unknownTo: number[] = [];
  const unknownFrom: number[] = [];
  const addrToNode = new Map<string, number>();

  const internSubnet = (s: string): number => {
    let i = subnetIdx.get(s);
    if (i === undefined) {
      i = subnets.length;
      subnetIdx.set(s, i);
      subnets.push(s);
      subnetNodeCount.push(0);
    }
    return i;
  };
  const addName = (name: string, address: string): number => {
    const i = names.length;
    nameIdx.set(name, i);
    names.push(name);
    addrOf.push(address);
    subnetOfName.push(internSubnet(subnetOf(address)));
    for (let k = 0; k < STRIDE; k++) {
      plannedTo.push(0);
      plannedFrom.push(0);
      unknownTo.push(0);
      unknownFrom.push(0);
    }
    return i;
  };
  for (const n of nodes) {
    if (nameIdx.has(n.name)) continue;
    const i = addName(n.name, n.address);
    subnetNodeCount[subnetOfName[i]!]!++;
    if (!addrToNode.has(n.address)) addrToNode.set(n.address, i);
  }
  const nodeCount = names.length;

  const checkIdx = new Map<string, number>(checkIds().slice(0, STRIDE - 1).map((c, i) => [c, i]));
  const checks: string[] = [...checkIdx.keys()];
  const internCheck = (c: string): number => {
    let i = checkIdx.get(c);
    if (i === undefined) {
      i = Math.min(checks.length, STRIDE - 1);
      if (i === checks.length) checks.push(c);
      checkIdx.set(c, i);
    }
    return i;
  };

  // ---- one pass: planned counts, and the failures ---------------------------------------------
  const fRes: number[] = []; // result index
  const fFrom: number[] = [];
  const fTo: number[] = [];
  const fCheck: number[] = [];
  for (let i = 0; i < results.length; i++) {
    const r = results[i]!;
    let f = nameIdx.get(r.from);
    if (f === undefined) f = addName(r.from, '');
    let t = nameIdx.get(r.to);
    if (t === undefined) t = addName(r.to, r.toAddress ?? '');
    const c = internCheck(r.check);
    plannedTo[t * STRIDE + c]!++;
    plannedFrom[f * STRIDE + c]!++;
    if (r.verdict !== 'pass') {
      if (r.verdict === 'unknown') {
        unknownTo[t * STRIDE + c]!++;
        unknownFrom[f * STRIDE + c]!++;
      }
      fRes.push(i);
      fFrom.push(f);
      fTo.push(t);
      fCheck.push(c);
    }
  }
  const nFail = fRes.length;
  if (nFail === 0) return [];

  // ---- candidate groups -----------------------------------------------------------------------
  const groups = new Map<number, Group>();
  const internAddr = new Map<string, number>();
  const addrs: string[] = [];
  const internCause = new Map<string, number>();
  const causes: string[] = [];
  const intern = (m: Map<string, number>, list: string[], s: string): number => {
    let i = m.get(s);
    if (i === undefined) {
      i = list.length;
      m.set(s, i);
      list.push(s);
    }
    return i;
  };
  const join = (kind: Kind, check: number, a: number, b: number, member: number): void => {
    const key = ((kind * STRIDE + (check + 1)) * SHIFT + a) * SHIFT + b;
    let g = groups.get(key);
    if (g === undefined) {
      g = { kind, check, a, b, members: [], scope: 0, uncovered: 0, ordinal: groups.size };
      groups.set(key, g);
    }
    g.members.push(member);
  };

  for (let m = 0; m < nFail; m++) {
    const r = results[fRes[m]!]!;
    const f = fFrom[m]!;
    const t = fTo[m]!;
    const c = fCheck[m]!;
    if (r.verdict === 'fail') {
      switch (r.cause) {
        case 'ingress-blocked':
          join(Kind.Ingress, c, t, 0, m);
          continue;
        case 'egress-blocked':
          join(Kind.Egress, c, f, 0, m);
          continue;
        case 'path-blocked':
        case 'blocked':
          join(Kind.PathTo, c, t, 0, m);
          join(Kind.PathSubnets, c, subnetOfName[f]!, subnetOfName[t]!, m);
          join(Kind.PathFrom, c, f, 0, m);
          continue;
        case 'rejected':
          join(Kind.Rejected, c, intern(internAddr, addrs, r.rejectedBy ?? ''), 0, m);
          continue;
        case 'return-blocked':
          join(Kind.Return, c, t, 0, m);
          continue;
        case 'no-route':
          join(Kind.NoRoute, -1, f, 0, m);
          continue;
        default:
          break;
      }
    } else if (r.cause === 'responder-unreachable') {
      join(Kind.Responder, -1, f, 0, m);
      join(Kind.Responder, -1, t, 0, m);
      continue;
    }
    join(Kind.Other, c, intern(internCause, causes, `${r.verdict}\u0000${r.cause ?? ''}`), 0, m);
  }

  // Whole-node merges: a node whose own firewall drops ≥ 2 checks from (to) every other node.
  const everyOther = nodeCount - 1;
  const fullByNode = new Map<string, Group[]>();
  for (const g of groups.values()) {
    if ((g.kind !== Kind.Ingress && g.kind !== Kind.Egress) || g.a >= nodeCount || everyOther < 2) continue;
    const unmeasured = (g.kind === Kind.Ingress ? unknownTo : unknownFrom)[g.a * STRIDE + g.check]!;
    if (distinctCount(g.members, g.kind === Kind.Ingress ? fFrom : fTo) + unmeasured !== everyOther) continue;
    const k = `${g.kind}:${g.a}`;
    const list = fullByNode.get(k) ?? [];
    list.push(g);
    fullByNode.set(k, list);
  }
  for (const list of fullByNode.values()) {
    if (list.length < 2) continue;
    const first = list[0]!;
    list.sort((x, y) => x.check - y.check);
    const members: number[] = [];
    for (const g of list) for (const m of g.members) members.push(m);
    const kind = first.kind === Kind.Ingress ? Kind.IngressNode : Kind.EgressNode;
    const key = -(groups.size + 1); // merged groups get their own keys
    groups.set(key, {
      kind,
      check: -1,
      a: first.a,
      b: 0,
      members,
      scope: 0,
      checks: list.map((g) => g.check),
      uncovered: 0,
      ordinal: groups.size,
    });
  }

  // Scope of each candidate: how many flows the place could affect.
  for (const g of groups.values()) {
    const base = g.a * STRIDE;
    switch (g.kind) {
      case Kind.Ingress:
      case Kind.Return:
      case Kind.PathTo:
        g.scope = plannedTo[base + g.check]!;
        break;
      case Kind.Egress:
      case Kind.PathFrom:
        g.scope = plannedFrom[base + g.check]!;
        break;
      case Kind.IngressNode:
      case Kind.EgressNode: {
        const counts = g.kind === Kind.IngressNode ? plannedTo : plannedFrom;
        g.scope = (g.checks ?? []).reduce((s, c) => s + counts[base + c]!, 0);
        break;
      }
      case Kind.PathSubnets: {
        const na = Math.max(1, subnetNodeCount[g.a] ?? 1);
        const nb = Math.max(1, subnetNodeCount[g.b] ?? 1);
        g.scope = na * nb - (g.a === g.b ? na : 0);
        break;
      }
      case Kind.Responder: {
        let s = 0;
        for (let c = 0; c < STRIDE; c++) s += plannedTo[base + c]! + plannedFrom[base + c]!;
        g.scope = s;
        break;
      }
      default:
        g.scope = g.members.length;
    }
    g.uncovered = g.members.length;
  }

  // ---- greedy set cover, lazily re-evaluated -------------------------------------------------
  const heap = new Heap<Group>(better);
  for (const g of groups.values()) heap.push(g);
  const covered = new Uint8Array(nFail);
  const chosen: Group[] = [];
  let left = nFail;
  while (left > 0 && heap.size > 0) {
    const g = heap.pop()!;
    let u = 0;
    for (const m of g.members) if (covered[m] === 0) u++;
    if (u === 0) continue;
    if (u !== g.uncovered) {
      g.uncovered = u;
      const top = heap.peek();
      if (top && better(top, g)) {
        heap.push(g);
        continue;
      }
    }
    chosen.push(g);
    for (const m of g.members) {
      if (covered[m] === 0) {
        covered[m] = 1;
        left--;
      }
    }
  }

  const merged = mergeAlike(chosen, fFrom, fTo);
  const ctx: Ctx = { report, results, names, addrOf, nodeCount, checks, subnets, addrs, causes, addrToNode, fRes, fFrom, fTo, unknownTo, unknownFrom };
  return merged.map((g) => {
    const st = statement(g, ctx);
    MEMBERS.set(st, g.members.map((m) => fRes[m]!));
    return st;
  });
}

/** Which results (indices into report.results) each statement explains; kept off the JSON contract. */
const MEMBERS = new WeakMap<DiagnosisStatement, number[]>();

/** The result indices a statement from diagnose() explains; undefined for one read back from JSON. */
export function membersOf(statement: DiagnosisStatement): readonly number[] | undefined {
  return MEMBERS.get(statement);
}

/**
 * A statement diagnosed over a subset of a report's results, as one of the whole report: `extra` fields added,
 * its members mapped through `indexOf` (subset index -> report index), so its links point at the right flows.
 */
export function inReport(statement: DiagnosisStatement, indexOf: readonly number[], extra: Partial<DiagnosisStatement> = {}): DiagnosisStatement {
  const st = { ...statement, ...extra };
  const members = MEMBERS.get(statement);
  if (members) MEMBERS.set(st, members.map((m) => indexOf[m]!));
  return st;
}

/**
 * One device often explains many chosen path groups at once (a security group between two zones
 * drops VXLAN for every sender in one of them): path groups of one check whose far ends are the same
 * set (counting the node itself, which never probes itself) become one statement.
 */
function mergeAlike(chosen: Group[], fFrom: number[], fTo: number[]): Group[] {
  const out: Group[] = [];
  const byKey = new Map<string, Group>();
  for (const g of chosen) {
    if (g.kind !== Kind.PathFrom && g.kind !== Kind.PathTo) {
      out.push(g);
      continue;
    }
    const far = new Set<number>();
    for (const m of g.members) far.add(g.kind === Kind.PathFrom ? fTo[m]! : fFrom[m]!);
    const sorted = [...far].sort((x, y) => x - y);
    // Same far ends as given, or the same once the node itself is counted (all-to-all: node1 cannot reach node1).
    const key = `${g.kind}:${g.check}:${sorted.join(',')}`;
    const withSelf = `${g.kind}:${g.check}:${[...sorted, g.a].sort((x, y) => x - y).join(',')}`;
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

/** a before b: more uncovered flows, then the smaller scope, then the kind order, then first seen. */
function better(a: Group, b: Group): boolean {
  if (a.uncovered !== b.uncovered) return a.uncovered > b.uncovered;
  if (a.scope !== b.scope) return a.scope < b.scope;
  if (a.kind !== b.kind) return a.kind < b.kind;
  return a.ordinal < b.ordinal;
}

function distinctCount(members: readonly number[], idx: readonly number[]): number {
  const s = new Set<number>();
  for (const m of members) s.add(idx[m]!);
  return s.size;
}

function subnetOf(address: string): string {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(address);
  if (m) return `${m[1]}.${m[2]}.${m[3]}.0/24`;
  return address === '' ? 'unknown' : address;
}

interface Ctx {
  report: DiagnoseInput;
  results: readonly FlowResult[];
  names: string[];
  addrOf: string[];
  nodeCount: number;
  checks: string[];
  subnets: string[];
  addrs: string[];
  causes: string[];
  addrToNode: Map<string, number>;
  fRes: number[];
  fFrom: number[];
  fTo: number[];
  unknownTo: number[];
  unknownFrom: number[];
}

function statement(g: Group, x: Ctx): DiagnosisStatement {
  const first = x.results[x.fRes[g.members[0]!]!]!;
  const check = (g.check >= 0 ? x.checks[g.check] : first.check) as CheckId;
  const port = portOf(check, x.report.ports, first);
  const traffic = trafficName(check, port);
  const rule = ruleMatch(check, port);
  const n = g.members.length;
  const flows = plural(n, 'flow');
  const examples = g.members.slice(0, 3).map((m) => {
    const r = x.results[x.fRes[m]!]!;
    return { check: r.check, from: r.from, to: r.to };
  });
  const node = x.names[g.a] ?? '?';
  const addr = x.addrOf[g.a] ? ` (${x.addrOf[g.a]})` : '';
  const peers = (idx: number[], otherEnd: 'from' | 'to'): string => peersOf(g, x, idx, otherEnd, g.a, g.check);
  const make = (text: string, where: string, advice: string): DiagnosisStatement => ({ text, where, flows: n, advice, examples });

  switch (g.kind) {
    case Kind.Ingress:
      return make(
        `${node}'s own firewall drops ${traffic} ${peers(x.fFrom, 'from')} (${flows})`,
        'destination',
        `On ${node}${addr}: the packets arrived on its interface but never reached a socket, so its own ` +
          `firewall dropped them on the way in. Look for an iptables/nftables/firewalld rule in INPUT matching ` +
          `${rule} (\`iptables -S INPUT\`, \`nft list ruleset\`, \`firewall-cmd --list-all\`) and allow it from the other nodes.`,
      );
    case Kind.Egress:
      return make(
        `${node}'s own firewall blocks ${traffic} it sends ${peers(x.fTo, 'to')} (${flows})`,
        'source',
        `On ${node}${addr}: the probes never left the node, so its own firewall refused them on the way out. ` +
          `Look for an iptables/nftables/firewalld rule in OUTPUT (or POSTROUTING) matching ${rule} ` +
          `(\`iptables -S OUTPUT\`, \`nft list ruleset\`).`,
      );
    case Kind.IngressNode:
    case Kind.EgressNode: {
      const ids = (g.checks ?? []).map((c) => x.checks[c] ?? '?');
      const inbound = g.kind === Kind.IngressNode;
      const rules = (g.checks ?? []).map((c) => {
        const id = x.checks[c] as CheckId;
        return ruleMatch(id, portOf(id, x.report.ports));
      });
      return make(
        `${node}'s own firewall drops everything Calico needs ${inbound ? 'inbound' : 'outbound'} (${ids.join(', ')}: ${flows})`,
        inbound ? 'destination' : 'source',
        `On ${node}${addr}: every ${inbound ? 'inbound' : 'outbound'} probe of ${ids.join(', ')} was dropped by the node's own firewall ` +
          `(${inbound ? 'INPUT' : 'OUTPUT'} chain), for every peer: likely a default-deny policy or a firewall service ` +
          `(firewalld, ufw) without rules for Calico. Allow ${rules.join(', ')} ${inbound ? 'from' : 'to'} the other nodes.`,
      );
    }
    case Kind.Return:
      return make(
        `${node} answers ${traffic} but the answer never comes back: ${node}'s OUTPUT or the return path drops it (${flows})`,
        'return-path',
        `The probes reached ${node}${addr} (witnessed at its socket layer) but no reply reached the senders. ` +
          `Check ${node}'s OUTPUT chain for a rule dropping replies from source port ${port ?? '?'}, ` +
          `and any stateless ACL or asymmetric route between ${node} and the senders that drops the return direction.`,
      );
    case Kind.Rejected: {
      const by = x.addrs[g.a] ?? '';
      const byNode = x.addrToNode.get(by);
      const allToIt = byNode !== undefined && g.members.every((m) => x.fTo[m] === byNode);
      if (allToIt) {
        const name = x.names[byNode]!;
        return make(
          `${name}'s own firewall rejects ${traffic} ${peersOf(g, x, x.fFrom, 'from', byNode, g.check)} (${flows})`,
          'destination',
          `${name} (${by}) answered with a TCP reset or ICMP error without the probe reaching a socket: ` +
            `a REJECT rule in its INPUT chain matches ${rule}. Check \`iptables -S INPUT\` / \`nft list ruleset\` on ${name}.`,
        );
      }
      const who = by === '' ? 'an unidentified host' : byNode !== undefined ? `${x.names[byNode]} (${by})` : by;
      const pairs = listNames(examples.map((e) => `${e.from} -> ${e.to}`));
      return make(
        `${who} rejects ${traffic} (RST/ICMP error) on its way between nodes, e.g. ${pairs} (${flows})`,
        'path',
        by === ''
          ? `A reset or ICMP error came back from an address that was not recorded: a firewall between the nodes rejects ${rule}.`
          : `${by} sent the reset or ICMP error: a router, firewall or security appliance at that address rejects ${rule}. Check its ACL / policy.`,
      );
    }
    case Kind.PathTo:
    case Kind.PathFrom:
    case Kind.PathSubnets: {
      const noCapture = g.members.some((m) => x.results[x.fRes[m]!]!.cause === 'blocked');
      const orHost = noCapture ? ' (or the receiver\'s own firewall: no packet capture was possible to tell which)' : '';
      if (g.kind === Kind.PathSubnets) {
        const a = x.subnets[g.a] ?? '?';
        const b = x.subnets[g.b] ?? '?';
        return make(
          `the path from ${a} to ${b} drops ${traffic} (${flows})`,
          'path',
          `The probes left the senders but never arrived at the receivers' interfaces${orHost}. Check the cloud security ` +
            `groups / network ACLs, routers and firewalls between ${a} and ${b} for a rule allowing ${rule} ` +
            `from ${a} to ${b} (this direction).`,
        );
      }
      if (g.nodes && g.nodes.length > 1) {
        const list = listNames([...g.nodes].sort((p, q) => p - q).map((i) => x.names[i] ?? "?"));
        const from = g.kind === Kind.PathFrom;
        const far = peersOf(g.original!, x, from ? x.fTo : x.fFrom, from ? 'to' : 'from', g.original!.a, g.check);
        return make(
          from
            ? `the path from ${g.nodes.length} nodes (${list}) drops ${traffic} they send ${far} (${flows})`
            : `the path to ${g.nodes.length} nodes (${list}) drops ${traffic} ${far} (${flows})`,
          'path',
          `The probes left the senders but never arrived at the receivers${orHost}. One filter likely sits between ` +
            `${from ? 'these senders and the rest' : 'the rest and these receivers'}: check the cloud security groups / network ACLs, ` +
            `routers and firewalls on that path for a rule allowing ${rule} ${from ? 'outbound from' : 'inbound to'} these nodes.`,
        );
      }
      if (g.kind === Kind.PathTo) {
        return make(
          `the path to ${node} drops ${traffic} ${peers(x.fFrom, 'from')} (${flows})`,
          'path',
          `The probes left the senders but never arrived on ${node}'s interface${orHost}. Check what filters traffic in ` +
            `front of ${node}${addr}: its cloud security group / network ACL, or a router or firewall rule, for ${rule} inbound.`,
        );
      }
      return make(
        `the path from ${node} drops ${traffic} it sends ${peers(x.fTo, 'to')} (${flows})`,
        'path',
        `The probes left ${node}${addr} but never arrived at the receivers${orHost}. Check the outbound rules of ` +
          `${node}'s cloud security group / network ACL, or the first router or firewall after it, for ${rule}.`,
      );
    }
    case Kind.NoRoute: {
      const dests = new Set<number>();
      for (const m of g.members) dests.add(x.fTo[m]!);
      const list = [...dests].map((i) => x.names[i] ?? '?');
      const det = x.results[x.fRes[g.members[0]!]!]!.detail;
      return make(
        `${node} has no route to ${listNames(list)} (${flows})`,
        'source',
        `Sending from ${node}${addr} failed before any firewall was involved${det ? ` ("${det}")` : ''}. ` +
          `Check ${node}'s routing table (\`ip route get <address>\`) for the peers' addresses.`,
      );
    }
    case Kind.Responder: {
      const control = controlAddress(g, x);
      return make(
        `${node}: responder not reachable${control ? ` at ${control}` : ''} (${plural(n, 'flow')} unknown)`,
        'responder',
        `The coordinator could not reach the calico-nettest responder on ${node}${control ? ` (control ${control})` : addr}, ` +
          `so flows from and to it could not be judged. Check that the responder is running on ${node} ` +
          `(DaemonSet pod or \`calico-nettest responder\`), that the secret matches, and that its control port is not ` +
          `blocked between the coordinator and ${node}.`,
      );
    }
    default: {
      const [verdict, cause] = (x.causes[g.a] ?? '').split('\u0000');
      const label = cause ? cause : 'no cause given';
      const det = x.results[x.fRes[g.members[0]!]!]!.detail;
      return make(
        verdict === 'fail'
          ? `${traffic} fails (${label}) for ${flows}`
          : `${traffic} could not be judged (${label}) for ${flows}`,
        'unknown',
        `See the flows' detail${det ? `, e.g. "${det}"` : ''}; re-run with the same inventory to see whether it persists.`,
      );
    }
  }
}

/** "from every node", "from every measured node" (the others were unknown), or "from node1 and node2". */
function peersOf(g: Group, x: Ctx, idx: number[], word: 'from' | 'to', self: number, check: number): string {
  const seen = new Set<number>();
  for (const m of g.members) seen.add(idx[m]!);
  const others = x.nodeCount - 1;
  if (x.nodeCount >= 3 && self < x.nodeCount && check >= 0) {
    if (seen.size === others) return `${word} every node`;
    const unmeasured = (word === 'from' ? x.unknownTo : x.unknownFrom)[self * STRIDE + check] ?? 0;
    if (unmeasured > 0 && seen.size + unmeasured === others) return `${word} every measured node`;
  }
  return `${word} ${listNames([...seen].map((i) => x.names[i] ?? '?'))}`;
}

/** The responder's control address, from the facts of a flow that could not ask it ("198.18.0.3:5478"). */
function controlAddress(g: Group, x: Ctx): string | null {
  const node = x.names[g.a];
  const limit = Math.min(g.members.length, 200);
  for (let i = 0; i < limit; i++) {
    const facts = x.results[x.fRes[g.members[i]!]!]!.facts;
    if (facts?.responder === node && facts?.control) return facts.control;
  }
  return null;
}

/** Minimal binary heap ordered by `before`. */
class Heap<T> {
  private readonly a: T[] = [];
  constructor(private readonly before: (x: T, y: T) => boolean) {}
  get size(): number {
    return this.a.length;
  }
  peek(): T | undefined {
    return this.a[0];
  }
  push(v: T): void {
    const a = this.a;
    a.push(v);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  pop(): T | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let b = i;
        if (l < a.length && this.before(a[l]!, a[b]!)) b = l;
        if (r < a.length && this.before(a[r]!, a[b]!)) b = r;
        if (b === i) break;
        [a[i], a[b]] = [a[b]!, a[i]!];
        i = b;
      }
    }
    return top;
  }
}
