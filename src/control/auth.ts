// Control-channel authentication, both ways, keyed with the shared secret (HMAC-SHA256).
// Requests: the signature covers method, path, timestamp, nonce, the responder they are for (its address),
// that responder's instance (a restarted responder refuses requests made for the one before), the declared
// length and the body's digest — all in headers, so the responder authenticates before it reads a byte of
// body. Replays are refused by a time window plus a bounded nonce cache. Responses: the responder signs
// status and body (or each line of a stream) bound to the request's nonce, so a process on the control port
// without the secret cannot answer for it. Used by the responder (verify, sign) and the coordinator.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const HEADER_TIME = 'x-cnt-time';
export const HEADER_NONCE = 'x-cnt-nonce';
export const HEADER_SIGNATURE = 'x-cnt-signature';
/** The responder a request is for: its node address. */
export const HEADER_FOR = 'x-cnt-for';
/** The responder instance a request is for (from its /v1/info); also on every signed response. */
export const HEADER_INSTANCE = 'x-cnt-instance';
export const HEADER_BODY_DIGEST = 'x-cnt-body-sha256';

/** How far a request's timestamp may be from the responder's clock. */
export const REPLAY_WINDOW_MS = 30_000;

const DOMAIN = 'calico-nettest control v2';

export const bodyDigest = (body: Buffer | string): string => createHash('sha256').update(body).digest('hex');

export interface SignedParts {
  method: string;
  path: string;
  timeMs: number;
  nonce: string;
  /** The responder's address. */
  target: string;
  /** The responder's instance id; '' before it is known (only GET /v1/info may go without). */
  instance: string;
  length: number;
  digest: string;
}

export function signature(secret: Buffer, p: SignedParts): string {
  return createHmac('sha256', secret)
    .update(`${DOMAIN}\nrequest\n${p.method.toUpperCase()}\n${p.path}\n${p.timeMs}\n${p.nonce}\n${p.target}\n${p.instance}\n${p.length}\n${p.digest}`)
    .digest('hex');
}

export interface RequestTarget {
  /** The responder's address (what it listens for probes on). */
  address: string;
  /** Its instance id, once known. */
  instance?: string;
}

/** Headers for a request to `target`. */
export function signRequest(secret: Buffer, method: string, path: string, body: Buffer | string, target: RequestTarget, nowMs = Date.now()): Record<string, string> {
  const nonce = randomBytes(16).toString('hex');
  const digest = bodyDigest(body);
  const instance = target.instance ?? '';
  const length = Buffer.byteLength(body);
  const headers: Record<string, string> = {
    [HEADER_TIME]: String(nowMs),
    [HEADER_NONCE]: nonce,
    [HEADER_FOR]: target.address,
    [HEADER_BODY_DIGEST]: digest,
    [HEADER_SIGNATURE]: signature(secret, { method, path, timeMs: nowMs, nonce, target: target.address, instance, length, digest }),
  };
  if (instance) headers[HEADER_INSTANCE] = instance;
  return headers;
}

/** Remembers nonces seen inside the replay window; bounded so a flood cannot grow it without limit. */
export class NonceCache {
  private readonly seen = new Map<string, number>();
  constructor(
    private readonly windowMs = REPLAY_WINDOW_MS,
    private readonly max = 100_000,
  ) {}

  /** true if the nonce is new (and records it); false if it was seen inside the window. */
  remember(nonce: string, nowMs: number): boolean {
    this.expire(nowMs);
    if (this.seen.has(nonce)) return false;
    if (this.seen.size >= this.max) {
      // Full of fresh nonces: refuse rather than forget one that could then be replayed.
      return false;
    }
    this.seen.set(nonce, nowMs + 2 * this.windowMs);
    return true;
  }

  private expire(nowMs: number): void {
    for (const [n, until] of this.seen) {
      if (until > nowMs) break; // insertion order = expiry order
      this.seen.delete(n);
    }
  }

  get size(): number {
    return this.seen.size;
  }
}

export type VerifyResult = { ok: true; nonce: string; length: number; digest: string } | { ok: false; reason: string };

export interface ResponderIdentity {
  /** This responder's address: requests must name it. */
  address: string;
  /** This run of the responder: requests (but the first GET /v1/info) must name it. */
  instance: string;
}

type Headers = Record<string, string | string[] | undefined>;

/**
 * Verify a request from its headers alone (before any body is read). On success the caller reads exactly
 * `length` bytes and checks them with bodyMatches(); the nonce is already spent.
 */
