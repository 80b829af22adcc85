// Control-channel authentication: every request carries an HMAC-SHA256 over method, path, timestamp,
// nonce and the body's digest, keyed with the shared secret. Replays are refused by a time window plus a
// bounded nonce cache. Used by the responder (verify) and the coordinator (sign).
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const HEADER_TIME = 'x-cnt-time';
export const HEADER_NONCE = 'x-cnt-nonce';
export const HEADER_SIGNATURE = 'x-cnt-signature';

/** How far a request's timestamp may be from the responder's clock. */
export const REPLAY_WINDOW_MS = 30_000;

export interface SignedParts {
  method: string;
  path: string;
  timeMs: number;
  nonce: string;
  body: Buffer | string;
}

export function signature(secret: Buffer, p: SignedParts): string {
  const bodyDigest = createHash('sha256').update(p.body).digest('hex');
  return createHmac('sha256', secret)
    .update(`calico-nettest control v1\n${p.method.toUpperCase()}\n${p.path}\n${p.timeMs}\n${p.nonce}\n${bodyDigest}`)
    .digest('hex');
}

/** Headers for a request. */
export function signRequest(secret: Buffer, method: string, path: string, body: Buffer | string, nowMs = Date.now()): Record<string, string> {
  const nonce = randomBytes(16).toString('hex');
  return {
    [HEADER_TIME]: String(nowMs),
    [HEADER_NONCE]: nonce,
    [HEADER_SIGNATURE]: signature(secret, { method, path, timeMs: nowMs, nonce, body }),
  };
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

export type VerifyResult = { ok: true } | { ok: false; reason: string };

/** Verify a request's headers against its method, path and body. */
export function verifyRequest(
  secret: Buffer,
  headers: Record<string, string | string[] | undefined>,
  method: string,
  path: string,
  body: Buffer,
  nonces: NonceCache,
  nowMs = Date.now(),
): VerifyResult {
  const time = headers[HEADER_TIME];
  const nonce = headers[HEADER_NONCE];
  const sig = headers[HEADER_SIGNATURE];
  if (typeof time !== 'string' || typeof nonce !== 'string' || typeof sig !== 'string') return { ok: false, reason: 'missing authentication headers' };
  if (!/^\d{1,16}$/.test(time) || !/^[0-9a-f]{16,64}$/.test(nonce) || !/^[0-9a-f]{64}$/.test(sig)) return { ok: false, reason: 'malformed authentication headers' };
  const timeMs = Number(time);
  if (Math.abs(nowMs - timeMs) > REPLAY_WINDOW_MS) return { ok: false, reason: 'timestamp outside the replay window (clocks more than 30 s apart?)' };
  const expected = Buffer.from(signature(secret, { method, path, timeMs, nonce, body }), 'hex');
  const given = Buffer.from(sig, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad signature (wrong secret?)' };
  if (!nonces.remember(nonce, nowMs)) return { ok: false, reason: 'replayed request' };
  return { ok: true };
}
