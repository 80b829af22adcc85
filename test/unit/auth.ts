// Control-channel authentication: good requests pass from their headers alone; wrong secret, tampering,
// another target, a stale instance, staleness and replays fail; responses and stream lines are signed.
import t from 'tap';
import fc from 'fast-check';
import {
  HEADER_BODY_DIGEST,
  HEADER_FOR,
  HEADER_INSTANCE,
  HEADER_NONCE,
  HEADER_SIGNATURE,
  HEADER_TIME,
  NonceCache,
  bodyMatches,
  openLine,
  responseSignature,
  sameSignature,
  signLine,
  signRequest,
  verifyRequestHeaders,
} from '../../src/control/auth.js';

const secret = Buffer.from('0123456789abcdef0123456789abcdef');
const body = Buffer.from('{"a":1}');
const NODE2 = { address: '198.18.2.2', instance: 'a'.repeat(32) };
const now = 1_700_000_000_000;
/** Headers as the HTTP server gives them: lower-case names, content-length from the body. */
const wire = (h: Record<string, string>, b: Buffer = body) => ({ ...h, 'content-length': String(b.length) });
const verify = (h: Record<string, string | undefined>, o: { method?: string; path?: string; self?: typeof NODE2; at?: number; cache?: NonceCache; instanceOptional?: boolean } = {}) =>
  verifyRequestHeaders(secret, h, o.method ?? 'POST', o.path ?? '/v1/sessions', o.self ?? NODE2, o.cache ?? new NonceCache(), { instanceOptional: o.instanceOptional ?? false }, o.at ?? now + 5);

t.test('a signed request verifies from its headers once; the body is checked against them; its replay is refused', async (t) => {
  const h = wire(signRequest(secret, 'POST', '/v1/sessions', body, NODE2, now));
  const cache = new NonceCache();
  const r = verify(h, { cache });
  t.match(r, { ok: true, length: body.length });
  if (!r.ok) return;
  t.ok(bodyMatches(body, r.length, r.digest), 'the body it announced');
  t.notOk(bodyMatches(Buffer.from('{"a":2}'), r.length, r.digest), 'a tampered body of the same length');
  t.notOk(bodyMatches(Buffer.from('{"a":1} '), r.length, r.digest), 'a longer one');
  t.match(verify(h, { cache, at: now + 10 }), { ok: false, reason: 'replayed request' });
});

t.test('the request names its responder and that responder run', async (t) => {
  const h = wire(signRequest(secret, 'POST', '/v1/sessions', body, NODE2, now));
  t.match(verify(h, { self: { ...NODE2, address: '198.18.3.2' } }), { ok: false, reason: /for the responder at 198\.18\.2\.2, not this one/ }, 'replayed to node3');
  t.match(verify(h, { self: { ...NODE2, instance: 'b'.repeat(32) } }), { ok: false, reason: /earlier run of this responder/ }, 'replayed after a restart');
  t.match(verify({ ...h, [HEADER_FOR]: '198.18.3.2' }, { self: { ...NODE2, address: '198.18.3.2' } }), { ok: false, reason: /bad signature/ }, 'the target is signed');
  const first = wire(signRequest(secret, 'GET', '/v1/info', '', { address: NODE2.address }, now), Buffer.alloc(0));
  t.match(verify(first, { method: 'GET', path: '/v1/info', instanceOptional: true }), { ok: true }, 'GET /v1/info may come before the instance is known');
  t.match(verify(first, { method: 'GET', path: '/v1/info' }), { ok: false, reason: /names no responder instance/ }, 'nothing else may');
});

