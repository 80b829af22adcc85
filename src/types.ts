// Domain types shared by every layer: checks, planned flows, source outcomes, witness summaries, reports.
// The Report shape is the public contract (DESIGN §5): add fields, never rename or remove.
import type { Finding } from './preflight/findings.js';
import type { ExplainSummary, RuleFact } from './explain/types.js';

export const CHECK_IDS = ['bgp', 'ipip', 'vxlan', 'wireguard', 'typha', 'etcd', 'apiserver', 'mtu'] as const;
export type CheckId = (typeof CHECK_IDS)[number];

/** How a check's probe travels. */
export type Transport = 'tcp' | 'udp' | 'ipip';

/** Who a check's flows go between: every ordered node pair, or every node to the holders of a role. */
export type Role = 'typha' | 'etcd' | 'apiserver';
export type Reach = { kind: 'all-pairs' } | { kind: 'to-role'; role: Role };

export type Verdict = 'pass' | 'fail' | 'unknown';
export type Cause =
  | 'egress-blocked'
  | 'path-blocked'
  | 'ingress-blocked'
  | 'blocked'
  | 'rejected'
  | 'return-blocked'
  | 'responder-unreachable'
  | 'no-route'
  | 'not-probed'
  /** No reply, but the sender's reply socket failed to receive meanwhile: a reply may have been lost there. */
  | 'receive-error'
  // Added (DESIGN §2a, issue 11): no rule did it.
  | 'rp-filter'
  /** Added: the receiver's kernel dropped it for a reason of its own (its drop reason, not NETFILTER_DROP): no rule did. */
  | 'kernel-drop'
  | 'misrouted'
  | 'lossy'
  | 'host-unreachable'
  /** Added: a responder on the flow lost or shed packets under load (a flood?), so a missing witness proves nothing. */
  | 'overloaded'
  | 'mtu-blackhole'
  | 'mtu-limited';

/** Whose problem a failed flow is (DESIGN §2a); null for a pass, an unknown, or when the facts cannot tell. */
export type Where = 'source' | 'path' | 'destination';

/** Why a responder could not be asked, as data (the message is for people; nothing branches on it). */
export const NODE_ERROR_KINDS = [
  'refused', // nothing listens on the control port
  'timeout', // no answer in time
  'unreachable', // no route to the control address
  'reset', // the connection was closed on us
  'auth', // the responder refused our credentials (secret or clock)
  'http-error', // it answered, with an error or not as a responder
  'aborted', // the run was interrupted
  'stopped-streaming', // the probe stream ended before every probe was done
  'probe-failed', // the responder said probing failed
  'no-responder', // none was started there for this run (SSH / Kubernetes launch failed)
  'stopped', // it went silent past its deadline (stopped, frozen, overloaded): asked nothing more
  'unsigned', // the answer lacked our responder's signature (a process there without the secret)
  'other',
] as const;
export type NodeErrorKind = (typeof NODE_ERROR_KINDS)[number];

/**
 * What was seen of one flow (DESIGN §2a): the evidence its verdict rests on, as plain optional fields.
 * A field is absent when it was not observed or does not apply. Later issues add fields here.
 */
