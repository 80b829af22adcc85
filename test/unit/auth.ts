// Control-channel authentication: good requests pass; wrong secret, tampering, staleness and replays fail.
import t from 'tap';
import fc from 'fast-check';
import { HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIME, NonceCache, signRequest, verifyRequest } from '../../src/control/auth.js';

const secret = Buffer.from('0123456789abcdef0123456789abcdef');
const body = Buffer.from('{"a":1}');

t.test('a signed request verifies once, and its replay is refused', async (t) => {
  const now = 1_700_000_000_000;
  const h = signRequest(secret, 'POST', '/v1/sessions', body, now);
  const cache = new NonceCache();
  t.same(verifyRequest(secret, h, 'POST', '/v1/sessions', body, cache, now + 5), { ok: true });
  t.same(verifyRequest(secret, h, 'POST', '/v1/sessions', body, cache, now + 10), { ok: false, reason: 'replayed request' });
});

t.test('wrong secret, tampered body/path/method, stale time, missing headers', async (t) => {
  const now = 1_700_000_000_000;
  const h = signRequest(secret, 'POST', '/v1/sessions', body, now);
  const v = (s: Buffer, m: string, p: string, b: Buffer, at = now) => verifyRequest(s, h, m, p, b, new NonceCache(), at);
  t.match(v(Buffer.from('another secret, also long enough'), 'POST', '/v1/sessions', body), { ok: false, reason: /bad signature/ });
  t.match(v(secret, 'POST', '/v1/sessions', Buffer.from('{"a":2}')), { ok: false });
  t.match(v(secret, 'POST', '/v1/sessions/x', body), { ok: false });
  t.match(v(secret, 'GET', '/v1/sessions', body), { ok: false });
  t.match(v(secret, 'POST', '/v1/sessions', body, now + 31_000), { ok: false, reason: /replay window/ });
  t.match(verifyRequest(secret, {}, 'GET', '/', Buffer.alloc(0), new NonceCache(), now), { ok: false, reason: /missing/ });
  t.match(verifyRequest(secret, { [HEADER_TIME]: 'x', [HEADER_NONCE]: 'y', [HEADER_SIGNATURE]: 'z' }, 'GET', '/', Buffer.alloc(0), new NonceCache(), now), {
    ok: false,
    reason: /malformed/,
  });
});

t.test('random headers never verify and never throw', async () => {
  fc.assert(
    fc.property(fc.dictionary(fc.constantFrom(HEADER_TIME, HEADER_NONCE, HEADER_SIGNATURE, 'other'), fc.string()), fc.uint8Array(), (headers, b) => {
      const r = verifyRequest(secret, headers, 'POST', '/v1/x', Buffer.from(b), new NonceCache());
      return r.ok === false;
    }),
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
