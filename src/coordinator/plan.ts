// The check plan: which flows (check, from, to) a mesh or pair run probes, in a deterministic order,
// each with its per-destination index for the witness log. Pure: inventory in, plan out.
import { CATALOGUE, carrierOf, catalogueOrder, DEFAULT_CHECKS, didYouMean } from '../checks/catalogue.js';
import type { CheckId, PlannedFlow, Transport } from '../types.js';
import type { Inventory } from './inventory.js';
import { EXIT, UserError } from '../errors.js';

export interface Plan {
  /** The checks planned, in catalogue order (skipped ones are named in `notes`). */
  checks: CheckId[];
  ports: Record<CheckId, number | null>;
  /** Ordered by check (catalogue order), then from, then to (inventory order; endpoints last). */
  flows: PlannedFlow[];
  notes: string[];
}

export interface PlanOptions {
  /** From `--checks`: overrides the inventory's `checks:`. */
  checks?: CheckId[];
}

export class PlanError extends UserError {
  readonly code = 'EPLAN' as const;
  constructor(message: string) {
    super(message, EXIT.usage);
    this.name = 'PlanError';
  }
}

/** The witness log tells flows to one destination apart by a 16-bit index. */
export const MAX_FLOWS_PER_DESTINATION = 65536;

interface Source {
  name: string;
}
interface Target {
  name: string;
  address: string;
  /** Index into the per-destination counters. */
  slot: number;
  sourceOnly: boolean;
  /** Endpoint's own port, overriding the check's. */
  port: number | null;
}
interface CheckSpan {
  check: CheckId;
  transport: Transport;
  port: number | null;
  targets: Target[];
}
interface Prepared {
  checks: CheckId[];
  ports: Record<CheckId, number | null>;
  notes: string[];
  sources: Source[];
  spans: CheckSpan[];
  slots: number;
}

/** Every flow of a mesh run. */
export function planMesh(inv: Inventory, opts: PlanOptions = {}): Plan {
  return materialise(prepareMesh(inv, opts));
}

/** Only the flows between nodes `a` and `b`, both directions; endpoints are left out. */
export function planPair(inv: Inventory, a: string, b: string, opts: PlanOptions = {}): Plan {
  return materialise(preparePair(inv, a, b, opts));
}

/** How many flows `planMesh` would make, without making them. */
export function countFlows(inv: Inventory, opts: PlanOptions = {}): number {
  const p = prepareMesh(inv, opts);
  let n = 0;
  for (const span of p.spans) n += spanCount(p, span);
  return n;
}

/**
 * The flows of `planMesh`, one at a time, for callers that stream them. Validation (and any
 * PlanError) happens at the call, not at the first `next()`.
 */
export function iterateFlows(inv: Inventory, opts: PlanOptions = {}): IterableIterator<PlannedFlow> {
  return generate(prepareMesh(inv, opts));
}

// ---- preparation ----------------------------------------------------------------------------------

function selectChecks(inv: Inventory, opts: PlanOptions): { checks: CheckId[]; explicit: boolean } {
  const explicit = opts.checks ?? inv.checks;
  if (explicit && explicit.length === 0) throw new PlanError('no checks to run: the check list is empty');
  return { checks: catalogueOrder(explicit ?? DEFAULT_CHECKS), explicit: explicit !== null && explicit !== undefined };
}

function prepareMesh(inv: Inventory, opts: PlanOptions): Prepared {
  const { checks, explicit } = selectChecks(inv, opts);
  const nodeTargets: Target[] = inv.nodes.map((n, i) => ({ name: n.name, address: n.address, slot: i, sourceOnly: false, port: null }));
  const notes: string[] = [];
  const spans: CheckSpan[] = [];
  const planned: CheckId[] = [];
  for (const check of checks) {
    const def = CATALOGUE[check];
    const targets: Target[] =
      def.reach.kind === 'all-pairs' ? [...nodeTargets] : nodeTargets.filter((_, i) => inv.nodes[i]?.roles.includes(roleOf(check)!));
    inv.endpoints.forEach((e, i) => {
      if (e.checks.includes(check)) {
        targets.push({ name: e.name, address: e.address, slot: inv.nodes.length + i, sourceOnly: true, port: e.port });
      }
    });
    if (def.reach.kind === 'to-role' && targets.length === 0) {
      const role = def.reach.role;
      if (explicit) throw new PlanError(noHolderMessage(check, role));
      notes.push(`${check} skipped: no node has role ${role} (add roles: [${role}] to the node(s) running ${def.title} to check it)`);
      continue;
    }
    planned.push(check);
    spans.push({ check, ...shapeOf(inv, check, checks), targets });
  }
  if (inv.nodes.length < 2 && inv.endpoints.length === 0) notes.push('only one node: there is no pair of nodes to probe');
  const p: Prepared = {
    checks: planned,
    ports: { ...inv.ports },
    notes,
    sources: inv.nodes.map((n) => ({ name: n.name })),
    spans,
    slots: inv.nodes.length + inv.endpoints.length,
  };
  checkIdxRange(p);
  return p;
}

