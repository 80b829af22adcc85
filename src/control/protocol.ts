// The control channel's messages (HTTP + JSON, authenticated both ways per src/control/auth.ts).
// Coordinator -> responder. Validation of incoming bodies lives here so server and tests share it.
import { CATALOGUE, FRAMINGS, isCheckId, transportsOf, type Framing } from '../checks/catalogue.js';
import { FRAMINGS_OF } from '../checks/framing.js';
import { MAX_SIZES_PER_ROUND } from '../checks/mtu-search.js';
import { MAX_TRACE_TTL } from '../checks/mtu-prober.js';
import { checkFromCode } from '../packets/probe.js';
import { type CheckId, type SourceOutcome, type Transport, type WitnessSummary } from '../types.js';
import { EXIT, UserError } from '../errors.js';
import type { DestKernelFacts } from '../kernel/facts.js';

export const API = '/v1';
export const DEFAULT_CONTROL_PORT = 5478;
/** A request body larger than this is refused (413) before it is read further. */
export const MAX_BODY_BYTES = 8 << 20;
/**
 * Body caps per route, checked against the declared length before a byte is read (and only once the headers
 * authenticated). A session open carries at most 65,536 inbound flows (~1 MiB) and its peers; an explain arm at
 * most 4096 trace specs (~400 KiB).
 */
export const BODY_LIMITS = { openSession: 4 << 20, probe: MAX_BODY_BYTES, explain: 1 << 20, other: 0 } as const;

export interface InfoResponse {
  tool: 'calico-nettest';
  version: string;
  address: string;
  /** This run of the responder (random at start): requests name it, so a restart refuses older ones. */
  instance: string;
  capture: boolean;
  captureError: string | null;
  ports: Array<{ proto: 'tcp' | 'udp'; port: number; holder: string; ours: boolean }>;
  sessions: number;
  timeMs: number;
}

export interface OpenSessionRequest {
  id: string; // 16 hex chars
  peers: string[];
  ports: Partial<Record<CheckId, number>>;
  /** The lease: the session ends this long after the coordinator's last word (it renews every third). */
  ttlMs: number;
  /**
   * The flows this node may witness: `from` lists their source addresses, `flows` is flat, four numbers a
   * flow: [idx, index into from, check code (the catalogue's), port (0: none)].
   */
  inbound: { from: string[]; flows: number[] };
}

/** One inbound flow as the session table holds it. */
export interface InboundFlow {
  idx: number;
  src: string;
  check: CheckId;
  transport: Transport;
  port: number | null;
}

/** Pack inbound flows for a session open (the coordinator side). */
export function packInbound(flows: Iterable<InboundFlow>): OpenSessionRequest['inbound'] {
  const from: string[] = [];
  const at = new Map<string, number>();
  const flat: number[] = [];
  for (const f of flows) {
    let i = at.get(f.src);
    if (i === undefined) at.set(f.src, (i = from.push(f.src) - 1));
    flat.push(f.idx, i, CATALOGUE[f.check].code, f.port ?? 0);
  }
  return { from, flows: flat };
}

export interface ProbeRequestBody {
  /** `sizes` (a sized check, catalogue `sizing`: the mtu check): one search round's outer sizes, bytes; absent: the host MTU.
   *  `patient`: keep listening for a late answer (a router's ICMP host unreachable comes when ARP gives up, ~3 s).
   *  `afterClear`: an IP-in-IP probe that waits until every node's first-direction probes were sent and their
   *  conntrack entries cleared (POST …/release), so it cannot enter a stateful firewall as a "reply". */
  probes: Array<{ idx: number; check: CheckId; transport: Transport; to: string; port: number | null; framing?: Framing; size?: number; df?: boolean; sizes?: number[]; trace?: { size: number; small: number; maxTtl: number }; patient?: boolean; afterClear?: boolean }>;
  /** Send all `tries` at once (TCP: that many SYNs, spaced) and wait one timeout: the adaptive retry round for loss. */
  burst?: boolean;
  tries: number;
  timeouts: { initialMs: number; minMs: number; maxMs: number };
  concurrency: number;
  spacingMs: number;
}

