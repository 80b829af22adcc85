// The verdict join (DESIGN §2): what the source saw + what the destination witnessed -> one result per flow.
// classify() is the DESIGN table, one branch per row, and returns data; describe() writes the human sentence
// from those facts alone. Pure: data in, data out. Every row is a test in test/unit/verdict.ts.
import { CATALOGUE } from './checks/catalogue.js';
import type { DestKernelFacts } from './kernel/facts.js';
import { isRpFilterRefusal, neighbourFailed } from './kernel/ip.js';
import { rpFilterName } from './kernel/rpfilter.js';
import { DEFAULT_MAX_LOSS, FIREWALL_CAUSES, flowLoss, type PathLoss } from './verdict-facts.js';
import type { Cause, Facts, FlowResult, NodeErrorKind, PlannedFlow, SourceOutcome, Verdict, Where, WitnessSummary } from './types.js';

export type { Facts, Where } from './types.js';

/** Why a responder could not be asked: its kind (data) and the words of the error. */
export interface NodeProblem {
  kind: NodeErrorKind;
  message: string;
  /** The control address that was tried ('198.18.0.3:5478'). */
  control?: string;
}

export interface JoinContext {
  /** Address of the sending node (to spot NAT: the destination observed another source). */
  fromAddress: string;
  /** The source's responder answered; when false there is no SourceOutcome. */
  sourceReachable: boolean;
  /** Why the source's responder could not be asked (a bare string is kind 'other'). */
  sourceError?: string | NodeProblem;
  /** The destination's witness log could be fetched (false: responder down or unreachable). */
  witnessAvailable: boolean;
  witnessError?: string | NodeProblem;
  /** The destination could capture on its interfaces (a packet socket was open). */
  capture: boolean;
  /** Added (issue 11): what the destination's kernel said (reverse path, conntrack); absent from old responders. */
  destKernel?: DestKernelFacts;
  /** Tries and lost tries of the flows of this flow's path (source -> destination) that got through at least once. */
  pathLoss?: PathLoss;
  /** A pass whose path lost more than this share of its tries is `lossy` (default DEFAULT_MAX_LOSS). */
  maxLoss?: number;
  /** The kernel's drop reason for this flow's probes (a name from the event's format), or why it could not be read. */
  dropReason?: { reason: string } | { unavailable: string };
  /** Packets the source's capture and the destination's witness shed or lost under load during the run. */
  sourceShed?: number;
  destinationShed?: number;
  /** Probe-shaped packets with a wrong proof the destination saw during the run. */
  destinationForged?: number;
}

/** Everything classify() may look at for one flow. */
export interface Evidence extends JoinContext {
  src: SourceOutcome | undefined;
  /** undefined when the destination did not witness the probe. */
  wit: WitnessSummary | undefined;
}

/** The verdict of one flow, as data. `rejectedBy` is the address that sent the RST / ICMP error, if any. */
export interface Classified {
  verdict: Verdict;
  cause: Cause | null;
  where: Where | null;
  rejectedBy: string | null;
  facts: Facts;
}

const ICMP_NAMES: Record<string, string> = {
  '3/0': 'network unreachable',
  '3/1': 'host unreachable',
  '3/2': 'protocol unreachable',
  '3/3': 'port unreachable',
  '3/9': 'network administratively prohibited',
  '3/10': 'host administratively prohibited',
  '3/13': 'communication administratively prohibited',
  '11/0': 'TTL exceeded in transit',
};

export function icmpName(icmp: { type: number; code: number } | null | undefined): string {
  if (!icmp) return 'an ICMP error';
  return `ICMP ${ICMP_NAMES[`${icmp.type}/${icmp.code}`] ?? `type ${icmp.type} code ${icmp.code}`}`;
}

function problem(p: string | NodeProblem | undefined): NodeProblem | undefined {
  return typeof p === 'string' ? { kind: 'other', message: p } : p;
}

