// Loading the shared secret that authenticates the control channel and keys the probe HMACs.
import { readFile } from 'node:fs/promises';
import { EXIT, UserError } from './errors.js';

export class ConfigError extends UserError {
  readonly code = 'ECONFIG';
  constructor(message: string) {
    super(message, EXIT.usage);
    this.name = 'ConfigError';
  }
}

export const MIN_SECRET_BYTES = 16;

/** Read a secret file: surrounding whitespace is ignored; it must hold at least 16 bytes. */
export async function loadSecret(path: string): Promise<Buffer> {
  let text: Buffer;
  try {
    text = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(
      code === 'ENOENT'
        ? `secret file ${path} does not exist — create one with: head -c 32 /dev/urandom | base64 > ${path}`
        : `cannot read secret file ${path}: ${code ?? String(err)}`,
    );
  }
  const secret = Buffer.from(text.toString('utf8').trim(), 'utf8');
  if (secret.length === 0) throw new ConfigError(`secret file ${path} is empty — put a random secret in it: head -c 32 /dev/urandom | base64 > ${path}`);
  if (secret.length < MIN_SECRET_BYTES) throw new ConfigError(`secret in ${path} is too short (${secret.length} bytes; at least ${MIN_SECRET_BYTES})`);
  return secret;
}