export interface Facts {
  /** errno name of a receive error on the source's reply socket while this flow waited (an answer may be lost). */
  receiveError?: string;
  /** Tries sent, and how many of them the destination witnessed. */
  tries?: number;
  got?: number;
  reply?: 'synack' | 'rst' | 'icmp';
  /** Who sent the RST or ICMP error. */
  replyFrom?: string;
  icmp?: { type: number; code: number };
  /** errno of a refused send ('EPERM', 'ENETUNREACH', ...). */
  sendError?: string;
  /** Seen (or not) leaving the source on a packet socket; absent when the source could not capture. */
  left?: boolean;
  leftOn?: string;
  /** The destination's witness log: could it capture, was the probe seen on an interface / at a socket. */
  capture?: boolean;
  interfaceSeen?: boolean;
  arrivedOn?: string;
  socketSeen?: boolean;
  /** The source the destination saw, only when it differs from the sender's address (NAT), with that address. */
  observedSource?: string;
  sentFrom?: string;
  /** A responder that could not be asked: its node, its control address, why (kind) and the error's words. */
  responder?: string;
  control?: string;
  errorKind?: NodeErrorKind;
  error?: string;
  /** --explain: the host rule that took the verdict (also the result's `rule`). */
  rule?: RuleFact;
  /** Added (issue 11): tries of this flow that got nothing back / did not arrive. */
  lost?: number;
  /** Lost and all tries of the flows on this flow's path that got through at least once (present when some were lost), and the --max-loss in force. */
  pathLost?: number;
  pathTries?: number;
  maxLoss?: number;
  /** ms until an ICMP host unreachable came (a neighbour failure takes seconds; a REJECT answers at once). */
  replyMs?: number;
  /** The sender's route to the peer (kernel lookup), and the interface holding its own address. */
  routeDev?: string;
  routeVia?: string;
  homeIf?: string;
  /** State of the sender's neighbour entry for the next hop (FAILED / INCOMPLETE: nobody answered ARP). */
  neighbour?: string;
  /** The receiver's kernel on the reverse path: the lookup's error, rp_filter in force on the arrival interface,
   *  its own route back (interface), and the TcpExtIPReversePathFilter drops counted during the session. */
  rpSource?: string;
  rpLookup?: string;
  rpFilter?: number;
  routeBack?: string;
  routeBackVia?: string;
  rpFilterDrops?: number;
  /** The receiver had an IP-in-IP conntrack entry with the sender before the session: a fresh flow could not be tested. */
  conntrackPreexisting?: boolean;
  /** A TCP reset in the destination's name that the destination never saw. */
  forgedReset?: boolean;
  /** The kernel's drop reason for the flow's probes (skb drop reason name), or why it could not be read. */
  dropReason?: string;
  dropReasonUnavailable?: string;
  /** Probe-shaped packets with a wrong proof (forged, re-sent elsewhere, re-wrapped) the destination saw during the run. */
  forged?: number;
  /** Packets the flow's responders (the source's capture, the destination's witness) shed or lost under load during the run. */
  shed?: number;
  /** mtu check (src/verdict-mtu.ts): the encapsulation whose framing the probes took (a check id), host
   *  MTU, largest size that arrived (and the smallest known not to, when the search stopped at its bound),
   *  the hop that limits (from a frag-needed, or located by TTL-limited probes: `hop.by`), what the sender's
   *  kernel knew before (kernelPmtu) and learnt from these probes (kernelPmtuLearnt), a size it refused itself. */
  encapsulation?: CheckId;
  hostMtu?: number;
  pathMtu?: number;
  pathMtuBelow?: number;
  hop?: Hop;
  kernelPmtu?: number;
  kernelPmtuLearnt?: number;
  refusedSize?: number;
  searchRounds?: number;
  /** mtu check, `lossy`: how many host-size copies were sent (none arrived) on a path whose loss could explain it. */
  hostCopies?: number;
}

/** One flow the plan calls for: one check from one node to one node (or endpoint). */
export interface PlannedFlow {
  check: CheckId;
  transport: Transport;
  from: string; // node name
  to: string; // node name, or the endpoint's name for an apiserver endpoint without a responder
  toAddress: string; // IPv4 address probes are sent to
  port: number | null; // null for ipip
  /** Per-destination probe index (0..65535): identifies the flow in the witness log of `to`. */
  idx: number;
  /** true when `to` runs no responder (an apiserver endpoint): only the source side can judge. */
  sourceOnly?: boolean;
}