/** What the source saw and the destination witnessed, as facts (absent fields: not seen / not known). */
function gather(flow: PlannedFlow, ev: Evidence): Facts {
  const f: Facts = {};
  const { src, wit } = ev;
  if (src) {
    f.tries = src.attempts;
    if (src.reply) f.reply = src.reply;
    // A SYN-ACK is matched to the probe from the destination itself; only a reset or ICMP error names a sender worth keeping.
    if (src.replyFrom && src.reply !== 'synack') f.replyFrom = src.replyFrom;
    if (src.icmp) f.icmp = { type: src.icmp.type, code: src.icmp.code };
    if (src.sendError) f.sendError = src.sendError;
    if (src.left !== null) f.left = src.left;
    if (src.leftOn) f.leftOn = src.leftOn;
    // The reply socket failed while this flow waited: a silence then proves nothing.
    if (src.receiveError && !src.reply) f.receiveError = src.receiveError;
    // The sender's kernel on an unanswered flow: its route to the peer and the next hop's neighbour state.
    if (src.route) {
      f.routeDev = src.route.dev;
      if (src.route.via) f.routeVia = src.route.via;
    }
    if (src.homeIf) f.homeIf = src.homeIf;
    if (src.neigh) f.neighbour = src.neigh;
  }
  // With nothing sent, an empty witness log says nothing.
  if (src && ev.sourceReachable && !flow.sourceOnly && ev.witnessAvailable) {
    f.capture = ev.capture;
    f.interfaceSeen = wit?.interfaceSeen ?? false;
    if (wit?.interfaceName) f.arrivedOn = wit.interfaceName;
    f.socketSeen = wit?.socketSeen ?? false;
    f.got = wit?.count ?? 0;
    if (wit?.observedSource && wit.observedSource !== ev.fromAddress) {
      f.observedSource = wit.observedSource;
      f.sentFrom = ev.fromAddress;
    }
    // Arrived but reached no socket: what the destination's kernel says of its way back to the sender.
    const rp = wit?.interfaceSeen && !wit.socketSeen && wit.interfaceName ? ev.destKernel?.reversePath.find((x) => x.source === (wit.observedSource ?? ev.fromAddress) && x.iif === wit.interfaceName) : undefined;
    if (rp) {
      f.rpSource = rp.source;
      f.rpLookup = rp.lookupError ?? 'ok';
      if (rp.rpFilter !== null) f.rpFilter = rp.rpFilter;
      if (rp.backDev) f.routeBack = rp.backDev;
      if (rp.backVia) f.routeBackVia = rp.backVia;
      if (ev.destKernel?.rpFilterDrops != null) f.rpFilterDrops = ev.destKernel.rpFilterDrops;
    }
    if (flow.transport === 'ipip' && ev.destKernel?.conntrack.preexisting.includes(ev.fromAddress)) f.conntrackPreexisting = true;
  }
  // Loss (issue 11): this flow's lost tries, and its path's share when other tries on it were lost.
  const loss = ev.witnessAvailable || flow.transport === 'tcp' ? flowLoss(flow, src, wit) : null;
  if (loss) f.lost = loss.lost;
  if (ev.pathLoss && ev.pathLoss.tries > 0 && ev.pathLoss.lost > 0) {
    f.pathLost = ev.pathLoss.lost;
    f.pathTries = ev.pathLoss.tries;
    f.maxLoss = ev.maxLoss ?? DEFAULT_MAX_LOSS;
  }
  const shed = (ev.sourceShed ?? 0) + (flow.sourceOnly ? 0 : (ev.destinationShed ?? 0));
  if (shed > 0) f.shed = shed;
  if (!flow.sourceOnly && (ev.destinationForged ?? 0) > 0) f.forged = ev.destinationForged;
  return f;
}

/** Causes that rest on something not being seen (a capture, a witness, a reply). */
const FROM_ABSENCE: ReadonlySet<Cause | null> = new Set(['egress-blocked', 'path-blocked', 'ingress-blocked', 'blocked', 'rejected', 'return-blocked']);

function unreachable(f: Facts, node: string, p: NodeProblem | undefined): Facts {
  f.responder = node;
  if (p) {
    f.errorKind = p.kind;
    f.error = p.message;
    if (p.control) f.control = p.control;
  }
  return f;
}

