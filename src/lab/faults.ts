// Lab faults: `ACTION:CHECK@WHERE` specs, the iptables rules that inject them into the lab's
// namespaces, and the verdict the tool must give for each flow under them (the tests' ground truth).
// See: iptables(8), iptables-extensions(8) (REJECT, comment).
import { CATALOGUE, didYouMean, isCheckId } from '../checks/catalogue.js';
import { CHECK_IDS, type Cause, type CheckId, type Transport } from '../types.js';

export type FaultAction = 'drop' | 'reject';
export type FaultWhere = { kind: 'in' | 'out' | 'return'; node: string } | { kind: 'path'; from: string; to: string };

export interface Fault {
  action: FaultAction;
  check: CheckId | 'all';
  where: FaultWhere;
  /** The spec as given (trimmed): also the rule comment's tag. */
  spec: string;
}

export class FaultError extends Error {
  readonly code = 'EFAULT' as const;
  constructor(message: string) {
    super(message);
    this.name = 'FaultError';
  }
}

export const FAULT_GRAMMAR = `A fault is ACTION:CHECK@WHERE
  ACTION  drop | reject
  CHECK   ${CHECK_IDS.join(' | ')} | all
  WHERE   NODE:in          the node's own INPUT chain (probes arriving)
          NODE:out         the node's own OUTPUT chain (probes it sends)
          NODE:return      the node's OUTPUT chain for the replies it sends (TCP checks only)
          path:NODE>NODE   the router's FORWARD chain, that direction only
Examples:
  drop:ipip@node2:in
  reject:typha@node1:in
  drop:vxlan@path:node1>node3
  drop:bgp@node2:out
  reject:bgp@path:node2>node1
  drop:bgp@node3:return`;

const NODE_RE = /^[A-Za-z0-9._-]{1,63}$/;

function bad(spec: string, what: string): FaultError {
  return new FaultError(`bad fault '${spec}': ${what}\n${FAULT_GRAMMAR}`);
}

/** Parse one `ACTION:CHECK@WHERE` spec. */
export function parseFault(input: string): Fault {
  const spec = input.trim();
  const at = spec.indexOf('@');
  if (at < 0) throw bad(spec, "missing '@' between the check and where it applies");
  const head = spec.slice(0, at);
  const tail = spec.slice(at + 1);
  if (tail.includes('@')) throw bad(spec, "more than one '@'");
  const colon = head.indexOf(':');
  if (colon < 0) throw bad(spec, `missing ':' between the action and the check in '${head}'`);
  const actionText = head.slice(0, colon).toLowerCase();
  const checkText = head.slice(colon + 1).toLowerCase();
  if (actionText !== 'drop' && actionText !== 'reject') {
    const guess = didYouMean(actionText, ['drop', 'reject']);
    throw bad(spec, `unknown action '${actionText}'${guess ? ` (did you mean '${guess}'?)` : ''}; use drop or reject`);
  }
  if (checkText !== 'all' && !isCheckId(checkText)) {
    const guess = didYouMean(checkText, [...CHECK_IDS, 'all']);
    throw bad(spec, `unknown check '${checkText}'${guess ? ` (did you mean '${guess}'?)` : ''}`);
  }
  const check: CheckId | 'all' = checkText === 'all' ? 'all' : (checkText as CheckId);
  const where = parseWhere(spec, tail);
  if (where.kind === 'return' && check !== 'all' && CATALOGUE[check].transport !== 'tcp') {
    throw bad(spec, `${check} is not TCP: its probes get no reply, so there is no return traffic to block`);
  }
  return { action: actionText, check, where, spec };
}

