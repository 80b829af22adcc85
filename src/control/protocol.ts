// The control channel's messages (HTTP + JSON, authenticated per src/control/auth.ts).
// Coordinator -> responder. Validation of incoming bodies lives here so server and tests share it.
import { CATALOGUE, FRAMINGS, isCheckId, type Framing } from '../checks/catalogue.js';
import { FRAMINGS_OF } from '../checks/framing.js';
import { MAX_SIZES_PER_ROUND } from '../checks/mtu-search.js';
import { MAX_TRACE_TTL } from '../checks/mtu-prober.js';
import { type CheckId, type SourceOutcome, type Transport, type WitnessSummary } from '../types.js';
import { EXIT, UserError } from '../errors.js';

export const API = '/v1';
export const DEFAULT_CONTROL_PORT = 5478;
/** A request body larger than this is refused (413) before it is read further. */
export const MAX_BODY_BYTES = 8 << 20;

export interface InfoResponse {
  tool: 'calico-nettest';
  version: string;
  address: string;
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
  ttlMs: number;
  /** How many flows target this node (probe idx < expect): a forged TCP tag must also hit this range. */
  expect?: number;
}

export interface ProbeRequestBody {
  /** `sizes` (a sized check, catalogue `sizing`: the mtu check): one search round's outer sizes, bytes; absent: the host MTU. */
  probes: Array<{ idx: number; check: CheckId; transport: Transport; to: string; port: number | null; framing?: Framing; size?: number; df?: boolean; sizes?: number[]; trace?: { size: number; small: number; maxTtl: number } }>;
  tries: number;
  timeouts: { initialMs: number; minMs: number; maxMs: number };
  concurrency: number;
  spacingMs: number;
}

/** One line of the probe stream: an outcome, or the closing line. */
export type ProbeStreamLine = { outcome: SourceOutcome } | { done: true; capture: boolean } | { error: string };

export interface WitnessResponse {
  capture: boolean;
  dropped: number;
  /** Compact rows: [idx, iface 0|1, ifname, socket 0|1, observedSource, count, ifaceSize?, socketSize?]
   *  (sizes: the largest IPv4 total length seen at each layer, 0 none; older responders omit them). */
  rows: Array<[number, 0 | 1, string | null, 0 | 1, string | null, number, number?, number?]>;
}

export function rowToSummary(r: WitnessResponse['rows'][number]): WitnessSummary {
  return { idx: r[0], interfaceSeen: r[1] === 1, interfaceName: r[2], socketSeen: r[3] === 1, observedSource: r[4], count: r[5], ifaceSize: r[6] ?? 0, socketSize: r[7] ?? 0 };
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
  if (!isInt(v.ttlMs, 1000, 30 * 60_000)) throw new BadRequest('ttlMs must be 1000..1800000');
  if (v.expect !== undefined && !isInt(v.expect, 0, 65536)) throw new BadRequest('expect must be 0..65536');
  return { id: v.id, peers: v.peers as string[], ports, ttlMs: v.ttlMs, expect: (v.expect as number | undefined) ?? 65536 };
}

export function parseProbeRequest(v: unknown): ProbeRequestBody {
  if (!isObject(v)) throw new BadRequest('body must be a JSON object');
  if (!Array.isArray(v.probes) || v.probes.length > 200_000) throw new BadRequest('probes must be a list (at most 200000)');
  const probes: ProbeRequestBody['probes'] = [];
  for (const [i, p] of v.probes.entries()) {
    if (!isObject(p)) throw new BadRequest(`probes[${i}] must be an object`);
    if (!isInt(p.idx, 0, 65535)) throw new BadRequest(`probes[${i}].idx must be 0..65535`);
    if (typeof p.check !== 'string' || !isCheckId(p.check)) throw new BadRequest(`probes[${i}].check is not a check id`);
    if (typeof p.transport !== 'string' || !TRANSPORTS.has(p.transport)) throw new BadRequest(`probes[${i}].transport must be tcp, udp or ipip`);
    if (!isIPv4(p.to)) throw new BadRequest(`probes[${i}].to must be an IPv4 address`);
    if (p.transport === 'ipip' ? p.port !== null : !isInt(p.port, 1, 65535)) throw new BadRequest(`probes[${i}].port is wrong for ${String(p.transport)}`);
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
    probes.push(probe);
  }
  if (!isInt(v.tries, 1, 10)) throw new BadRequest('tries must be 1..10');
  const t = v.timeouts;
  if (!isObject(t) || !isInt(t.initialMs, 10, 60_000) || !isInt(t.minMs, 1, 60_000) || !isInt(t.maxMs, 10, 60_000) || t.minMs > t.maxMs)
    throw new BadRequest('timeouts must be { initialMs, minMs, maxMs } in ms, min <= max');
  if (!isInt(v.concurrency, 1, 4096)) throw new BadRequest('concurrency must be 1..4096');
  if (!isInt(v.spacingMs, 0, 5000)) throw new BadRequest('spacingMs must be 0..5000');
  return { probes, tries: v.tries, timeouts: { initialMs: t.initialMs, minMs: t.minMs, maxMs: t.maxMs }, concurrency: v.concurrency, spacingMs: v.spacingMs };
}