/**
 * The DESIGN §2 table, row by row: facts in, `{ verdict, cause, where, facts }` out. Where the facts
 * cannot tell the path from the destination (no capture, no responder at the endpoint, a lost reply),
 * `where` is null rather than a guess.
 */
export function classify(flow: PlannedFlow, ev: Evidence): Classified {
  const c = classifyRows(flow, ev);
  // Row: a responder on the flow shed or lost packets under load (a flood?): what it did not see proves nothing.
  // A refused send is the source's own word and stands; so does every pass (proven by a MAC), and a drop
  // the receiver's kernel recorded with its reason (seen, not inferred from absence).
  const kernelSaid = c.facts.dropReason !== undefined && c.facts.dropReason !== 'NO_SOCKET';
  if (c.verdict === 'fail' && c.facts.shed !== undefined && !c.facts.sendError && !kernelSaid && FROM_ABSENCE.has(c.cause)) {
    return { ...c, verdict: 'unknown', cause: 'overloaded', where: null, rejectedBy: null };
  }
  return c;
}

function classifyRows(flow: PlannedFlow, ev: Evidence): Classified {
  const facts = gather(flow, ev);
  const { src } = ev;
  const out = (verdict: Verdict, cause: Cause | null, where: Where | null, rejectedBy: string | null = null): Classified => {
    // Row (loss is not a firewall): a pass whose path lost more than --max-loss of its tries, this flow's among them.
    if (verdict === 'pass' && (facts.lost ?? 0) > 0 && facts.pathLost !== undefined && facts.pathLost / facts.pathTries! > facts.maxLoss!) return fail('lossy', 'path', rejectedBy);
    return verdict === 'fail' ? fail(cause, where, rejectedBy) : { verdict, cause, where, rejectedBy, facts };
  };
  // A failure carries the kernel's drop reason, or why it could not be read (passes carry neither: their facts stay alike).
  const fail = (cause: Cause | null, where: Where | null, rejectedBy: string | null): Classified => {
    if (ev.dropReason && 'reason' in ev.dropReason) {
      facts.dropReason = ev.dropReason.reason;
      // Row (the kernel's own word): a firewall cause the receiver's kernel explains otherwise.
      const byKernel = kernelCause(cause, ev.dropReason.reason);
      if (byKernel) return { verdict: 'fail', cause: byKernel, where: 'destination', rejectedBy, facts };
    } else if (ev.dropReason) facts.dropReasonUnavailable = ev.dropReason.unavailable;
    return { verdict: 'fail', cause, where, rejectedBy, facts };
  };

  // Row: the source's responder could not be asked to send the probe.
  if (!ev.sourceReachable || !src) {
    unreachable(facts, flow.from, problem(ev.sourceError));
    return out('unknown', 'responder-unreachable', null);
  }
  // Row: send refused (EPERM) -> the source's own OUTPUT chain; EHOSTUNREACH -> nobody answers for the
  // address; any other send error is a route problem (the sender's own route, when it leaves by another interface).
  if (src.sendError) {
    if (src.sendError === 'EPERM' || src.sendError === 'EACCES') return out('fail', 'egress-blocked', 'source');
    if (src.sendError === 'EHOSTUNREACH') return out('fail', 'host-unreachable', 'path');
    if (misroutedVia(facts)) return out('fail', 'misrouted', 'source');
    return out('fail', 'no-route', 'source');
  }
  const wit = ev.witnessAvailable && !flow.sourceOnly ? ev.wit : undefined;
  // Row: nobody answers for the address: ICMP host unreachable (the sender's kernel or a router, when ARP
  // gave up), or no answer while the sender's neighbour entry for the next hop is FAILED / INCOMPLETE.
  if (src.reply === 'icmp' && src.icmp?.type === 3 && src.icmp.code === 1 && !wit?.socketSeen) {
    facts.sentFrom = ev.fromAddress;
    if (src.rttMs !== null) facts.replyMs = Math.round(src.rttMs);
    return out('fail', 'host-unreachable', 'path', src.replyFrom);
  }
  if (!src.reply && neighbourFailed(src.neigh) && !wit?.interfaceSeen) return out('fail', 'host-unreachable', 'path');
  // Row: it arrived, reached no socket, and the receiver's own reverse-path check refuses it: its kernel's
  // lookup fails (EXDEV, "invalid cross-device link"), or rp_filter is strict and the route back leaves by another interface.
  if (wit?.interfaceSeen && !wit.socketSeen && facts.rpLookup !== undefined) {
    const refused = isRpFilterRefusal(facts.rpLookup) || (facts.rpFilter === 1 && facts.routeBack !== undefined && facts.routeBack !== wit.interfaceName);
    if (refused) return out('fail', 'rp-filter', 'destination');
  }
  // Row: unanswered, and the sender's own route leaves by another interface than the one holding its address.
  if (!src.reply && !(flow.transport !== 'tcp' && wit?.socketSeen) && misroutedVia(facts)) return out('fail', 'misrouted', 'source');
  // Row: never left. A reply, or the destination's socket, proves the probe left, whatever the capture saw
  // (the reply can beat its callback).
  if (src.left === false && !src.reply && !wit?.socketSeen) return out('fail', 'egress-blocked', 'source');
  // Row: a SYN-ACK names the destination: the round trip works.
  if (src.reply === 'synack') return out('pass', null, null);

  // No responder at the endpoint: only the source side can judge.
  if (flow.sourceOnly) {
    if (src.reply === 'rst') return out('pass', null, null, src.replyFrom);
    if (src.reply === 'icmp') {
      // Another address answering is a device in the path; the endpoint itself could be its own firewall or a closed port.
      const where = src.replyFrom && src.replyFrom !== flow.toAddress ? 'path' : null;
      return out('fail', 'rejected', where, src.replyFrom);
    }
    if (facts.receiveError) return out('unknown', 'receive-error', null);
    return out('fail', 'blocked', null);
  }

  // Row: the destination's witness log could not be fetched: judged from the source side as far as it can be
  // (facts.responder names the destination either way).
  if (!ev.witnessAvailable) {
    unreachable(facts, flow.to, problem(ev.witnessError));
    if (src.reply === 'rst') return out('pass', null, null, src.replyFrom);
    if (src.reply === 'icmp') {
      // Port / protocol unreachable from the destination itself is its kernel's "nobody home" (no socket, no handler).
      const closed = src.replyFrom === flow.toAddress && src.icmp?.type === 3 && (src.icmp.code === 2 || src.icmp.code === 3);
      if (closed) return out('pass', null, null, src.replyFrom);
      return out('fail', 'rejected', src.replyFrom && src.replyFrom !== flow.toAddress ? 'path' : null, src.replyFrom);
    }
    // TCP always gets an answer from a reachable host (a SYN-ACK, a reset): silence is a drop somewhere.
    if (flow.transport === 'tcp' && src.attempts > 0 && !facts.receiveError) return out('fail', 'blocked', null);
    return out('unknown', 'responder-unreachable', null);
  }

  const interfaceSeen = facts.interfaceSeen === true;
  const socketSeen = facts.socketSeen === true;

  // Rows: RST / ICMP unreachable. Witnessed at a socket: the host's own "nobody home" (pass); else rejected.
  if (src.reply === 'rst' || src.reply === 'icmp') {
    if (socketSeen) return out('pass', null, null);
    const by = src.replyFrom ?? flow.toAddress;
    // The receiver's kernel freed the probe with NO_SOCKET and answered it itself: it reached the transport
    // layer and found no listener — a closed port, not a REJECT (a REJECT rule's drop is NETFILTER_DROP).
    if (by === flow.toAddress && ev.dropReason && 'reason' in ev.dropReason && ev.dropReason.reason === 'NO_SOCKET' && (src.reply === 'rst' || (src.icmp?.type === 3 && (src.icmp.code === 2 || src.icmp.code === 3)))) {
      facts.dropReason = 'NO_SOCKET';
      return out('pass', null, null);
    }
    // A reset in the destination's name that the destination never saw: forged by something in the path.
    if (src.reply === 'rst' && ev.capture && !interfaceSeen && by === flow.toAddress) facts.forgedReset = true;
    const where: Where | null = ev.capture ? (interfaceSeen ? 'destination' : 'path') : by !== flow.toAddress ? 'path' : null;
    return out('fail', 'rejected', where, by);
  }

  // Nothing came back.
  if (flow.transport === 'tcp') {
    // Row: TCP witnessed at both layers, no answer: the destination's OUTPUT or the return path.
    if (socketSeen) return facts.receiveError ? out('unknown', 'receive-error', null) : out('fail', 'return-blocked', null);
  } else if (socketSeen) {
    // Row: UDP / IP-in-IP reached a socket: pass.
    return out('pass', null, null);
  }
  // No capture at the destination: path and ingress cannot be told apart.
  if (!ev.capture) return out('fail', 'blocked', null);
  if (interfaceSeen) return out('fail', 'ingress-blocked', 'destination');
  return out('fail', 'path-blocked', 'path');
}