function preparePair(inv: Inventory, a: string, b: string, opts: PlanOptions): Prepared {
  const ia = nodeIndex(inv, a);
  const ib = nodeIndex(inv, b);
  if (ia === ib) throw new PlanError(`pair needs two different nodes, got ${a} twice`);
  const { checks, explicit } = selectChecks(inv, opts);
  const [lo, hi] = ia < ib ? [ia, ib] : [ib, ia];
  const pair = [inv.nodes[lo]!, inv.nodes[hi]!];
  const notes: string[] = [];
  const spans: CheckSpan[] = [];
  const planned: CheckId[] = [];
  for (const check of checks) {
    const def = CATALOGUE[check];
    const role = roleOf(check);
    const targets: Target[] = [];
    pair.forEach((n, slot) => {
      if (!role || n.roles.includes(role)) targets.push({ name: n.name, address: n.address, slot, sourceOnly: false, port: null });
    });
    if (role && targets.length === 0) {
      const anywhere = inv.nodes.some((n) => n.roles.includes(role)) || inv.endpoints.some((e) => e.checks.includes(check));
      if (!anywhere && explicit) throw new PlanError(noHolderMessage(check, role));
      notes.push(`${check} skipped: neither ${pair[0]!.name} nor ${pair[1]!.name} has role ${role}`);
      continue;
    }
    planned.push(check);
    spans.push({ check, ...shapeOf(inv, check, checks), targets });
  }
  const p: Prepared = { checks: planned, ports: { ...inv.ports }, notes, sources: pair.map((n) => ({ name: n.name })), spans, slots: 2 };
  checkIdxRange(p);
  return p;
}

function roleOf(check: CheckId) {
  const reach = CATALOGUE[check].reach;
  return reach.kind === 'to-role' ? reach.role : null;
}

function noHolderMessage(check: CheckId, role: string): string {
  return (
    `check ${check} needs a node with role ${role}; none has it — add roles: [${role}] to the node(s) ` +
    `running ${CATALOGUE[check].title}, or drop ${check} from --checks`
  );
}

/** Transport and port of a check's probes; mtu probes take the framing of the first enabled encapsulation. */
function shapeOf(inv: Inventory, check: CheckId, checks: readonly CheckId[]): { transport: Transport; port: number | null } {
  // A carried check (catalogue carriedBy: the mtu check) travels as the first carrier the plan enables.
  const carrier = carrierOf(check, checks);
  return { transport: CATALOGUE[carrier].transport, port: portOf(inv, carrier) };
}

function portOf(inv: Inventory, check: CheckId): number | null {
  const port = inv.ports[check];
  const portless = CATALOGUE[check].defaultPort === null;
  if (!portless && (port === null || port === undefined)) {
    throw new PlanError(`check ${check} has no port: set ports: { ${check}: N } in the inventory`);
  }
  return portless ? null : port ?? null;
}

function nodeIndex(inv: Inventory, name: string): number {
  const i = inv.nodes.findIndex((n) => n.name === name);
  if (i >= 0) return i;
  const names = inv.nodes.map((n) => n.name);
  const guess = didYouMean(name, names);
  const known = names.length > 20 ? `${names.slice(0, 20).join(', ')}, … (${names.length} in all)` : names.join(', ');
  const isEndpoint = inv.endpoints.some((e) => e.name === name);
  throw new PlanError(
    `unknown node '${name}'${guess ? ` (did you mean '${guess}'?)` : ''}` +
      `${isEndpoint ? ` — ${name} is an endpoint, which runs no responder; pair needs two nodes` : ''}; nodes in ${inv.file}: ${known}`,
  );
}

/** Flows of one check: every source to every target but itself. */
function spanCount(p: Prepared, span: CheckSpan): number {
  const sourceNames = new Set(p.sources.map((s) => s.name));
  let n = 0;
  for (const t of span.targets) n += p.sources.length - (sourceNames.has(t.name) ? 1 : 0);
  return n;
}

function checkIdxRange(p: Prepared): void {
  const perSlot = new Array<number>(p.slots).fill(0);
  const names = new Array<string>(p.slots).fill('');
  const sourceNames = new Set(p.sources.map((s) => s.name));
  for (const span of p.spans) {
    for (const t of span.targets) {
      perSlot[t.slot] = (perSlot[t.slot] ?? 0) + p.sources.length - (sourceNames.has(t.name) ? 1 : 0);
      names[t.slot] = t.name;
    }
  }
  perSlot.forEach((n, slot) => {
    if (n > MAX_FLOWS_PER_DESTINATION) {
      throw new PlanError(
        `${names[slot]} would receive ${n} probes, more than the ${MAX_FLOWS_PER_DESTINATION} one session can tell apart; ` +
          'run fewer checks at a time (--checks) or split the inventory',
      );
    }
  });
}

// ---- generation -----------------------------------------------------------------------------------

// One object shape for every node flow (V8 keeps them small); endpoint flows add `sourceOnly`.
function makeFlow(span: CheckSpan, from: string, t: Target, idx: number): PlannedFlow {
  const flow: PlannedFlow = {
    check: span.check,
    transport: span.transport,
    from,
    to: t.name,
    toAddress: t.address,
    port: t.port ?? span.port,
    idx,
  };
  if (t.sourceOnly) flow.sourceOnly = true;
  return flow;
}

function materialise(p: Prepared): Plan {
  // Sized up front: growing a 7-million-element array by push costs several times the work.
  let total = 0;
  for (const span of p.spans) total += spanCount(p, span);
  const flows = new Array<PlannedFlow>(total);
  let k = 0;
  for (const f of generate(p)) flows[k++] = f;
  return { checks: p.checks, ports: p.ports, flows, notes: p.notes };
}

function* generate(p: Prepared): Generator<PlannedFlow, void, undefined> {
  const next = new Array<number>(p.slots).fill(0);
  for (const span of p.spans) {
    for (const s of p.sources) {
      for (const t of span.targets) {
        if (t.name === s.name) continue;
        const idx = next[t.slot]!;
        next[t.slot] = idx + 1;
        yield makeFlow(span, s.name, t, idx);
      }
    }
  }
}
