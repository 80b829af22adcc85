// What each kind of diagnosis statement says: a table from statement kind to its sentence, where it
// places the fault, and the advice, written from the chosen group's flows and their facts. Pure.
import type { CheckId, DiagnosisStatement, FlowResult } from '../../types.js';
import { calicoMtuAdvice } from '../../checks/mtu.js';
import { listNames, plural, portOf, ruleMatch, trafficName } from '../common.js';
import { Kind, type Group, type Interned } from './candidates.js';
import { slot, type ResultIndex } from './results.js';

/** What a sentence is written from: the chosen group and the index, and the words shared by most kinds. */
export interface SentenceInput {
  g: Group;
  x: ResultIndex;
  interned: Interned;
  /** The group's first flow. */
  first: FlowResult;
  check: CheckId;
  port: number | null;
  /** "BGP (TCP 179)". */
  traffic: string;
  /** How a rule would match it: "tcp dport 179". */
  rule: string;
  /** "5 flows". */
  flows: string;
  /** The group's node (by kind: receiver, sender, responder) and " (its address)" when known. */
  node: string;
  addr: string;
  /** "from every node", "to node1 and node2": the far ends of the group's flows. */
  peers(idx: readonly number[], word: 'from' | 'to'): string;
}

export interface Sentence {
  text: string;
  where: string;
  advice: string;
}