/**
 * What the receiver's drop reason makes of a cause the table would blame on a firewall: NETFILTER_DROP
 * confirms it (and puts it at the receiver where capture could not tell the path from it), IP_RPFILTER is
 * reverse-path filtering, any other reason is the kernel's own drop. A cause of the sender (egress-blocked)
 * stands: the receiver's watch saw its packets, not the sender's. null: the cause stands.
 */
export function kernelCause(cause: Cause | null, reason: string): Cause | null {
  // NO_SOCKET: the kernel answered the probe itself (a reset, port unreachable) — not a silent drop, and not
  // why an answer never came back (that answer was lost on the way: return-blocked stands).
  if (cause === null || !FIREWALL_CAUSES.has(cause) || cause === 'egress-blocked' || reason === 'NO_SOCKET') return null;
  if (reason === 'NETFILTER_DROP') return cause === 'blocked' || cause === 'path-blocked' ? 'ingress-blocked' : null;
  if (reason === 'IP_RPFILTER') return 'rp-filter';
  return 'kernel-drop';
}

/** The interface the sender's probe left by (seen, else its route) when that is not the one holding its address. */
function misroutedVia(f: Facts): string | null {
  if (!f.homeIf) return null;
  const dev = f.leftOn && f.leftOn !== '?' ? f.leftOn : f.routeDev;
  return dev && dev !== f.homeIf ? dev : null;
}