/** What the sending node saw of one flow's probe (DESIGN §2, left column). */
export interface SourceOutcome {
  idx: number;
  toAddress: string;
  check: CheckId;
  /** A reply came back: TCP SYN-ACK, a TCP RST, or an ICMP error quoting the probe. */
  reply: 'synack' | 'rst' | 'icmp' | null;
  /** Address that sent the RST or ICMP error. */
  replyFrom: string | null;
  icmp: { type: number; code: number } | null;
  /** The errno code of a failed send (e.g. 'EPERM': the source's own OUTPUT chain refused it). */
  sendError: string | null;
  /** Seen leaving this node on a packet socket; null when no capture was possible. */
  left: boolean | null;
  /** Interface it left on, when seen. */
  leftOn: string | null;
  rttMs: number | null;
  attempts: number;
  /** Source port the TCP/UDP probe used. */
  srcPort: number | null;
  /** Added: a reply socket (TCP replies, ICMP errors) failed to receive while this probe waited, by errno
   *  name (e.g. 'ENOBUFS': replies overflowed it). "Nothing came back" is then no evidence of a drop. */
  receiveError?: string;
  /** TCP: tries before the one that was answered (unanswered tries). Datagrams: see the witness count. */
  lost?: number;
  /** The kernel's route to the peer (looked up only for flows that got no answer). */
  route?: { dev: string; via: string | null } | null;
  /** Interface that carries the node's own address (the one probes should leave by). */
  homeIf?: string | null;
  /** State of the neighbour entry of the route's next hop (FAILED / INCOMPLETE: nobody answered ARP). */
  neigh?: string | null;
  /** mtu check only: what the sender measured and knew (see MtuSourceFacts). */
  mtu?: MtuSourceFacts;
}

/**
 * The hop that limits a path: `address` and `mtu` (the next-hop MTU a frag-needed named; with `by:
 * 'time-exceeded'`, the path MTU measured). `by` says how it was found (absent: frag-needed); `ttl` its
 * distance; `link`: the limit is on the link leaving this hop ('after': large probes reached it) or on
 * the link into it ('before': none reached even the first hop, which answered a small probe).
 */
export interface Hop {
  address: string;
  mtu: number;
  by?: 'frag-needed' | 'time-exceeded';
  ttl?: number;
  link?: 'after' | 'before';
}

/** What the sender of an `mtu` probe knows about sizes (src/checks/mtu.ts). */
export interface MtuSourceFacts {
  /** MTU of the interface holding the sender's address. */
  hostMtu: number | null;
  /** The kernel's MTU for the route to the peer before the first probe (IP_MTU): below hostMtu when it had learnt a path MTU. */
  kernelPmtu: number | null;
  /** The same after the probes: it drops when these probes' frag-needed taught the kernel. */
  kernelPmtuAfter: number | null;
  /** Outer sizes sent (bytes), largest first. */
  sizes: number[];
  /** An ICMP fragmentation-needed quoting one of these probes: who sent it, its next-hop MTU, the quoted size. */
  fragNeeded: { from: string; mtu: number; size: number } | null;
  /** Smallest size the sender's own kernel refused with EMSGSIZE, if any. */
  refusedSize: number | null;
  /** A TTL-limited trace (sent when no frag-needed came): see MtuTrace. */
  trace?: MtuTrace;
}

/**
 * What TTL-limited DF probes found (the mtu check, when the limit is silent): `size` a size that does not
 * arrive; `reached` the hops (TTL, address) that answered such a probe with time-exceeded — the large
 * packet got that far; `first` the address answering a small TTL-1 probe, asked only when no large one
 * was answered (the limit is then on the sender's first link).
 */
export interface MtuTrace {
  size: number;
  maxTtl: number;
  reached: Array<{ ttl: number; from: string }>;
  first: string | null;
}

/** What the destination witnessed of one flow (DESIGN §2, middle columns). */
export interface WitnessSummary {
  idx: number;
  /** Seen arriving on an interface (packet socket, before any firewall). */
  interfaceSeen: boolean;
  interfaceName: string | null;
  /** Seen at the socket layer (raw socket, after the INPUT hook). */
  socketSeen: boolean;
  /** Source address of the probe as the destination observed it. */
  observedSource: string | null;
  count: number;
  /** Largest IPv4 total length of this flow's probes seen on an interface / at the socket layer (0: none). */
  ifaceSize?: number;
  socketSize?: number;
}

/** What a destination responder reports about its witnessing ability for a session. */
export interface WitnessLog {
  /** Whether a packet socket could be opened (interface-level evidence available). */
  capture: boolean;
  records: WitnessSummary[];
}

export type Change = 'unchanged' | 'regressed' | 'fixed' | 'new';

