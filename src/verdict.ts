// The verdict join (DESIGN §2): what the source saw + what the destination witnessed -> one result per flow.
// Pure: data in, data out. Every row of the DESIGN table is a branch here and a test in test/unit/verdict.ts.
import { CATALOGUE } from './checks/catalogue.js';
import type { Cause, FlowResult, PlannedFlow, SourceOutcome, Verdict, WitnessSummary } from './types.js';

export interface JoinContext {
  /** Address of the sending node (to spot NAT: the destination observed another source). */
  fromAddress: string;
  /** The source's responder answered; when false there is no SourceOutcome. */
  sourceReachable: boolean;
  /** Why the source's responder could not be asked (for the detail). */
  sourceError?: string;
  /** The destination's witness log could be fetched (false: responder down or unreachable). */
  witnessAvailable: boolean;
  witnessError?: string;
  /** The destination could capture on its interfaces (a packet socket was open). */
  capture: boolean;
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

export function icmpName(icmp: { type: number; code: number } | null): string {
  if (!icmp) return 'an ICMP error';
  return `ICMP ${ICMP_NAMES[`${icmp.type}/${icmp.code}`] ?? `type ${icmp.type} code ${icmp.code}`}`;
}

function result(
  flow: PlannedFlow,
  src: SourceOutcome | undefined,
  wit: WitnessSummary | undefined,
  verdict: Verdict,
  cause: Cause | null,
  detail: string,
  extra: Partial<FlowResult> = {},
): FlowResult {
  const r: FlowResult = {
    check: flow.check,
    from: flow.from,
    to: flow.to,
    verdict,
    cause,
    rejectedBy: null,
    detail,
    rttMs: src?.rttMs ?? null,
    attempts: src?.attempts ?? 0,
    observedSource: wit?.observedSource ?? null,
    toAddress: flow.toAddress,
    port: flow.port,
    ...extra,
  };
  if (flow.sourceOnly) r.sourceOnly = true;
  if (src?.receiveError && !src.reply) r.receiveError = src.receiveError;
  return r;
}

/**
 * Silence that proves nothing: the sender's reply socket failed to receive (ENOBUFS: replies overflowed it)
 * while the probe waited, so the answer may have come and been lost on the sender itself.
 */
function receiveErrorResult(flow: PlannedFlow, src: SourceOutcome, wit: WitnessSummary | undefined, seen: string): FlowResult {
  return result(
    flow,
    src,
    wit,
    'unknown',
    'receive-error',
    `${seen}; but ${flow.from}'s reply socket failed to receive (${src.receiveError}) while it waited, so an answer may have been lost on ${flow.from} itself — run again (if it is ENOBUFS, lower --concurrency)`,
  );
}

/** Join one flow's evidence into its verdict. `wit` is undefined when the destination did not witness it. */
export function joinVerdict(
  flow: PlannedFlow,
  src: SourceOutcome | undefined,
  wit: WitnessSummary | undefined,
  ctx: JoinContext,
): FlowResult {
  const def = CATALOGUE[flow.check];
  // Only failures need these words; most flows pass, so they are made on demand.
  const traffic = () => def.traffic(flow.port);
  const rule = () => def.ruleHint(flow.port);
  const { from, to } = flow;

  if (!ctx.sourceReachable || !src) {
    return result(
      flow,
      src,
      wit,
      'unknown',
      'responder-unreachable',
      ctx.sourceError
        ? `could not ask ${from}'s responder to send the probe: ${ctx.sourceError}`
        : `could not ask ${from}'s responder to send the probe — is \`calico-nettest responder\` running on ${from}, and can this machine reach its control port?`,
    );
  }

  const natNote =
    wit?.observedSource && wit.observedSource !== ctx.fromAddress
      ? ` NAT in the path: ${to} saw the probe coming from ${wit.observedSource}, not ${ctx.fromAddress} — Calico's Felix allow-list and BIRD's peer matching break behind NAT.`
      : '';

  if (src.sendError) {
    if (src.sendError === 'EPERM' || src.sendError === 'EACCES') {
      return result(
        flow,
        src,
        wit,
        'fail',
        'egress-blocked',
        `refused by ${from}'s own firewall: sending failed with ${src.sendError} — look for a rule in ${from}'s OUTPUT chain dropping or rejecting ${traffic()} (iptables -S OUTPUT / nft list ruleset / firewalld; match ${rule()}).`,
      );
    }
    return result(
      flow,
      src,
      wit,
      'fail',
      'no-route',
      `${from} could not send to ${flow.toAddress}: ${src.sendError} — check ${from}'s routes to ${to} (ip route get ${flow.toAddress}).`,
    );
  }

  // A reply proves the probe left, whatever the capture saw (the reply can beat the capture's callback).
  if (src.left === false && !src.reply) {
    return result(
      flow,
      src,
      wit,
      'fail',
      'egress-blocked',
      `dropped by ${from}'s own firewall: the probe never left ${from} (not seen on any interface after ${src.attempts} tries) — look for a rule in ${from}'s OUTPUT/POSTROUTING dropping ${traffic()} (match ${rule()}).`,
    );
  }

  const interfaceSeen = wit?.interfaceSeen ?? false;
  const socketSeen = wit?.socketSeen ?? false;
  const arrivedOn = wit?.interfaceName ? ` on ${wit.interfaceName}` : '';

  // An answer from the far side that names the destination proves the round trip for TCP.
  if (src.reply === 'synack') {
    return result(flow, src, wit, 'pass', null, `handshake answered (SYN-ACK).${natNote}`);
  }

  if (flow.sourceOnly) {
    if (src.reply === 'rst') {
      return result(flow, src, wit, 'pass', null, `reset by ${src.replyFrom ?? flow.toAddress}: reachable, no listener (no responder at this endpoint to tell a REJECT rule from a closed port).`, {
        rejectedBy: src.replyFrom,
      });
    }
    if (src.reply === 'icmp') {
      return result(flow, src, wit, 'fail', 'rejected', `rejected by ${src.replyFrom} with ${icmpName(src.icmp)}.`, { rejectedBy: src.replyFrom });
    }
    if (src.receiveError) return receiveErrorResult(flow, src, wit, `no answer from ${to} (${flow.toAddress})`);
    return result(
      flow,
      src,
      wit,
      'fail',
      'blocked',
      `no answer from ${to} (${flow.toAddress}) after ${src.attempts} tries; it left ${from}${src.leftOn ? ` on ${src.leftOn}` : ''}, and with no responder at the endpoint the tool cannot tell the path from ${to}'s own firewall — check both for ${traffic()}.`,
    );
  }

  if (!ctx.witnessAvailable) {
    const what =
      src.reply === 'rst'
        ? `${flow.toAddress} answered with a reset (no listener, or a REJECT rule)`
        : src.reply === 'icmp'
          ? `${src.replyFrom} answered with ${icmpName(src.icmp)}`
          : 'nothing came back';
    return result(
      flow,
      src,
      wit,
      'unknown',
      'responder-unreachable',
      `${what}, and ${to}'s responder could not be asked what it saw${ctx.witnessError ? ` (${ctx.witnessError})` : ''} — is \`calico-nettest responder\` running on ${to}?`,
      src.reply ? { rejectedBy: src.replyFrom } : {},
    );
  }

  if (src.reply === 'rst' || src.reply === 'icmp') {
    const by = src.replyFrom ?? flow.toAddress;
    const answer = src.reply === 'rst' ? 'a TCP reset' : icmpName(src.icmp);
    if (socketSeen) {
      // It passed the destination's firewall: the answer is the host's own "nobody home".
      return result(flow, src, wit, 'pass', null, `reached a socket on ${to}${arrivedOn}; answered with ${answer}: no listener on ${traffic()}, the firewall passed it.${natNote}`);
    }
    const where = !ctx.capture
      ? `before reaching a socket on ${to}`
      : interfaceSeen
        ? `by ${to}'s own firewall: it arrived${arrivedOn} but never reached a socket`
        : `in the path: it never arrived at ${to}`;
    const advice = interfaceSeen
      ? `look for a REJECT rule in ${to}'s INPUT chain matching ${rule()}`
      : `look for a REJECT/deny rule for ${traffic()} on ${by}${by === flow.toAddress ? ` (or a device answering for it)` : ''} between ${from} and ${to}`;
    return result(flow, src, wit, 'fail', 'rejected', `rejected ${where} — ${by} answered with ${answer}; ${advice}.`, { rejectedBy: by });
  }

  // Nothing came back.
  if (flow.transport === 'tcp') {
    if (socketSeen) {
      if (src.receiveError) return receiveErrorResult(flow, src, wit, `arrived at ${to}${arrivedOn} and reached a socket, but no answer came back`);
      return result(
        flow,
        src,
        wit,
        'fail',
        'return-blocked',
        `arrived at ${to}${arrivedOn} and reached a socket, but no answer came back after ${src.attempts} tries — ${to}'s OUTPUT chain or the return path drops ${traffic()} replies (match ${rule().replace('--dport', '--sport')}).`,
      );
    }
  } else if (socketSeen) {
    return result(flow, src, wit, 'pass', null, `arrived${arrivedOn} and reached a socket on ${to}.${natNote}`);
  }

  if (!ctx.capture) {
    return result(
      flow,
      src,
      wit,
      'fail',
      'blocked',
      `never reached a socket on ${to} after ${src.attempts} tries; ${to} could not capture on its interfaces, so the path and ${to}'s own firewall cannot be told apart — check both for ${traffic()}.`,
    );
  }
  if (interfaceSeen) {
    return result(
      flow,
      src,
      wit,
      'fail',
      'ingress-blocked',
      `dropped by ${to}'s own firewall: arrived${arrivedOn} of ${to}, never reached a socket — look for a rule on ${to} dropping ${traffic()} (iptables/nftables/firewalld INPUT; match ${rule()}).${natNote}`,
    );
  }
  const leftNote = src.left === true ? `it left ${from}${src.leftOn ? ` on ${src.leftOn}` : ''} but ` : '';
  return result(
    flow,
    src,
    wit,
    'fail',
    'path-blocked',
    `dropped in the path: ${leftNote}never arrived at ${to} (${src.attempts} tries) — check what lies between ${from} and ${to} (cloud security groups, router ACLs, firewalls) for ${traffic()}.`,
  );
}
