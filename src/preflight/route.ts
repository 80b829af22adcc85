// The responder's preflight call (POST /v1/preflight, authenticated like every call): this node's findings
// for the coordinator's checks and ranges. Validation of the request and of the answer lives here, so the
// server, the coordinator and the tests share it.
import { BadRequest, isIPv4 } from '../control/protocol.js';
import { SessionError } from '../responder/sessions.js';
import { CHECK_IDS, type CheckId } from '../types.js';
import { parseCidr4, type Finding } from './findings.js';
import { preflightLocal } from './local.js';

export const PREFLIGHT_PATH = '/v1/preflight';
/** A preflight request is a node name, a few check ids, two CIDRs and up to 64 addresses (the per-route body cap). */
export const PREFLIGHT_BODY_LIMIT = 16 << 10;

export interface PreflightRequest {
  /** The node's name in the inventory: every finding is about it. */
  node: string;
  checks: CheckId[];
  podCIDR?: string;
  serviceCIDR?: string;
  /** The node's own addresses (the inventory's) for pod-cidr-overlap. */
  addresses?: string[];
}

export interface PreflightResponse {
  findings: Finding[];
}

/** What the responder does for one call: its own preflight (src/preflight/local.ts). */
export type PreflightRunner = (req: PreflightRequest) => Promise<Finding[]>;

/** The responder's runner: this host, for the coordinator's checks and ranges, the inventory's address as the node's. */
export const localPreflight: PreflightRunner = (req) => preflightLocal({ node: req.node, checks: req.checks, podCIDR: req.podCIDR, serviceCIDR: req.serviceCIDR, addresses: req.addresses ?? [] });

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const CHECKS = new Set<string>(CHECK_IDS);
const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

export function parsePreflightRequest(v: unknown): PreflightRequest {
  if (!isObject(v)) throw new BadRequest('body must be a JSON object');
  if (typeof v.node !== 'string' || !NODE_NAME.test(v.node)) throw new BadRequest('node must be a node name (letters, digits, . _ -)');
  if (!Array.isArray(v.checks) || v.checks.length > CHECK_IDS.length || !v.checks.every((c) => typeof c === 'string' && CHECKS.has(c))) throw new BadRequest(`checks must be a list of check ids (${CHECK_IDS.join(', ')})`);
  const req: PreflightRequest = { node: v.node, checks: [...new Set(v.checks as CheckId[])] };
  for (const k of ['podCIDR', 'serviceCIDR'] as const) {
    if (v[k] === undefined) continue;
    if (typeof v[k] !== 'string' || !parseCidr4(v[k])) throw new BadRequest(`${k} must be an IPv4 CIDR`);
    req[k] = v[k];
  }
  if (v.addresses !== undefined) {
    if (!Array.isArray(v.addresses) || v.addresses.length > 64 || !v.addresses.every(isIPv4)) throw new BadRequest('addresses must be a list of at most 64 IPv4 addresses');
    req.addresses = v.addresses as string[];
  }
  return req;
}

const SEVERITIES = new Set(['error', 'warning', 'info']);
const text = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;

/**
 * A responder's answer, checked before its findings are believed: the shape of every finding, and that each
 * is about the node asked (a responder speaks for its own node only). Returns the problem, or the findings.
 */
export function parsePreflightResponse(v: unknown, node: string): { findings: Finding[] } | { problem: string } {
  if (!isObject(v) || !Array.isArray(v.findings)) return { problem: 'its answer has no findings list' };
  if (v.findings.length > 1000) return { problem: `its answer has ${v.findings.length} findings (at most 1000 expected)` };
  const out: Finding[] = [];
  for (const [i, f] of v.findings.entries()) {
    if (!isObject(f) || !text(f.id, 64) || !/^[a-z0-9]+(-[a-z0-9]+)*$/.test(f.id) || typeof f.severity !== 'string' || !SEVERITIES.has(f.severity) || !text(f.detail, 8192) || !text(f.breaks, 2048) || !text(f.fix, 4096))
      return { problem: `finding ${i} of its answer is malformed` };
    if (f.node !== node) return { problem: `finding ${i} of its answer is about ${JSON.stringify(f.node)}, not ${node}` };
    out.push({ node, id: f.id, severity: f.severity as Finding['severity'], detail: f.detail, breaks: f.breaks, fix: f.fix });
  }
  return { findings: out };
}

/**
 * Handle one preflight call; `send` writes the JSON answer. One at a time per responder: each call forks
 * a few commands and makes a scratch namespace, so a second caller at the same time is told to retry (409).
 */
export function makePreflightHandler(runner: PreflightRunner, log?: (msg: string) => void): (method: string, body: unknown, send: (status: number, body: unknown) => void) => Promise<void> {
  let busy = false;
  return async (method, body, send) => {
    if (method !== 'POST') throw new SessionError(`${method} not allowed on ${PREFLIGHT_PATH}`, 405);
    const req = parsePreflightRequest(body);
    if (busy) throw new SessionError('a preflight is already running on this node; try again in a few seconds', 409);
    busy = true;
    try {
      const findings = await runner(req);
      log?.(`preflight for ${req.node}: ${findings.length} finding${findings.length === 1 ? '' : 's'}`);
      send(200, { findings } satisfies PreflightResponse);
    } finally {
      busy = false;
    }
  };
}