/** One result per (check, from, to): the public contract. */
export interface FlowResult {
  check: CheckId;
  from: string;
  to: string;
  verdict: Verdict;
  cause: Cause | null;
  rejectedBy: string | null;
  detail: string;
  rttMs: number | null;
  attempts: number;
  observedSource: string | null;
  /** Added: whose problem it is (null for pass, unknown, and where the facts cannot tell). Absent in old reports. */
  where?: Where | null;
  /** Added: the evidence the verdict rests on. Absent in old reports. */
  facts?: Facts;
  /** Added: destination address and port, for readers who do not keep the inventory. */
  toAddress?: string;
  port?: number | null;
  /** Added: true when only the source side could judge (no responder at the destination). */
  sourceOnly?: boolean;
  /** Added (fact): the sender's reply socket failed to receive while the probe waited (errno name). */
  receiveError?: string;
  /** verify only. */
  change?: Change;
  /** Added (verify, on fixed flows): what the baseline said of the flow, so the HTML can say what got fixed. */
  was?: Pick<FlowResult, 'verdict' | 'cause' | 'rejectedBy'> & { where?: Where | null };
  /** --explain: the host rule that took the verdict, as the user wrote it. */
  rule?: RuleFact;
  /** --explain ran for this flow but names no rule: why (words, for people). */
  explainNote?: string;
  /** mtu check: largest outer IPv4 packet (bytes) that arrived, and the sender's host MTU. */
  pathMtu?: number | null;
  hostMtu?: number | null;
  /** mtu check: the hop that limits the path (the address that sent fragmentation-needed and the next-hop
   *  MTU it named, or one located by TTL-limited probes); null when not found. */
  hop?: Hop | null;
  /** mtu check: the path MTU the sender's kernel had already learnt for the peer before the test (IP_MTU). */
  kernelPmtu?: number | null;
  /** Added: the kernel's drop reason (skb:kfree_skb), null when it could not be read. Kept apart from any firewall rule. */
  dropReason?: string | null;
  /** Added: tries sent and how many of them got nothing back / did not arrive (where known). */
  tries?: number;
  lost?: number;
}

export interface ReportNode {
  name: string;
  address: string;
  roles?: Role[];
}

export interface Summary {
  pass: number;
  fail: number;
  unknown: number;
}

export interface DiagnosisStatement {
  /** One sentence explaining a group of failures. */
  text: string;
  /** Where it happened: 'source' (egress), 'path', 'destination' (ingress), 'responder' ... */
  where: string;
  flows: number;
  /** What to check, in plain words. */
  advice: string;
  examples: Array<{ check: CheckId; from: string; to: string }>;
  /** Added (verify): these failures were already in the baseline; statements without it are new. */
  known?: boolean;
}

export interface Report {
  schemaVersion: 1;
  tool: { name: 'calico-nettest'; version: string };
  startedAt: string;
  finishedAt: string;
  nodes: ReportNode[];
  results: FlowResult[];
  summary: Summary;
  /** Added: the command that produced it ('mesh' | 'pair' | 'verify'). */
  command?: string;
  /** Added: true when the run was interrupted; results then cover only what finished. */
  incomplete?: boolean;
  /** Added: the checks and ports the plan used. */
  checks?: CheckId[];
  ports?: Partial<Record<CheckId, number>>;
  diagnosis?: DiagnosisStatement[];
  /** --explain: what was traced where, and what the hosts added and removed. */
  explain?: ExplainSummary;
  /** Added (mesh): each node's preflight findings (Calico's host requirements), absent with --no-preflight. */
  findings?: Finding[];
  /** verify only. */
  baseline?: {
    startedAt: string;
    summary: Summary;
    file?: string;
    /** Added: how many of the baseline's flows this run did not test (another --checks, a node removed, Ctrl-C). */
    notTested?: number;
    /** Added: their keys ("check from -> to"), the first NOT_TESTED_LIST_CAP of them. */
    notTestedFlows?: string[];
    /** Added: checks of the baseline this run left out, and baseline nodes it does not have. */
    notTestedChecks?: string[];
    notTestedNodes?: string[];
    /** Added: why the comparison is weak (an incomplete baseline, one of other nodes). */
    warnings?: string[];
  };
}
