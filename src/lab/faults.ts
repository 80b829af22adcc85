// Lab faults: `ACTION:CHECK@WHERE` specs, the iptables rules that inject them into the lab's
// namespaces, and the verdict the tool must give for each flow under them (the tests' ground truth).
// See: iptables(8), iptables-extensions(8) (REJECT, comment).
import { CATALOGUE, checkList, didYouMean, isCheckId } from '../checks/catalogue.js';
import { CHECK_IDS, type Cause, type CheckId, type Transport } from '../types.js';
import { EXIT, UserError } from '../errors.js';

export type FaultAction = 'drop' | 'reject' | 'mtu';
export type FaultWhere = { kind: 'in' | 'out' | 'return'; node: string } | { kind: 'path'; from: string; to: string } | { kind: 'link'; node: string };

export interface Fault {
  action: FaultAction;
  check: CheckId | 'all';
  where: FaultWhere;
  /** The spec as given (trimmed): also the rule comment's tag. */
  spec: string;
  /** mtu faults: the MTU of the router's port to the node, and whether the router's frag-needed gets out. */
  mtu?: number;
  icmp?: boolean;
}

/** The MTU the lab's links have without faults. */
export const LAB_MTU = 1500;
/** Smallest MTU an mtu fault may set (IPv4's minimum datagram every host must take, RFC 791). */
export const MIN_FAULT_MTU = 576;

export class FaultError extends UserError {
  readonly code = 'EFAULT' as const;
  constructor(message: string) {
    super(message, EXIT.usage);
    this.name = 'FaultError';
  }
}

export const FAULT_GRAMMAR = `A fault is ACTION:CHECK@WHERE
  ACTION  drop | reject
  CHECK   ${checkList(' | ')} | all
  WHERE   NODE:in          the node's own INPUT chain (probes arriving)
          NODE:out         the node's own OUTPUT chain (probes it sends)
          NODE:return      the node's OUTPUT chain for the replies it sends (TCP checks only)
          path:NODE>NODE   the router's FORWARD chain, that direction only
An MTU fault is mtu:BYTES@NODE[:icmp]
  the router's link to NODE gets MTU BYTES (${MIN_FAULT_MTU}..${LAB_MTU - 1}); its ICMP fragmentation-needed
  is dropped (a black hole) unless :icmp is given (then the sender is told)
Examples:
  drop:ipip@node2:in
  reject:typha@node1:in
  drop:vxlan@path:node1>node3
  drop:bgp@node2:out
  reject:bgp@path:node2>node1
  drop:bgp@node3:return
  mtu:1400@node2
  mtu:1400@node2:icmp`;

const NODE_RE = /^[A-Za-z0-9._-]{1,63}$/;

function bad(spec: string, what: string): FaultError {
  return new FaultError(`bad fault '${spec}': ${what}\n${FAULT_GRAMMAR}`);
}

/** Parse one `ACTION:CHECK@WHERE` spec. */
export function parseFault(input: string): Fault {
  const spec = input.trim();
  if (/^mtu:/i.test(spec)) return parseMtuFault(spec);
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

/** `mtu:BYTES@NODE` or `mtu:BYTES@NODE:icmp`. */
function parseMtuFault(spec: string): Fault {
  const m = /^mtu:(\d{1,5})@([^@:]+)(?::([^@:]*))?$/i.exec(spec);
  if (!m) throw bad(spec, 'an mtu fault is mtu:BYTES@NODE or mtu:BYTES@NODE:icmp');
  const mtu = Number(m[1]);
  const node = m[2]!;
  const flag = m[3]?.toLowerCase();
  if (mtu < MIN_FAULT_MTU || mtu >= LAB_MTU) throw bad(spec, `MTU ${mtu} is outside ${MIN_FAULT_MTU}..${LAB_MTU - 1} (the lab's links are ${LAB_MTU})`);
  if (!NODE_RE.test(node)) throw bad(spec, `'${node}' is not a node name`);
  if (flag !== undefined && flag !== 'icmp') throw bad(spec, `unknown flag '${flag}'; the only one is :icmp (the router's fragmentation-needed gets out)`);
  return { action: 'mtu', check: 'mtu', where: { kind: 'link', node }, spec, mtu, icmp: flag === 'icmp' };
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
  if (fault.action === 'mtu') return mtuRules(fault, ctx, fault.mtu ?? LAB_MTU, '-A');
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
  if (fault.action === 'mtu') return mtuRules(fault, ctx, LAB_MTU, '-D');
  return faultRules(fault, ctx).map(({ ns, argv }) => ({ ns, argv: argv.map((a, i) => (i === 1 && a === '-A' ? '-D' : a)) }));
}

/** The router's port MTU, and (without :icmp) an OUTPUT rule dropping the router's own frag-needed. */
function mtuRules(fault: Fault, ctx: FaultContext, mtu: number, op: '-A' | '-D'): FaultRule[] {
  const w = fault.where;
  if (w.kind !== 'link') throw new FaultError(`fault '${fault.spec}' is not a link fault`);
  const node = labNode(fault, ctx, w.node);
  const rules: FaultRule[] = [{ ns: ctx.router, argv: ['ip', 'link', 'set', 'dev', node.routerIf, 'mtu', String(mtu)] }];
  if (!fault.icmp) {
    rules.push({
      ns: ctx.router,
      argv: ['iptables', op, 'OUTPUT', '-p', 'icmp', '--icmp-type', 'fragmentation-needed', '-m', 'comment', '--comment', faultComment(fault), '-j', 'DROP'],
    });
  }
  return rules;
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
  cause: null | Extract<Cause, 'egress-blocked' | 'path-blocked' | 'ingress-blocked' | 'rejected' | 'return-blocked' | 'mtu-blackhole' | 'mtu-limited'>;
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
    // A carried check's probes (mtu) travel as their carrier: a rule for the carrier's traffic catches them too.
    const framedAs = f.check !== 'all' && f.check !== flow.check && (CATALOGUE[flow.check].carriedBy?.includes(f.check) ?? false) && CATALOGUE[f.check].transport === flow.transport;
    if (f.check !== 'all' && f.check !== flow.check && !framedAs) continue;
    const w = f.where;
    // Linux's REJECT answers IP-in-IP too: it verifies a checksum over the payload first
    // (nf_reject_verify_csum), and the prober makes its IP-in-IP payload checksum-neutral (packets/ipip.ts).
    const rejects = f.action === 'reject';
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
      case 'link':
        // Towards the node the router refuses large packets (telling the sender unless its ICMP is
        // dropped); from the node, the router's port discards oversize frames on receive: silent.
        // Last in rank: a firewall that stops the small probes too is what the tool reports.
        if (w.node === flow.to) consider(4, f.icmp ? 'mtu-limited' : 'mtu-blackhole');
        else if (w.node === flow.from) consider(4, 'mtu-blackhole');
        break;
    }
  }
  const found = best as { cause: NonNullable<ExpectedOutcome['cause']> } | null;
  return found ? { verdict: 'fail', cause: found.cause } : { verdict: 'pass', cause: null };
}