/** One line of a stream (probe, hold): an outcome, a heartbeat, or the closing line. */
export type ProbeStreamLine = { outcome: SourceOutcome } | { alive: number } | { done: true; capture: boolean } | { error: string } | { cleared: number };

/** How often a streaming responder proves it is alive; the coordinator gives up on a silent one after HEARTBEAT_DEADLINE_MS. */
export const HEARTBEAT_MS = 1000;
export const HEARTBEAT_DEADLINE_MS = 5000;

/** A witness row: [idx, iface 0|1, ifname, socket 0|1, observedSource, count, flow source, check, port (null: none)]. */
/** …then, for a sized check (mtu) only, the largest IPv4 total length seen on an interface and at the socket layer (0: none). */
export type WitnessRow = [number, 0 | 1, string | null, 0 | 1, string | null, number, string, CheckId, number | null, number?, number?];

export interface WitnessResponse {
  capture: boolean;
  dropped: number;
  /** Probe-shaped packets whose proof was wrong for the flow they could be (forged, re-sent elsewhere, re-wrapped). */
  forged: number;
  /** Probe-shaped packets shed unchecked (the session's budget was spent: a flood), plus kernel drops on the witness sockets since the session opened; at least 1 when the witness could not drain its receive queues before answering. */
  lost: number;
  rows: WitnessRow[];
  /** Added: what the node's kernel says about the probes that did not reach a socket (src/kernel/facts.ts). */
  kernel?: DestKernelFacts;
}

export function rowToSummary(r: WitnessRow): WitnessSummary {
  return { idx: r[0], interfaceSeen: r[1] === 1, interfaceName: r[2], socketSeen: r[3] === 1, observedSource: r[4], count: r[5], ifaceSize: r[9] ?? 0, socketSize: r[10] ?? 0 };
}

/** A control request the responder refuses as malformed (HTTP 400). */
export class BadRequest extends UserError {
  constructor(message: string) {
    super(message, EXIT.usage);
    this.name = 'BadRequest';
  }
}

/** Sizes one mtu probe request may ask for (a search round). */
export const MAX_PROBE_SIZES = MAX_SIZES_PER_ROUND;

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
export const isIPv4 = (s: unknown): s is string => typeof s === 'string' && IPV4.test(s);
const isInt = (v: unknown, lo: number, hi: number): v is number => Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const TRANSPORTS = new Set(['tcp', 'udp', 'ipip']);


export function parseOpenSession(v: unknown): OpenSessionRequest {
  if (!isObject(v)) throw new BadRequest('body must be a JSON object');
  if (typeof v.id !== 'string' || !/^[0-9a-f]{16}$/.test(v.id)) throw new BadRequest('id must be 16 hex characters');
  if (!Array.isArray(v.peers) || v.peers.length > 100_000 || !v.peers.every(isIPv4)) throw new BadRequest('peers must be a list of IPv4 addresses');
  if (!isObject(v.ports)) throw new BadRequest('ports must be an object');
  const ports: Partial<Record<CheckId, number>> = {};
  for (const [k, p] of Object.entries(v.ports)) {
    if (!isCheckId(k) || !isInt(p, 1, 65535)) throw new BadRequest(`ports.${k} is not a check with a port 1..65535`);
    ports[k as CheckId] = p;
  }
  if (!isInt(v.ttlMs, 1000, 5 * 60_000)) throw new BadRequest('ttlMs must be 1000..300000');
  return { id: v.id, peers: v.peers as string[], ports, ttlMs: v.ttlMs, inbound: parseInbound(v.inbound) };
}