const pct = (x: number) => `${Math.round(x * 100)}%`;

/** The sentence's notes that facts add to any cause: the loss seen on the path, and a stateful firewall's old entry. */
function notes(flow: PlannedFlow, c: Classified): string {
  const f = c.facts;
  let s = '';
  const path = f.pathLost !== undefined && f.pathTries ? ` (the path ${flow.from}→${flow.to}: ${pct(f.pathLost / f.pathTries)} of ${f.pathTries} tries lost, --max-loss ${pct(f.maxLoss ?? DEFAULT_MAX_LOSS)})` : '';
  if (c.verdict === 'pass' && (f.lost ?? 0) > 0) s += ` ${f.lost} of ${f.tries ?? '?'} tries were lost${path}.`;
  else if (c.cause && FIREWALL_CAUSES.has(c.cause) && path) s += ` Other flows on this path got through${path}; this one got nothing through in ${f.tries ?? '?'} tries, which loss alone makes very unlikely.`;
  if (f.conntrackPreexisting) {
    s += ` ${flow.to} already had a conntrack entry for IP-in-IP with ${flow.from} before the test (real tunnel traffic?), so a fresh flow could not be tested: a stateful firewall would let this in as part of it.`;
  }
  return s;
}

/** The human sentence of a classified flow (the report's `detail`), written from the flow and the facts alone. */
export function describe(flow: PlannedFlow, c: Classified): string {
  return sentence(flow, c) + notes(flow, c);
}