function parseWhere(spec: string, w: string): FaultWhere {
  if (w.startsWith('path:') && w.includes('>')) {
    const [from = '', to = '', ...rest] = w.slice(5).split('>');
    if (rest.length > 0) throw bad(spec, `path takes one direction, path:NODE>NODE, not '${w}'`);
    if (!NODE_RE.test(from)) throw bad(spec, `'${from}' is not a node name in '${w}'`);
    if (!NODE_RE.test(to)) throw bad(spec, `'${to}' is not a node name in '${w}'`);
    if (from === to) throw bad(spec, `path from ${from} to itself: traffic between two different nodes crosses the router`);
    return { kind: 'path', from, to };
  }
  const colon = w.lastIndexOf(':');
  if (colon < 0) throw bad(spec, `'${w}' should be NODE:in, NODE:out, NODE:return or path:NODE>NODE`);
  const node = w.slice(0, colon);
  const kind = w.slice(colon + 1).toLowerCase();
  if (node === 'path') throw bad(spec, `path needs a direction: path:NODE>NODE (quote specs with > in them: unquoted, the shell takes '>' for a redirect and makes a file)`);
  if (kind !== 'in' && kind !== 'out' && kind !== 'return') {
    const guess = didYouMean(kind, ['in', 'out', 'return']);
    throw bad(spec, `unknown place '${kind}'${guess ? ` (did you mean '${guess}'?)` : ''}; use in, out or return`);
  }
  if (!NODE_RE.test(node)) throw bad(spec, `'${node}' is not a node name`);
  return { kind, node };
}

/** Every node a fault names must exist in the lab. */
export function validateFaultNodes(fault: Fault, nodeNames: readonly string[]): void {
  const named = fault.where.kind === 'path' ? [fault.where.from, fault.where.to] : [fault.where.node];
  for (const n of named) {
    if (nodeNames.includes(n)) continue;
    const guess = didYouMean(n, nodeNames);
    throw new FaultError(
      `fault '${fault.spec}' names unknown node '${n}'${guess ? ` (did you mean '${guess}'?)` : ''}; lab nodes: ${nodeNames.join(', ')}`,
    );
  }
}

export interface FaultContext {
  /** The router's namespace. */
  router: string;
  nodes: Array<{ name: string; ns: string; ifname: string; routerIf: string; address: string }>;
  ports: Record<CheckId, number | null>;
}

export interface FaultRule {
  ns: string;
  argv: string[];
}

/** The checks a fault covers: `all` is every check (for `return`, every TCP check). */
export function faultChecks(fault: Fault): CheckId[] {
  const all = fault.check === 'all' ? [...CHECK_IDS] : [fault.check];
  return fault.where.kind === 'return' ? all.filter((c) => CATALOGUE[c].transport === 'tcp') : all;
}

export function faultComment(fault: Fault): string {
  return `cnt-fault:${fault.spec}`;
}

/** The iptables commands (appending, -A) that inject `fault`, one per check it covers. */
export function faultRules(fault: Fault, ctx: FaultContext): FaultRule[] {
  const rules: FaultRule[] = [];
  const seen = new Set<string>();
  for (const check of faultChecks(fault)) {
    const rule = ruleFor(fault, check, ctx);
    const key = `${rule.ns}\0${rule.argv.join('\0')}`;
    if (!seen.has(key)) {
      seen.add(key);
      rules.push(rule);
    }
  }
  return rules;
}

/** The iptables commands that remove exactly the rules `faultRules` added (-D with the same match). */
export function faultClearArgv(fault: Fault, ctx: FaultContext): FaultRule[] {
  return faultRules(fault, ctx).map(({ ns, argv }) => ({ ns, argv: argv.map((a, i) => (i === 1 && a === '-A' ? '-D' : a)) }));
}