export function verifyRequestHeaders(
  secret: Buffer,
  headers: Headers,
  method: string,
  path: string,
  self: ResponderIdentity,
  nonces: NonceCache,
  opts: { instanceOptional: boolean },
  nowMs = Date.now(),
): VerifyResult {
  const time = headers[HEADER_TIME];
  const nonce = headers[HEADER_NONCE];
  const sig = headers[HEADER_SIGNATURE];
  const target = headers[HEADER_FOR];
  const digest = headers[HEADER_BODY_DIGEST];
  const instance = headers[HEADER_INSTANCE] ?? '';
  const lengthText = headers['content-length'] ?? '0';
  if (typeof time !== 'string' || typeof nonce !== 'string' || typeof sig !== 'string' || typeof target !== 'string' || typeof digest !== 'string')
    return { ok: false, reason: 'missing authentication headers' };
  if (typeof instance !== 'string' || typeof lengthText !== 'string') return { ok: false, reason: 'malformed authentication headers' };
  if (
    !/^\d{1,16}$/.test(time) ||
    !/^[0-9a-f]{16,64}$/.test(nonce) ||
    !/^[0-9a-f]{64}$/.test(sig) ||
    !/^[0-9a-f]{64}$/.test(digest) ||
    !/^[0-9a-f]{0,64}$/.test(instance) ||
    !/^\d{1,10}$/.test(lengthText) ||
    target.length > 64
  )
    return { ok: false, reason: 'malformed authentication headers' };
  if (headers['transfer-encoding'] !== undefined) return { ok: false, reason: 'a chunked body cannot be authenticated before it is read: send content-length' };
  const timeMs = Number(time);
  const length = Number(lengthText);
  if (Math.abs(nowMs - timeMs) > REPLAY_WINDOW_MS) return { ok: false, reason: 'timestamp outside the replay window (clocks more than 30 s apart?)' };
  const expected = Buffer.from(signature(secret, { method, path, timeMs, nonce, target, instance, length, digest }), 'hex');
  const given = Buffer.from(sig, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad signature (wrong secret?)' };
  if (target !== self.address) return { ok: false, reason: `request is for the responder at ${target}, not this one (${self.address}): refused (replayed to another node?)` };
  if (instance ? instance !== self.instance : !opts.instanceOptional)
    return { ok: false, reason: instance ? 'request is for an earlier run of this responder (it restarted): refused' : 'request names no responder instance' };
  if (!nonces.remember(nonce, nowMs)) return { ok: false, reason: 'replayed request' };
  return { ok: true, nonce, length, digest };
}

/** The body read after verifyRequestHeaders is the one the signature covers. */
export function bodyMatches(body: Buffer, length: number, digest: string): boolean {
  if (body.length !== length) return false;
  return timingSafeEqual(Buffer.from(bodyDigest(body), 'hex'), Buffer.from(digest, 'hex'));
}

// ---- responses ---------------------------------------------------------------------------------------

export interface ResponseParts {
  /** The responder's address and instance. */
  address: string;
  instance: string;
  /** The nonce of the request this answers. */
  nonce: string;
  status: number;
  body: Buffer | string;
}

/** Signature of a whole response. */
export function responseSignature(secret: Buffer, p: ResponseParts): string {
  return createHmac('sha256', secret)
    .update(`${DOMAIN}\nresponse\n${p.address}\n${p.instance}\n${p.nonce}\n${p.status}\n${bodyDigest(p.body)}`)
    .digest('hex');
}

/** Signature of line `n` (from 0) of a streamed response: lines cannot be forged, dropped or reordered unseen. */
export function lineSignature(secret: Buffer, p: { address: string; instance: string; nonce: string; n: number; line: string }): string {
  return createHmac('sha256', secret).update(`${DOMAIN}\nline\n${p.address}\n${p.instance}\n${p.nonce}\n${p.n}\n${p.line}`).digest('hex');
}

/** A signed stream line: `<signature> <json>`. */
export function signLine(secret: Buffer, p: { address: string; instance: string; nonce: string; n: number; line: string }): string {
  return `${lineSignature(secret, p)} ${p.line}`;
}

/** The JSON text of a signed stream line, or null when its signature is wrong. */
export function openLine(secret: Buffer, p: { address: string; instance: string; nonce: string; n: number }, signed: string): string | null {
  if (signed.length < 66 || signed[64] !== ' ') return null;
  const sig = signed.slice(0, 64);
  if (!/^[0-9a-f]{64}$/.test(sig)) return null;
  const line = signed.slice(65);
  const expected = Buffer.from(lineSignature(secret, { ...p, line }), 'hex');
  return timingSafeEqual(expected, Buffer.from(sig, 'hex')) ? line : null;
}

export function sameSignature(a: string | undefined, b: string): boolean {
  if (typeof a !== 'string' || !/^[0-9a-f]{64}$/.test(a)) return false;
  return timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
}