function sentence(flow: PlannedFlow, c: Classified): string {
  const def = CATALOGUE[flow.check];
  const f = c.facts;
  const { from, to } = flow;
  const traffic = () => def.traffic(flow.port);
  const rule = () => def.ruleHint(flow.port);
  const tries = f.tries ?? 0;
  const arrivedOn = f.arrivedOn ? ` on ${f.arrivedOn}` : '';
  const natNote =
    f.observedSource !== undefined
      ? ` NAT in the path: ${to} saw the probe coming from ${f.observedSource}, not ${f.sentFrom ?? '?'} — Calico's Felix allow-list and BIRD's peer matching break behind NAT.`
      : '';

  switch (c.cause) {
    case null:
      if (f.reply === 'synack') return `handshake answered (SYN-ACK).${natNote}`;
      if (f.responder === to) {
        const why = `${to}'s responder could not be asked what it saw, so only ${from}'s side judges: a REJECT rule cannot be told from a closed port`;
        if (f.reply === 'rst') return `reset by ${c.rejectedBy ?? flow.toAddress}: reachable, no listener (${why}).`;
        return `${to}'s kernel answered with ${icmpName(f.icmp)}: reachable, nothing handles it there now (${why}).`;
      }
      if (flow.sourceOnly) return `reset by ${f.replyFrom ?? flow.toAddress}: reachable, no listener (no responder at this endpoint to tell a REJECT rule from a closed port).`;
      if (f.reply === 'rst' || f.reply === 'icmp') {
        const answer = f.reply === 'rst' ? 'a TCP reset' : icmpName(f.icmp);
        return `reached a socket on ${to}${arrivedOn}; answered with ${answer}: no listener on ${traffic()}, the firewall passed it.${natNote}`;
      }
      return `arrived${arrivedOn} and reached a socket on ${to}.${natNote}`;

    case 'responder-unreachable': {
      if (f.responder === from) {
        return f.error
          ? `could not ask ${from}'s responder to send the probe: ${f.error}`
          : `could not ask ${from}'s responder to send the probe — is \`calico-nettest responder\` running on ${from}, and can this machine reach its control port?`;
      }
      const what =
        f.reply === 'rst'
          ? `${f.replyFrom ?? flow.toAddress} answered with a reset (no listener, or a REJECT rule)`
          : f.reply === 'icmp'
            ? `${f.replyFrom} answered with ${icmpName(f.icmp)}`
            : 'nothing came back';
      return `${what}, and ${to}'s responder could not be asked what it saw${f.error ? ` (${f.error})` : ''} — is \`calico-nettest responder\` running on ${to}?`;
    }

    case 'egress-blocked':
      if (f.sendError) {
        return `refused by ${from}'s own firewall: sending failed with ${f.sendError} — look for a rule in ${from}'s OUTPUT chain dropping or rejecting ${traffic()} (iptables -S OUTPUT / nft list ruleset / firewalld; match ${rule()}).`;
      }
      return `dropped by ${from}'s own firewall: the probe never left ${from} (not seen on any interface after ${tries} tries) — look for a rule in ${from}'s OUTPUT/POSTROUTING dropping ${traffic()} (match ${rule()}).`;

    case 'no-route':
      return `${from} could not send to ${flow.toAddress}: ${f.sendError ?? 'error'} — check ${from}'s routes to ${to} (ip route get ${flow.toAddress}).`;

    case 'rejected': {
      if (flow.sourceOnly) return `rejected by ${f.replyFrom ?? flow.toAddress} with ${icmpName(f.icmp)}.`;
      if (f.responder === to) return `rejected by ${c.rejectedBy ?? flow.toAddress} with ${icmpName(f.icmp)} (${to}'s responder could not be asked what it saw, so only ${from}'s side judges).`;
      if (f.forgedReset) {
        return `rejected in the path: a TCP reset came back in ${to}'s name (${flow.toAddress}), but ${to} never saw the probe arrive — something between ${from} and ${to} answered for it (a router or firewall with REJECT --reject-with tcp-reset); ${to}'s own firewall is not involved.`;
      }
      const by = c.rejectedBy ?? flow.toAddress;
      const answer = f.reply === 'rst' ? 'a TCP reset' : icmpName(f.icmp);
      const place = !f.capture
        ? `before reaching a socket on ${to}`
        : f.interfaceSeen
          ? `by ${to}'s own firewall: it arrived${arrivedOn} but never reached a socket`
          : `in the path: it never arrived at ${to}`;
      const advice = f.interfaceSeen
        ? `look for a REJECT rule in ${to}'s INPUT chain matching ${rule()}`
        : `look for a REJECT/deny rule for ${traffic()} on ${by}${by === flow.toAddress ? ` (or a device answering for it)` : ''} between ${from} and ${to}`;
      return `rejected ${place} — ${by} answered with ${answer}; ${advice}.`;
    }

    case 'return-blocked':
      return `arrived at ${to}${arrivedOn} and reached a socket, but no answer came back after ${tries} tries — ${to}'s OUTPUT chain or the return path drops ${traffic()} replies (match ${def.replyRuleHint(flow.port)}).`;

    case 'blocked':
      if (f.responder === to) {
        return `no answer from ${to} (${flow.toAddress}) after ${tries} tries — not even a reset; ${to}'s responder could not be asked what it saw, so the path and ${to}'s own firewall cannot be told apart. Start the responder on ${to} to tell which.`;
      }
      if (flow.sourceOnly) {
        return `no answer from ${to} (${flow.toAddress}) after ${tries} tries; it left ${from}${f.leftOn ? ` on ${f.leftOn}` : ''}, and with no responder at the endpoint the tool cannot tell the path from ${to}'s own firewall — check both for ${traffic()}.`;
      }
      return `never reached a socket on ${to} after ${tries} tries; ${to} could not capture on its interfaces, so the path and ${to}'s own firewall cannot be told apart — check both for ${traffic()}.`;

    case 'ingress-blocked':
      return `dropped by ${to}'s own firewall: arrived${arrivedOn} of ${to}, never reached a socket — look for a rule on ${to} dropping ${traffic()} (iptables/nftables/firewalld INPUT; match ${rule()}).${natNote}`;

    case 'path-blocked': {
      const leftNote = f.left === true ? `it left ${from}${f.leftOn ? ` on ${f.leftOn}` : ''} but ` : '';
      return `dropped in the path: ${leftNote}never arrived at ${to} (${tries} tries) — check what lies between ${from} and ${to} (cloud security groups, router ACLs, firewalls) for ${traffic()}.`;
    }

    case 'receive-error': {
      const seen = flow.sourceOnly ? `no answer from ${to} (${flow.toAddress})` : `arrived at ${to}${arrivedOn} and reached a socket, but no answer came back`;
      return `${seen}; but ${from}'s reply socket failed to receive (${f.receiveError}) while it waited, so an answer may have been lost on ${from} itself — run again (if it is ENOBUFS, lower --concurrency)`;
    }

    case 'host-unreachable': {
      const hop = f.routeVia ?? flow.toAddress;
      let how: string;
      if (f.reply === 'icmp') {
        const quick = f.replyMs !== undefined && f.replyMs < 500 ? ` at once (${f.replyMs} ms) — a neighbour failure takes seconds, so this may also be a REJECT --reject-with icmp-host-unreachable rule` : '';
        how = `${f.replyFrom === f.sentFrom ? `${from}'s own kernel` : c.rejectedBy ?? 'a router'} answered with ICMP host unreachable${quick}`;
      } else if (f.sendError === 'EHOSTUNREACH') how = 'sending failed with EHOSTUNREACH';
      else how = `${from}'s neighbour entry for ${hop}${f.routeDev ? ` on ${f.routeDev}` : ''} is ${f.neighbour ?? '?'}: nobody answered ARP`;
      return `nobody answers for ${flow.toAddress}: ${how} — no firewall involved; check that ${to} is up at that address on that subnet (ip neigh show ${hop}).`;
    }

    case 'rp-filter': {
      const source = f.rpSource ?? f.observedSource ?? '?';
      const iif = f.arrivedOn ?? '?';
      const back = f.routeBack
        ? `its route back to ${source} is via ${f.routeBack}${f.routeBackVia ? ` (${f.routeBackVia})` : ''}, not ${iif} where they arrive`
        : f.rpLookup !== undefined
          ? `its reverse-path lookup for ${source} on ${iif} fails (${f.rpLookup})`
          : `it filters them by reverse path (its drop reason: IP_RPFILTER)`;
      const drops = f.rpFilterDrops ? ` (TcpExtIPReversePathFilter counted ${f.rpFilterDrops} drops during the test)` : '';
      const rp = f.rpFilter ?? null;
      return `${to}'s kernel drops them: ${back}, and rp_filter=${rp ?? '?'} (${rpFilterName(rp)}) on ${iif}${drops} — no firewall rule involved; fix ${to}'s route to ${from} (ip route get ${source} on ${to}) or set rp_filter=2 (loose) on ${iif}.`;
    }

    case 'kernel-drop':
      return `${to}'s kernel dropped it (reason ${f.dropReason ?? '?'}): no firewall rule did — it arrived${arrivedOn} and ${to}'s own kernel discarded it; look up SKB_DROP_REASON_${f.dropReason ?? '?'} (include/net/dropreason-core.h) for what it checks.${natNote}`;

    case 'misrouted': {
      const dev = misroutedVia(f) ?? '?';
      const via = f.routeVia ? ` (${f.routeVia})` : '';
      return `${from} sends to ${to} via ${dev}${via}, not ${f.homeIf} (where its own address is)${f.left === false ? ', and nothing of it left' : ''} — no firewall involved; check ${from}'s routes (ip route get ${flow.toAddress}).`;
    }

    case 'lossy': {
      const got = (f.tries ?? 0) - (f.lost ?? 0);
      const ratio = f.pathTries ? f.pathLost! / f.pathTries : 0;
      return `${got} of ${f.tries ?? '?'} tries got through; the path ${from}→${to} lost ${f.pathLost} of ${f.pathTries} tries (${pct(ratio)}, above --max-loss ${pct(f.maxLoss ?? DEFAULT_MAX_LOSS)}) — loss, not a firewall: check the links and devices between them.`;
    }

    case 'overloaded':
      return `cannot tell: the responders of ${from} and ${to} shed or lost ${f.shed ?? 0} packets under load during the run (a flood shaped like probes?), so what they did not see proves nothing${f.reply ? ` (${from} got ${f.reply === 'rst' ? 'a reset' : f.reply === 'icmp' ? icmpName(f.icmp) : 'a SYN-ACK'} back)` : ''} — run again when the load is gone${f.forged ? `; ${to} also saw ${f.forged} forged probes` : ''}.`;

    default:
      return `${c.verdict} (${c.cause})`;
  }
}