/** The inbound table of a session open, validated: every idx once, sources IPv4, checks known, ports right for them. */
export function parseInbound(v: unknown): OpenSessionRequest['inbound'] {
  if (!isObject(v)) throw new BadRequest('inbound must be { from, flows }');
  const { from, flows } = v;
  if (!Array.isArray(from) || from.length > 65_536 || !from.every(isIPv4)) throw new BadRequest('inbound.from must be a list of at most 65536 IPv4 addresses');
  if (!Array.isArray(flows) || flows.length % 4 !== 0 || flows.length > 4 * 65_536) throw new BadRequest('inbound.flows must be flat quadruples [idx, from, check, port], at most 65536 of them');
  const seen = new Uint8Array(65_536);
  for (let i = 0; i < flows.length; i += 4) {
    const [idx, src, code, port] = [flows[i], flows[i + 1], flows[i + 2], flows[i + 3]];
    const at = `inbound.flows[${i / 4}]`;
    if (!isInt(idx, 0, 65_535)) throw new BadRequest(`${at}: idx must be 0..65535`);
    if (seen[idx]) throw new BadRequest(`${at}: idx ${idx} appears twice`);
    seen[idx] = 1;
    if (!isInt(src, 0, from.length - 1)) throw new BadRequest(`${at}: source must index inbound.from`);
    const check = isInt(code, 0, 255) ? checkFromCode(code) : null;
    if (check === null) throw new BadRequest(`${at}: unknown check code`);
    if (inboundTransport(check, port) === null) throw new BadRequest(`${at}: port is wrong for ${check}`);
  }
  return { from: from as string[], flows: flows as number[] };
}

/**
 * How an inbound flow of `check` to `port` travels (0: no port, IP-in-IP), or null when the check cannot
 * travel so. A carried check (mtu) travels as its carrier: IP-in-IP, or UDP to VXLAN's / WireGuard's port.
 */
function inboundTransport(check: CheckId, port: unknown): Transport | null {
  const ways = transportsOf(check);
  const t: Transport | null = port === 0 ? 'ipip' : isInt(port, 1, 65_535) ? (ways.has('tcp') ? 'tcp' : 'udp') : null;
  return t !== null && ways.has(t) ? t : null;
}

/** The inbound table as flows by idx (input already validated by parseInbound). */
export function unpackInbound(t: OpenSessionRequest['inbound']): Map<number, InboundFlow> {
  const out = new Map<number, InboundFlow>();
  for (let i = 0; i + 3 < t.flows.length; i += 4) {
    const idx = t.flows[i]!;
    const check = checkFromCode(t.flows[i + 2]!)!;
    const port = t.flows[i + 3]!;
    out.set(idx, { idx, src: t.from[t.flows[i + 1]!]!, check, transport: inboundTransport(check, port)!, port: port === 0 ? null : port });
  }
  return out;
}

