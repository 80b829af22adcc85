// The secret file: refused when it is the placeholder or guessable, warned about when others can read
// or change it. Files are real (a temp dir, real modes and owners); the estimate is checked on random
// secrets from the generators the help recommends.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { chmod, chown, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { parse } from 'yaml';
import { estimateSecretBits, fileWarnings, loadSecret, MIN_SECRET_BITS, PLACEHOLDER_SECRET, secretProblem } from '../../src/secret.js';

const isRoot = process.getuid?.() === 0;

t.test('the placeholder is the one deploy/secret.yaml ships, and it is refused', async (t) => {
  const yaml = parse(await readFile(fileURLToPath(new URL('../../deploy/secret.yaml', import.meta.url)), 'utf8')) as { stringData: { secret: string } };
  t.equal(yaml.stringData.secret, PLACEHOLDER_SECRET);
  const dir = t.testdir({ s: `${PLACEHOLDER_SECRET}\n` });
  await chmod(join(dir, 's'), 0o600);
  await t.rejects(loadSecret(join(dir, 's')), { code: 'ECONFIG', message: /placeholder from deploy\/secret\.yaml.*head -c 32 \/dev\/urandom \| base64 > .*chmod 600/ });
});

t.test('weak secrets are refused with how to make a good one; random ones are accepted', async (t) => {
  const weak = ['aaaaaaaaaaaaaaaa', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'abababababababab', 'abcabcabcabcabcabcabcabc', '1111111111111111111111111111111111', 'abcdefghijklmnop'];
  for (const s of weak) {
    t.ok(estimateSecretBits(s) < MIN_SECRET_BITS, `${s}: ${estimateSecretBits(s).toFixed(0)} bits`);
    t.match(secretProblem(s, 'sec'), /too easy to guess: about \d+ bits.*at least 128.*head -c 32 \/dev\/urandom \| base64 > sec; chmod 600 sec/, s);
  }
  t.match(secretProblem('short', 'sec'), /too short \(5 bytes/);
  t.equal(estimateSecretBits(''), 0);
  // 16 repeated letters: 0 bits, whatever letter.
  fc.assert(fc.property(fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'), fc.integer({ min: 16, max: 200 }), (c, n) => estimateSecretBits(c.repeat(n)) === 0));
  // The recommended generators always pass: 32 random bytes base64, and even 16 (hex or base64).
  for (let i = 0; i < 5000; i++) {
    for (const s of [randomBytes(32).toString('base64'), randomBytes(16).toString('hex'), randomBytes(16).toString('base64'), randomBytes(24).toString('base64url')]) {
      if (secretProblem(s, 'x') !== undefined) t.fail(`random secret refused: ${s} (${estimateSecretBits(s)} bits)`);
    }
  }
  t.ok(estimateSecretBits(randomBytes(32).toString('base64')) >= 200, '32 random bytes in base64 are ~256 bits');
});

t.test('the estimate: never above length × log2(alphabet), never negative, lower for repetition', async (t) => {
  fc.assert(
    fc.property(fc.string({ minLength: 1, maxLength: 80 }), (s) => {
      const b = estimateSecretBits(s);
      return b >= 0 && b <= [...s].length * Math.log2(95) + 1e-9;
    }),
  );
  fc.assert(fc.property(fc.string({ minLength: 4, maxLength: 20 }), (s) => estimateSecretBits(s.repeat(8)) <= estimateSecretBits(s) * 8 + 1e-9));
});

t.test('loadSecret: trims, refuses empty, missing and weak files, warns on loose modes', async (t) => {
  const good = randomBytes(32).toString('base64');
  const dir = t.testdir({ good: `  ${good}\n`, empty: '\n\n', weak: 'aaaaaaaaaaaaaaaaaaaaaaaa\n', loose: `${good}\n` });
  await chmod(join(dir, 'good'), 0o600);
  await chmod(join(dir, 'loose'), 0o644);
  const warned: string[] = [];
  const warn = (m: string) => warned.push(m);
  t.equal((await loadSecret(join(dir, 'good'), { warn })).toString(), good);
  t.same(warned, [], 'a 0600 file of our own: no warning');
  await t.rejects(loadSecret(join(dir, 'empty'), { warn }), { code: 'ECONFIG', message: /is empty/ });
  await t.rejects(loadSecret(join(dir, 'weak'), { warn }), { code: 'ECONFIG', message: /too easy to guess/ });
  await t.rejects(loadSecret(join(dir, 'missing'), { warn }), { code: 'ECONFIG', message: /does not exist — create one with: head -c 32/ });
  await t.rejects(loadSecret(dir, { warn }), { code: 'ECONFIG', message: /EISDIR/ });
  t.equal((await loadSecret(join(dir, 'loose'), { warn })).toString(), good, 'a readable file still loads');
  t.match(warned, [/mode 0644: its group and every user can read the secret — chmod 600 .*loose/]);
  warned.length = 0;
  await chmod(join(dir, 'loose'), 0o666);
  await loadSecret(join(dir, 'loose'), { warn });
  t.match(warned, [/mode 0666: .* can read or change the secret/]);
});

t.test('loadSecret warns about a file owned by another user', { skip: isRoot ? false : 'needs root (chown)' }, async (t) => {
  const dir = t.testdir({ s: `${randomBytes(32).toString('base64')}\n` });
  const f = join(dir, 's');
  await chmod(f, 0o600);
  await chown(f, 65534, 65534);
  const warned: string[] = [];
  await loadSecret(f, { warn: (m) => warned.push(m) });
  t.match(warned, [/owned by uid 65534, not by you \(uid 0\) or root: that user can change the secret — chown root/]);
});

t.test('fileWarnings (pure)', async (t) => {
  t.same(fileWarnings('f', 0o100600, 1000, 1000), []);
  t.same(fileWarnings('f', 0o100400, 0, 1000), [], 'root-owned, read-only: fine');
  t.match(fileWarnings('f', 0o100640, 1000, 1000), [/mode 0640: its group can read/]);
  t.match(fileWarnings('f', 0o100604, 1000, 1000), [/mode 0604: every user can read/]);
  t.match(fileWarnings('f', 0o100600, 1001, 1000), [/owned by uid 1001, not by you \(uid 1000\).*chown 1000 f/]);
});