/** The report's result for a flow: its classification, its sentence, and the flow's own fields. */
export function toResult(flow: PlannedFlow, src: SourceOutcome | undefined, wit: WitnessSummary | undefined, c: Classified, detail = describe(flow, c)): FlowResult {
  const r: FlowResult = {
    check: flow.check,
    from: flow.from,
    to: flow.to,
    verdict: c.verdict,
    cause: c.cause,
    rejectedBy: c.rejectedBy,
    detail,
    rttMs: src?.rttMs ?? null,
    attempts: src?.attempts ?? 0,
    observedSource: wit?.observedSource ?? null,
    where: c.where,
    facts: c.facts,
    toAddress: flow.toAddress,
    port: flow.port,
  };
  if (flow.sourceOnly) r.sourceOnly = true;
  if (c.facts.receiveError) r.receiveError = c.facts.receiveError;
  if (c.facts.lost !== undefined) {
    r.tries = c.facts.tries ?? r.attempts;
    r.lost = c.facts.lost;
  }
  // The kernel's reason, kept apart from any rule; null: a failure whose reason could not be read.
  if (c.facts.dropReason !== undefined) r.dropReason = c.facts.dropReason;
  else if (c.verdict === 'fail') r.dropReason = null;
  return r;
}

/** Join one flow's evidence into its result. `wit` is undefined when the destination did not witness it. */
export function joinVerdict(flow: PlannedFlow, src: SourceOutcome | undefined, wit: WitnessSummary | undefined, ctx: JoinContext): FlowResult {
  return toResult(flow, src, wit, classify(flow, { ...ctx, src, wit }));
}
