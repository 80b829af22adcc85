// Loading the shared secret that authenticates the control channel and keys the probe HMACs: refuse
// the placeholder and guessable secrets, warn when others can read or change the file.
import { open } from 'node:fs/promises';
import { EXIT, UserError } from './errors.js';

export class ConfigError extends UserError {
  readonly code = 'ECONFIG';
  constructor(message: string) {
    super(message, EXIT.usage);
    this.name = 'ConfigError';
  }
}

export const MIN_SECRET_BYTES = 16;
/** Below this estimate a secret is refused: a blind guess must be hopeless. */
export const MIN_SECRET_BITS = 128;
/** deploy/secret.yaml's `stringData.secret`, refused as it is (test/unit/secret.ts keeps the two equal). */
export const PLACEHOLDER_SECRET = 'REPLACE-WITH-THE-OUTPUT-OF-head-c-32-dev-urandom-base64';

const HOW = (path: string) => `make a good one with: head -c 32 /dev/urandom | base64 > ${path}; chmod 600 ${path}`;

/** The alphabet a secret's characters come from, as an attacker would enumerate it. */
function alphabetSize(s: string): number {
  if (/^[0-9a-f]+$/.test(s) || /^[0-9A-F]+$/.test(s)) return 16;
  let size = 0;
  if (/[0-9]/.test(s)) size += 10;
  if (/[a-z]/.test(s)) size += 26;
  if (/[A-Z]/.test(s)) size += 26;
  if (/[^0-9a-zA-Z]/.test(s)) size += 33; // printable ASCII punctuation and space; anything else counts as one of them
  return Math.max(size, 1);
}

/**
 * Bits an attacker must guess, estimated from the characters alone (no dictionary): length × log2 of
 * the alphabet used, when the characters are as varied as random ones from that alphabet would be
 * (distinct characters at least 55% of what chance gives: the random outputs of `head -c 16|32
 * /dev/urandom | base64` and `openssl rand -hex 16` all are, 100 000 of 100 000 tried); otherwise their
 * Shannon entropy × length, so "aaaa…" is 0 bits and "abab…" 1 bit a character.
 */
export function estimateSecretBits(secret: string): number {
  const n = [...secret].length;
  if (n === 0) return 0;
  const k = alphabetSize(secret);
  const alphabetBits = n * Math.log2(k);
  const counts = new Map<string, number>();
  for (const c of secret) counts.set(c, (counts.get(c) ?? 0) + 1);
  const expectedDistinct = k * (1 - Math.pow(1 - 1 / k, n));
  if (counts.size >= 0.55 * expectedDistinct && counts.size > 1) return alphabetBits;
  let h = 0;
  for (const c of counts.values()) h -= (c / n) * Math.log2(c / n);
  return Math.min(alphabetBits, h * n);
}

/** What is wrong with a secret's strength (undefined: good enough). */
export function secretProblem(text: string, path: string): string | undefined {
  if (text === PLACEHOLDER_SECRET || text.startsWith('REPLACE-WITH')) {
    return `secret file ${path} holds the placeholder from deploy/secret.yaml, which everyone knows — ${HOW(path)}`;
  }
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes < MIN_SECRET_BYTES) return `secret in ${path} is too short (${bytes} bytes; at least ${MIN_SECRET_BYTES}, and random) — ${HOW(path)}`;
  const bits = estimateSecretBits(text);
  if (bits < MIN_SECRET_BITS) {
    return (
      `secret in ${path} is too easy to guess: about ${Math.floor(bits)} bits of entropy, at least ${MIN_SECRET_BITS} needed ` +
      `(its characters repeat or come from a small alphabet) — ${HOW(path)}`
    );
  }
  return undefined;
}

export interface LoadSecretOptions {
  /** Where warnings go (default: stderr, prefixed "warning: "). */
  warn?: (message: string) => void;
}

/**
 * Read a secret file: surrounding whitespace is ignored. Refuses (ConfigError) a missing, empty or
 * placeholder secret and one under 128 bits of estimated entropy; warns when the file is readable or
 * writable by group/others or owned by another user (they can read or change the key to every probe).
 */
export async function loadSecret(path: string, opts: LoadSecretOptions = {}): Promise<Buffer> {
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`warning: ${m}\n`));
  let text: Buffer;
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(path, 'r');
    const st = await fh.stat();
    if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    text = await fh.readFile();
    if (st.isFile()) for (const w of fileWarnings(path, st.mode, st.uid)) warn(w);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(
      code === 'ENOENT'
        ? `secret file ${path} does not exist — create one with: head -c 32 /dev/urandom | base64 > ${path}; chmod 600 ${path}`
        : `cannot read secret file ${path}: ${code ?? String(err)}`,
    );
  } finally {
    await fh?.close().catch(() => undefined);
  }
  const trimmed = text.toString('utf8').trim();
  if (trimmed.length === 0) throw new ConfigError(`secret file ${path} is empty — put a random secret in it: ${HOW(path)}`);
  const problem = secretProblem(trimmed, path);
  if (problem) throw new ConfigError(problem);
  return Buffer.from(trimmed, 'utf8');
}

/** Warnings about who else can read or change a secret file (pure: mode and owner in). */
export function fileWarnings(path: string, mode: number, uid: number, myUid: number | undefined = process.geteuid?.()): string[] {
  const out: string[] = [];
  const perm = mode & 0o777;
  if (perm & 0o077) {
    const who = [perm & 0o070 ? 'its group' : '', perm & 0o007 ? 'every user' : ''].filter(Boolean).join(' and ');
    const what = perm & 0o022 ? 'read or change' : 'read';
    out.push(`secret file ${path} has mode ${perm.toString(8).padStart(4, '0')}: ${who} can ${what} the secret — chmod 600 ${path}`);
  }
  if (myUid !== undefined && uid !== myUid && uid !== 0) {
    out.push(`secret file ${path} is owned by uid ${uid}, not by you (uid ${myUid}) or root: that user can change the secret — chown ${myUid === 0 ? 'root' : myUid} ${path}`);
  }
  return out;
}