/** The sentence of each statement kind. */
export const SENTENCES: Readonly<Record<Kind, (s: SentenceInput) => Sentence>> = {
  [Kind.Ingress]: ({ x, node, addr, traffic, rule, flows, peers }) => ({
    text: `${node}'s own firewall drops ${traffic} ${peers(x.fFrom, 'from')} (${flows})`,
    where: 'destination',
    advice:
      `On ${node}${addr}: the packets arrived on its interface but never reached a socket, so its own ` +
      `firewall dropped them on the way in. Look for an iptables/nftables/firewalld rule in INPUT matching ` +
      `${rule} (\`iptables -S INPUT\`, \`nft list ruleset\`, \`firewall-cmd --list-all\`) and allow it from the other nodes.`,
  }),
  [Kind.Egress]: ({ x, node, addr, traffic, rule, flows, peers }) => ({
    text: `${node}'s own firewall blocks ${traffic} it sends ${peers(x.fTo, 'to')} (${flows})`,
    where: 'source',
    advice:
      `On ${node}${addr}: the probes never left the node, so its own firewall refused them on the way out. ` +
      `Look for an iptables/nftables/firewalld rule in OUTPUT (or POSTROUTING) matching ${rule} ` +
      `(\`iptables -S OUTPUT\`, \`nft list ruleset\`).`,
  }),
  [Kind.IngressNode]: (s) => wholeNode(s, true),
  [Kind.EgressNode]: (s) => wholeNode(s, false),
  [Kind.Return]: ({ node, addr, traffic, port, flows }) => ({
    text: `${node} answers ${traffic} but the answer never comes back: ${node}'s OUTPUT or the return path drops it (${flows})`,
    where: 'return-path',
    advice:
      `The probes reached ${node}${addr} (witnessed at its socket layer) but no reply reached the senders. ` +
      `Check ${node}'s OUTPUT chain for a rule dropping replies from source port ${port ?? '?'}, ` +
      `and any stateless ACL or asymmetric route between ${node} and the senders that drops the return direction.`,
  }),
  [Kind.Rejected]: rejected,
  [Kind.PathTo]: path,
  [Kind.PathFrom]: path,
  [Kind.PathSubnets]: path,
  [Kind.NoRoute]: ({ g, x, node, addr, flows }) => {
    const dests = new Set<number>();
    for (const m of g.members) dests.add(x.fTo[m]!);
    const det = x.results[x.fRes[g.members[0]!]!]!.detail;
    return {
      text: `${node} has no route to ${listNames([...dests].map((i) => x.names[i] ?? '?'))} (${flows})`,
      where: 'source',
      advice:
        `Sending from ${node}${addr} failed before any firewall was involved${det ? ` ("${det}")` : ''}. ` +
        `Check ${node}'s routing table (\`ip route get <address>\`) for the peers' addresses.`,
    };
  },
  [Kind.Responder]: ({ g, x, node, addr }) => {
    const none = notStarted(g, x);
    if (none !== null) {
      return {
        text: `${node}: no responder for this run (${plural(g.members.length, 'flow')} unknown)`,
        where: 'responder',
        advice:
          `No calico-nettest responder ran on ${node}${addr} for this run: ${none}. Flows from and to it could not be judged; ` +
          `fix that (or leave ${node} out of the inventory) and run again.`,
      };
    }
    const control = controlAddress(g, x);
    return {
      text: `${node}: responder not reachable${control ? ` at ${control}` : ''} (${plural(g.members.length, 'flow')} unknown)`,
      where: 'responder',
      advice:
        `The coordinator could not reach the calico-nettest responder on ${node}${control ? ` (control ${control})` : addr}, ` +
        `so flows from and to it could not be judged. Check that the responder is running on ${node} ` +
        `(DaemonSet pod or \`calico-nettest responder\`), that the secret matches, and that its control port is not ` +
        `blocked between the coordinator and ${node}.`,
    };
  },
  [Kind.Other]: ({ g, x, interned, first, traffic, flows }) => {
    const [verdict, cause] = (interned.causes[g.a] ?? '').split('\u0000');
    const label = cause ? cause : 'no cause given';
    const det = first.detail;
    if (cause === 'mtu-blackhole' || cause === 'mtu-limited') {
      // Calico's MTU is one setting for the whole cluster: the lowest path MTU measured decides it.
      const lowest = Math.min(...x.results.flatMap((r) => (typeof r.pathMtu === 'number' ? [r.pathMtu] : [])));
      const silent = cause === 'mtu-blackhole';
      return {
        text: `the path carries less than the host MTU for ${flows}${silent ? ', silently (no ICMP fragmentation-needed)' : ''}`,
        where: 'path',
        advice:
          `Large packets ${silent ? 'vanish without a word' : 'are refused with fragmentation-needed'} on these paths (lowest path MTU measured: ${lowest}); ` +
          `${Number.isFinite(lowest) ? calicoMtuAdvice(lowest) : 'fix the link'}. ${silent ? 'Also let ICMP type 3 code 4 through the firewalls in between, so path MTU discovery can work.' : ''}`.trim(),
      };
    }
    return {
      text: verdict === 'fail' ? `${traffic} fails (${label}) for ${flows}` : `${traffic} could not be judged (${label}) for ${flows}`,
      where: first.where ?? 'unknown',
      advice: `See the flows' detail${det ? `, e.g. "${det}"` : ''}; re-run with the same inventory to see whether it persists.`,
    };
  },
};

/** The statement of a chosen group: its kind's sentence, how many flows it explains, and up to three of them. */
export function statement(g: Group, x: ResultIndex, interned: Interned): DiagnosisStatement {
  const first = x.results[x.fRes[g.members[0]!]!]!;
  const check = (g.check >= 0 ? x.checks[g.check] : first.check) as CheckId;
  const port = portOf(check, x.input.ports, first);
  const examples = g.members.slice(0, 3).map((m) => {
    const r = x.results[x.fRes[m]!]!;
    return { check: r.check, from: r.from, to: r.to };
  });
  const s = SENTENCES[g.kind]({
    g,
    x,
    interned,
    first,
    check,
    port,
    traffic: trafficName(check, port),
    rule: ruleMatch(check, port),
    flows: plural(g.members.length, 'flow'),
    node: x.names[g.a] ?? '?',
    addr: x.addrOf[g.a] ? ` (${x.addrOf[g.a]})` : '',
    peers: (idx, word) => peersOf(g, x, idx, word, g.a, g.check),
  });
  return { text: s.text, where: s.where, flows: g.members.length, advice: s.advice, examples };
}