t.test('wrong secret, tampered path/method/length, stale time, missing or malformed headers, chunked bodies', async (t) => {
  const h = wire(signRequest(secret, 'POST', '/v1/sessions', body, NODE2, now));
  t.match(verifyRequestHeaders(Buffer.from('another secret, also long enough'), h, 'POST', '/v1/sessions', NODE2, new NonceCache(), { instanceOptional: false }, now), {
    ok: false,
    reason: /bad signature/,
  });
  t.match(verify(h, { path: '/v1/sessions/x' }), { ok: false, reason: /bad signature/ });
  t.match(verify(h, { method: 'GET' }), { ok: false, reason: /bad signature/ });
  t.match(verify({ ...h, 'content-length': String(body.length + 1) }), { ok: false, reason: /bad signature/ }, 'the declared length is signed');
  t.match(verify({ ...h, [HEADER_BODY_DIGEST]: 'f'.repeat(64) }), { ok: false, reason: /bad signature/ }, 'the digest is signed');
  t.match(verify({ ...h, [HEADER_INSTANCE]: 'c'.repeat(32) }), { ok: false, reason: /bad signature/ });
  t.match(verify(h, { at: now + 31_000 }), { ok: false, reason: /replay window/ });
  t.match(verify({}), { ok: false, reason: /missing/ });
  t.match(verify({ ...h, [HEADER_TIME]: 'x' }), { ok: false, reason: /malformed/ });
  t.match(verify({ ...h, [HEADER_NONCE]: 'y' }), { ok: false, reason: /malformed/ });
  t.match(verify({ ...h, [HEADER_SIGNATURE]: 'z' }), { ok: false, reason: /malformed/ });
  t.match(verify({ ...h, 'content-length': '-1' }), { ok: false, reason: /malformed/ });
  t.match(verify({ ...h, 'transfer-encoding': 'chunked' }), { ok: false, reason: /chunked/ });
});

t.test('responses: signed for the request they answer, by the responder it was for', async (t) => {
  const p = { address: NODE2.address, instance: NODE2.instance, nonce: 'ab'.repeat(16), status: 201, body: '{"id":"x"}' };
  const sig = responseSignature(secret, p);
  t.ok(sameSignature(sig, responseSignature(secret, { ...p })));
  for (const [what, other] of [
    ['another secret', responseSignature(Buffer.from('not the secret'), p)],
    ['another request', responseSignature(secret, { ...p, nonce: 'cd'.repeat(16) })],
    ['another status', responseSignature(secret, { ...p, status: 200 })],
    ['another body', responseSignature(secret, { ...p, body: '{"id":"y"}' })],
    ['another responder', responseSignature(secret, { ...p, address: '198.18.3.2' })],
    ['another run', responseSignature(secret, { ...p, instance: 'b'.repeat(32) })],
  ] as const)
    t.notOk(sameSignature(other, sig), what);
  t.notOk(sameSignature(undefined, sig));
  t.notOk(sameSignature('zz', sig));
});

t.test('stream lines: each signed with its number; forged, reordered or re-sent lines do not open', async (t) => {
  const p = { address: NODE2.address, instance: NODE2.instance, nonce: 'ab'.repeat(16) };
  const l0 = signLine(secret, { ...p, n: 0, line: '{"outcome":1}' });
  const l1 = signLine(secret, { ...p, n: 1, line: '{"done":true}' });
  t.equal(openLine(secret, { ...p, n: 0 }, l0), '{"outcome":1}');
  t.equal(openLine(secret, { ...p, n: 1 }, l1), '{"done":true}');
  t.equal(openLine(secret, { ...p, n: 0 }, l1), null, 'out of order');
  t.equal(openLine(secret, { ...p, n: 0, nonce: 'cd'.repeat(16) }, l0), null, 'from another request');
  t.equal(openLine(Buffer.from('other'), { ...p, n: 0 }, l0), null, 'another secret');
  t.equal(openLine(secret, { ...p, n: 0 }, l0.replace('1}', '2}')), null, 'tampered');
  t.equal(openLine(secret, { ...p, n: 0 }, '{"outcome":1}'), null, 'unsigned (an impostor)');
  fc.assert(fc.property(fc.string({ maxLength: 200 }), (s) => openLine(secret, { ...p, n: 0 }, s) === null));
});

t.test('random headers never verify and never throw', async () => {
  const names = fc.constantFrom(HEADER_TIME, HEADER_NONCE, HEADER_SIGNATURE, HEADER_FOR, HEADER_INSTANCE, HEADER_BODY_DIGEST, 'content-length', 'transfer-encoding', 'other');
  fc.assert(
    fc.property(fc.dictionary(names, fc.oneof(fc.string(), fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 16, maxLength: 64 }), fc.array(fc.string(), { maxLength: 2 }))), (headers) => {
      const r = verify(headers as Record<string, string>);
      return r.ok === false;
    }),
    { numRuns: 2000 },
  );
});

t.test('the nonce cache is bounded and forgets after the window', async (t) => {
  const c = new NonceCache(1000, 3);
  t.ok(c.remember('a', 0));
  t.ok(c.remember('b', 0));
  t.ok(c.remember('c', 0));
  t.notOk(c.remember('d', 10), 'full of fresh nonces: refuse rather than forget');
  t.ok(c.remember('d', 2001), 'old ones expired after twice the window');
  t.equal(c.size, 1);
});