export function parseProbeRequest(v: unknown): ProbeRequestBody {
  if (!isObject(v)) throw new BadRequest('body must be a JSON object');
  if (!Array.isArray(v.probes) || v.probes.length > 200_000) throw new BadRequest('probes must be a list (at most 200000)');
  const probes: ProbeRequestBody['probes'] = [];
  const flows = new Set<string>();
  for (const [i, p] of v.probes.entries()) {
    if (!isObject(p)) throw new BadRequest(`probes[${i}] must be an object`);
    if (!isInt(p.idx, 0, 65535)) throw new BadRequest(`probes[${i}].idx must be 0..65535`);
    if (typeof p.check !== 'string' || !isCheckId(p.check)) throw new BadRequest(`probes[${i}].check is not a check id`);
    if (typeof p.transport !== 'string' || !TRANSPORTS.has(p.transport)) throw new BadRequest(`probes[${i}].transport must be tcp, udp or ipip`);
    if (!isIPv4(p.to)) throw new BadRequest(`probes[${i}].to must be an IPv4 address`);
    if (p.transport === 'ipip' ? p.port !== null : !isInt(p.port, 1, 65535)) throw new BadRequest(`probes[${i}].port is wrong for ${String(p.transport)}`);
    // A carried check (mtu) travels as any of its carriers: IP-in-IP, or UDP (VXLAN, WireGuard).
    if (!transportsOf(p.check as CheckId).has(p.transport as Transport)) throw new BadRequest(`probes[${i}]: ${p.check} does not travel over ${p.transport}`);
    const flow = `${p.to}/${p.idx}`;
    if (flows.has(flow)) throw new BadRequest(`probes[${i}]: ${p.to} probe #${p.idx} appears twice`);
    flows.add(flow);
    const probe: ProbeRequestBody['probes'][number] = { idx: p.idx, check: p.check as CheckId, transport: p.transport as Transport, to: p.to, port: p.port as number | null };
    // Optional per-probe shape (the mtu check: DF probes of the host MTU in an encapsulation's framing).
    if (p.framing !== undefined) {
      if (typeof p.framing !== 'string' || !(FRAMINGS as readonly string[]).includes(p.framing)) throw new BadRequest(`probes[${i}].framing must be one of ${FRAMINGS.join(', ')}`);
      if (!FRAMINGS_OF[p.transport as Transport].includes(p.framing as Framing)) throw new BadRequest(`probes[${i}].framing ${p.framing} cannot carry a ${String(p.transport)} probe (${FRAMINGS_OF[p.transport as Transport].join(' or ')})`);
      probe.framing = p.framing as Framing;
    }
    if (p.size !== undefined) {
      if (!isInt(p.size, 0, 65535)) throw new BadRequest(`probes[${i}].size must be 0..65535`);
      probe.size = p.size;
    }
    if (p.df !== undefined) {
      if (typeof p.df !== 'boolean') throw new BadRequest(`probes[${i}].df must be true or false`);
      probe.df = p.df;
    }
    if (p.sizes !== undefined) {
      const sized = isCheckId(p.check as string) && CATALOGUE[p.check as CheckId].sizing !== undefined;
      if (!sized || !Array.isArray(p.sizes) || p.sizes.length < 1 || p.sizes.length > MAX_PROBE_SIZES || !p.sizes.every((x) => isInt(x, 68, 65535)))
        throw new BadRequest(`probes[${i}].sizes must be 1..${MAX_PROBE_SIZES} sizes of 68..65535 bytes, for a sized check (mtu) only`);
      probe.sizes = [...(p.sizes as number[])];
    }
    if (p.trace !== undefined) {
      const tr = p.trace;
      const sized = isCheckId(p.check as string) && CATALOGUE[p.check as CheckId].sizing !== undefined;
      if (!sized || !isObject(tr) || !isInt(tr.size, 68, 65535) || !isInt(tr.small, 68, 65535) || !isInt(tr.maxTtl, 1, MAX_TRACE_TTL))
        throw new BadRequest(`probes[${i}].trace must be { size, small: 68..65535, maxTtl: 1..${MAX_TRACE_TTL} }, for a sized check (mtu) only`);
      probe.trace = { size: tr.size, small: tr.small, maxTtl: tr.maxTtl };
    }
    for (const flag of ['patient', 'afterClear'] as const) {
      if (p[flag] === undefined) continue;
      if (typeof p[flag] !== 'boolean') throw new BadRequest(`probes[${i}].${flag} must be true or false`);
      if (p[flag]) probe[flag] = true;
    }
    probes.push(probe);
  }
  if (!isInt(v.tries, 1, 10)) throw new BadRequest('tries must be 1..10');
  const t = v.timeouts;
  if (!isObject(t) || !isInt(t.initialMs, 10, 60_000) || !isInt(t.minMs, 1, 60_000) || !isInt(t.maxMs, 10, 60_000) || t.minMs > t.maxMs)
    throw new BadRequest('timeouts must be { initialMs, minMs, maxMs } in ms, min <= max');
  if (!isInt(v.concurrency, 1, 4096)) throw new BadRequest('concurrency must be 1..4096');
  if (!isInt(v.spacingMs, 0, 5000)) throw new BadRequest('spacingMs must be 0..5000');
  if (v.burst !== undefined && typeof v.burst !== 'boolean') throw new BadRequest('burst must be true or false');
  return { ...(v.burst ? { burst: true } : {}), probes, tries: v.tries, timeouts: { initialMs: t.initialMs, minMs: t.minMs, maxMs: t.maxMs }, concurrency: v.concurrency, spacingMs: v.spacingMs };
}