function wholeNode({ g, x, node, addr, flows }: SentenceInput, inbound: boolean): Sentence {
  const ids = (g.checks ?? []).map((c) => x.checks[c] ?? '?');
  const rules = [
    ...new Set(
      (g.checks ?? []).map((c) => {
        const id = x.checks[c] as CheckId;
        return ruleMatch(id, portOf(id, x.input.ports));
      }),
    ),
  ];
  return {
    text: `${node}'s own firewall drops everything Calico needs ${inbound ? 'inbound' : 'outbound'} (${ids.join(', ')}: ${flows})`,
    where: inbound ? 'destination' : 'source',
    advice:
      `On ${node}${addr}: every ${inbound ? 'inbound' : 'outbound'} probe of ${ids.join(', ')} was dropped by the node's own firewall ` +
      `(${inbound ? 'INPUT' : 'OUTPUT'} chain), for every peer: likely a default-deny policy or a firewall service ` +
      `(firewalld, ufw) without rules for Calico. Allow ${rules.join(', ')} ${inbound ? 'from' : 'to'} the other nodes.`,
  };
}

function rejected({ g, x, interned, traffic, rule, flows }: SentenceInput): Sentence {
  const by = interned.addrs[g.a] ?? '';
  const byNode = x.addrToNode.get(by);
  if (g.b === 1) {
    const name = byNode !== undefined ? x.names[byNode]! : by;
    return {
      text: `something in the path answers in ${name}'s name: it resets ${traffic} ${name} never saw (${flows})`,
      where: 'path',
      advice:
        `The TCP resets came from ${by}, but ${name} never saw the probes arrive: a router or firewall between the nodes ` +
        `rejects ${rule} with a forged reset (REJECT --reject-with tcp-reset). ${name}'s own firewall is not involved; check the devices in between.`,
    };
  }
  if (byNode !== undefined && g.members.every((m) => x.fTo[m] === byNode)) {
    const name = x.names[byNode]!;
    return {
      text: `${name}'s own firewall rejects ${traffic} ${peersOf(g, x, x.fFrom, 'from', byNode, g.check)} (${flows})`,
      where: 'destination',
      advice:
        `${name} (${by}) answered with a TCP reset or ICMP error without the probe reaching a socket: ` +
        `a REJECT rule in its INPUT chain matches ${rule}. Check \`iptables -S INPUT\` / \`nft list ruleset\` on ${name}.`,
    };
  }
  const who = by === '' ? 'an unidentified host' : byNode !== undefined ? `${x.names[byNode]} (${by})` : by;
  const pairs = listNames(g.members.slice(0, 3).map((m) => `${x.names[x.fFrom[m]!]} -> ${x.names[x.fTo[m]!]}`));
  return {
    text: `${who} rejects ${traffic} (RST/ICMP error) on its way between nodes, e.g. ${pairs} (${flows})`,
    where: 'path',
    advice:
      by === ''
        ? `A reset or ICMP error came back from an address that was not recorded: a firewall between the nodes rejects ${rule}.`
        : `${by} sent the reset or ICMP error: a router, firewall or security appliance at that address rejects ${rule}. Check its ACL / policy.`,
  };
}