function ruleFor(fault: Fault, check: CheckId, ctx: FaultContext): FaultRule {
  const transport = CATALOGUE[check].transport;
  const port = ctx.ports[check];
  if (transport !== 'ipip' && (port === null || port === undefined)) {
    throw new FaultError(`fault '${fault.spec}': check ${check} has no port in the lab's port table`);
  }
  const w = fault.where;
  const proto = transport === 'ipip' ? ['-p', '4'] : ['-p', transport, w.kind === 'return' ? '--sport' : '--dport', String(port)];
  const comment = ['-m', 'comment', '--comment', faultComment(fault)];
  const target = targetFor(fault.action, transport, w.kind === 'path');
  if (w.kind === 'path') {
    const from = labNode(fault, ctx, w.from);
    const to = labNode(fault, ctx, w.to);
    return { ns: ctx.router, argv: ['iptables', '-A', 'FORWARD', '-i', from.routerIf, '-o', to.routerIf, ...proto, ...comment, ...target] };
  }
  const node = labNode(fault, ctx, w.node);
  // The interface keeps the node's loopback (its own control traffic) out of the fault.
  const chainAndIf = w.kind === 'in' ? ['INPUT', '-i', node.ifname] : ['OUTPUT', '-o', node.ifname];
  return { ns: node.ns, argv: ['iptables', '-A', ...chainAndIf, ...proto, ...comment, ...target] };
}

function targetFor(action: FaultAction, transport: Transport, inPath: boolean): string[] {
  if (action === 'drop') return ['-j', 'DROP'];
  if (transport === 'tcp') return ['-j', 'REJECT', '--reject-with', 'tcp-reset'];
  // A router says "administratively prohibited"; a host says the port or protocol is unreachable.
  if (inPath) return ['-j', 'REJECT', '--reject-with', 'icmp-admin-prohibited'];
  return ['-j', 'REJECT', '--reject-with', transport === 'ipip' ? 'icmp-proto-unreachable' : 'icmp-port-unreachable'];
}

function labNode(fault: Fault, ctx: FaultContext, name: string): FaultContext['nodes'][number] {
  const n = ctx.nodes.find((x) => x.name === name);
  if (!n) validateFaultNodes(fault, ctx.nodes.map((x) => x.name));
  return n!;
}

export interface ExpectedOutcome {
  verdict: 'pass' | 'fail';
  cause: null | Extract<Cause, 'egress-blocked' | 'path-blocked' | 'ingress-blocked' | 'rejected' | 'return-blocked'>;
}

/**
 * The verdict the tool must give for `flow` under `faults`. The earliest hop wins: the source's
 * OUTPUT, then the path, then the destination's INPUT, then the destination's replies.
 */
export function expectedOutcome(
  faults: readonly Fault[],
  flow: { check: CheckId; from: string; to: string; transport: Transport },
): ExpectedOutcome {
  let best: { rank: number; cause: NonNullable<ExpectedOutcome['cause']> } | null = null;
  const consider = (rank: number, cause: NonNullable<ExpectedOutcome['cause']>) => {
    if (!best || rank < best.rank) best = { rank, cause };
  };
  for (const f of faults) {
    if (f.check !== 'all' && f.check !== flow.check) continue;
    const w = f.where;
    // Linux's REJECT sends no ICMP error for IP-in-IP: nf_send_unreach() first verifies a transport
    // checksum over the payload, which protocol 4 does not have, so the error is never sent and the
    // packet is simply dropped (seen on this kernel; see test/netns/mesh-faults.ts).
    const rejects = f.action === 'reject' && flow.transport !== 'ipip';
    switch (w.kind) {
      case 'out':
        // A local REJECT in OUTPUT fails the send itself, like a DROP there: the probe never left.
        if (w.node === flow.from) consider(0, 'egress-blocked');
        break;
      case 'path':
        if (w.from === flow.from && w.to === flow.to) consider(1, rejects ? 'rejected' : 'path-blocked');
        break;
      case 'in':
        if (w.node === flow.to) consider(2, rejects ? 'rejected' : 'ingress-blocked');
        break;
      case 'return':
        // Only TCP probes are answered; a rejected reply never reaches the source either.
        if (w.node === flow.to && flow.transport === 'tcp') consider(3, 'return-blocked');
        break;
    }
  }
  const found = best as { cause: NonNullable<ExpectedOutcome['cause']> } | null;
  return found ? { verdict: 'fail', cause: found.cause } : { verdict: 'pass', cause: null };
}
