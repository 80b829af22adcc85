// The responder's explain call (POST /v1/sessions/ID/explain, authenticated like every call): `arm`
// traces a session's blamed flows on this host, `collect` says which rule took each one's verdict and
// removes what arm added. Validation of the bodies lives here so the server and the tests share it.
import { CATALOGUE, isCheckId } from '../checks/catalogue.js';
import { BadRequest, isIPv4 } from '../control/protocol.js';
import { SessionError, type Session } from '../responder/sessions.js';
import type { CheckId, Transport } from '../types.js';
import type { Explainer } from './host.js';
import type { ExplainArmRequest, ExplainCollectRequest, TraceSpec } from './types.js';

export const EXPLAIN_PATH = /^\/v1\/sessions\/([0-9a-f]{16})\/explain$/;
/** Specs a single arm may carry: one nft rule each, so the table stays small. */
export const MAX_SPECS = 4096;
export const MAX_TTL_MS = 5 * 60_000;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown, lo: number, hi: number): v is number => Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi;
const TRANSPORTS = new Set(['tcp', 'udp', 'ipip']);
const DIRECTIONS = new Set(['in', 'out', 'return']);

export function parseExplainRequest(v: unknown): ExplainArmRequest | ExplainCollectRequest {
  if (!isObject(v)) throw new BadRequest('body must be a JSON object');
  if (v.op === 'collect') {
    if (!isObject(v.sent)) throw new BadRequest('sent must be an object of spec id -> packets');
    const sent: Record<string, number> = {};
    for (const [k, n] of Object.entries(v.sent)) {
      if (!/^\d{1,5}$/.test(k) || !isInt(n, 0, 1000)) throw new BadRequest(`sent.${k} must be 0..1000 packets`);
      sent[k] = n;
    }
    if (!isInt(v.waitMs, 0, 30_000)) throw new BadRequest('waitMs must be 0..30000');
    return { op: 'collect', sent, waitMs: v.waitMs };
  }
  if (v.op !== 'arm') throw new BadRequest("op must be 'arm' or 'collect'");
  if (!Array.isArray(v.specs) || v.specs.length === 0 || v.specs.length > MAX_SPECS) throw new BadRequest(`specs must be a list of 1..${MAX_SPECS} flows`);
  const specs: TraceSpec[] = [];
  const ids = new Set<number>();
  for (const [i, s] of v.specs.entries()) {
    if (!isObject(s)) throw new BadRequest(`specs[${i}] must be an object`);
    if (!isInt(s.id, 0, 65535) || ids.has(s.id)) throw new BadRequest(`specs[${i}].id must be a distinct 0..65535`);
    if (typeof s.direction !== 'string' || !DIRECTIONS.has(s.direction)) throw new BadRequest(`specs[${i}].direction must be in, out or return`);
    if (typeof s.check !== 'string' || !isCheckId(s.check)) throw new BadRequest(`specs[${i}].check is not a check id`);
    if (typeof s.transport !== 'string' || !TRANSPORTS.has(s.transport)) throw new BadRequest(`specs[${i}].transport must be tcp, udp or ipip`);
    if (!isIPv4(s.peer)) throw new BadRequest(`specs[${i}].peer must be an IPv4 address`);
    if (s.transport === 'ipip' ? s.port !== null : !isInt(s.port, 1, 65535)) throw new BadRequest(`specs[${i}].port is wrong for ${String(s.transport)}`);
    if (CATALOGUE[s.check as CheckId].transport !== s.transport) throw new BadRequest(`specs[${i}]: ${s.check} does not travel over ${s.transport}`);
    if (s.direction === 'return' && s.transport !== 'tcp') throw new BadRequest(`specs[${i}]: only TCP probes draw replies to trace`);
    if (!isInt(s.idx, 0, 65535)) throw new BadRequest(`specs[${i}].idx must be 0..65535`);
    if (s.src !== undefined && (!isIPv4(s.src) || s.direction === 'out')) throw new BadRequest(`specs[${i}].src must be an IPv4 address, and only for 'in' and 'return'`);
    ids.add(s.id);
    const spec: TraceSpec = { id: s.id, direction: s.direction as TraceSpec['direction'], check: s.check as CheckId, transport: s.transport as Transport, peer: s.peer, port: s.port as number | null, idx: s.idx };
    if (s.src !== undefined) spec.src = s.src as string;
    specs.push(spec);
  }
  if (!isInt(v.ttlMs, 1000, MAX_TTL_MS)) throw new BadRequest(`ttlMs must be 1000..${MAX_TTL_MS}`);
  if (v.method !== undefined && v.method !== 'trace' && v.method !== 'counters') throw new BadRequest("method must be 'trace' or 'counters'");
  return { op: 'arm', specs, ttlMs: v.ttlMs, ...(v.method ? { method: v.method as 'trace' | 'counters' } : {}) };
}

/** Handle one explain call; `send` writes the JSON answer. Errors are BadRequest / SessionError (the server maps them). */
export async function handleExplain(explainer: Explainer, session: Session | undefined, method: string, body: unknown, send: (status: number, body: unknown) => void): Promise<void> {
  if (method !== 'POST') throw new SessionError(`${method} not allowed on explain`, 405);
  if (!session) throw new SessionError('no such session (expired?)', 404);
  const req = parseExplainRequest(body);
  if (req.op === 'arm') return send(200, await explainer.arm({ id: session.id, key: session.key }, req));
  const r = await explainer.collect(session.id, req);
  if (!r) throw new SessionError(`nothing armed for session ${session.id} (armed too long ago, or never)`, 409);
  send(200, r);
}