function path({ g, x, node, addr, traffic, rule, flows, peers }: SentenceInput): Sentence {
  const noCapture = g.members.some((m) => x.results[x.fRes[m]!]!.cause === 'blocked');
  const orHost = noCapture ? " (or the receiver's own firewall: no packet capture was possible to tell which)" : '';
  if (g.kind === Kind.PathSubnets) {
    const a = x.subnets[g.a] ?? '?';
    const b = x.subnets[g.b] ?? '?';
    return {
      text: `the path from ${a} to ${b} drops ${traffic} (${flows})`,
      where: 'path',
      advice:
        `The probes left the senders but never arrived at the receivers' interfaces${orHost}. Check the cloud security ` +
        `groups / network ACLs, routers and firewalls between ${a} and ${b} for a rule allowing ${rule} ` +
        `from ${a} to ${b} (this direction).`,
    };
  }
  const from = g.kind === Kind.PathFrom;
  if (g.nodes && g.nodes.length > 1) {
    const list = listNames([...g.nodes].sort((p, q) => p - q).map((i) => x.names[i] ?? '?'));
    const far = peersOf(g.original!, x, from ? x.fTo : x.fFrom, from ? 'to' : 'from', g.original!.a, g.check);
    return {
      text: from
        ? `the path from ${g.nodes.length} nodes (${list}) drops ${traffic} they send ${far} (${flows})`
        : `the path to ${g.nodes.length} nodes (${list}) drops ${traffic} ${far} (${flows})`,
      where: 'path',
      advice:
        `The probes left the senders but never arrived at the receivers${orHost}. One filter likely sits between ` +
        `${from ? 'these senders and the rest' : 'the rest and these receivers'}: check the cloud security groups / network ACLs, ` +
        `routers and firewalls on that path for a rule allowing ${rule} ${from ? 'outbound from' : 'inbound to'} these nodes.`,
    };
  }
  if (!from) {
    return {
      text: `the path to ${node} drops ${traffic} ${peers(x.fFrom, 'from')} (${flows})`,
      where: 'path',
      advice:
        `The probes left the senders but never arrived on ${node}'s interface${orHost}. Check what filters traffic in ` +
        `front of ${node}${addr}: its cloud security group / network ACL, or a router or firewall rule, for ${rule} inbound.`,
    };
  }
  return {
    text: `the path from ${node} drops ${traffic} it sends ${peers(x.fTo, 'to')} (${flows})`,
    where: 'path',
    advice:
      `The probes left ${node}${addr} but never arrived at the receivers${orHost}. Check the outbound rules of ` +
      `${node}'s cloud security group / network ACL, or the first router or firewall after it, for ${rule}.`,
  };
}

/** "from every node", "from every measured node" (the others were unknown), or "from node1 and node2". */
export function peersOf(g: Group, x: ResultIndex, idx: readonly number[], word: 'from' | 'to', self: number, check: number): string {
  const seen = new Set<number>();
  for (const m of g.members) seen.add(idx[m]!);
  const others = x.nodeCount - 1;
  if (x.nodeCount >= 3 && self < x.nodeCount && check >= 0) {
    if (seen.size === others) return `${word} every node`;
    const unmeasured = (word === 'from' ? x.unknownTo : x.unknownFrom)[slot(self, check)] ?? 0;
    if (unmeasured > 0 && seen.size + unmeasured === others) return `${word} every measured node`;
  }
  return `${word} ${listNames([...seen].map((i) => x.names[i] ?? '?'))}`;
}

/** Why no responder was started on the group's node for this run (--ssh, --kubernetes), from its flows' facts; null when one was. */
function notStarted(g: Group, x: ResultIndex): string | null {
  const node = x.names[g.a];
  const limit = Math.min(g.members.length, 200);
  for (let i = 0; i < limit; i++) {
    const facts = x.results[x.fRes[g.members[i]!]!]!.facts;
    if (facts?.responder === node && facts?.errorKind === 'no-responder') return facts.error ?? 'no reason was recorded';
  }
  return null;
}

/** The responder's control address, from the facts of a flow that could not ask it ("198.18.0.3:5478"). */
function controlAddress(g: Group, x: ResultIndex): string | null {
  const node = x.names[g.a];
  const limit = Math.min(g.members.length, 200);
  for (let i = 0; i < limit; i++) {
    const facts = x.results[x.fRes[g.members[i]!]!]!.facts;
    if (facts?.responder === node && facts?.control) return facts.control;
  }
  return null;
}
