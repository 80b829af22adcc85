// Finds the self-contained build (`npm run bundle`) that `--ssh` copies to the nodes, and names it by
// its content hash so a node that already holds the same build is not sent it again.
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT, UserError } from '../errors.js';

/** The bundle `--ssh` needs is missing: a usage problem (build it first), exit 2. */
export class BundleError extends UserError {
  constructor(message: string) {
    super(message, EXIT.usage);
    this.name = 'BundleError';
  }
}

/** The files of the bundle, as they are laid out on the node too. */
export const BUNDLE_FILES = ['calico-nettest.mjs', 'calico_nettest.node'] as const;

export interface BundleFile {
  name: (typeof BUNDLE_FILES)[number];
  path: string;
  sha256: string;
  size: number;
}

export interface LocatedBundle {
  dir: string;
  files: BundleFile[];
  /** sha256 over both files' hashes: names the build on the node. */
  id: string;
  /** Set when the bundle looks older than the compiled CLI (dist/): a hint to rebuild it. */
  staleHint?: string;
}

/** The package root (src/remote/ and dist/remote/ both sit two levels below it). */
const packageRoot = fileURLToPath(new URL('../..', import.meta.url));

/** CALICO_NETTEST_BUNDLE_DIR, else <package>/bundle. */
export function defaultBundleDir(): string {
  return process.env.CALICO_NETTEST_BUNDLE_DIR || join(packageRoot, 'bundle');
}

export async function locateBundle(dir: string = defaultBundleDir()): Promise<LocatedBundle> {
  const files: BundleFile[] = [];
  for (const name of BUNDLE_FILES) {
    const path = join(dir, name);
    let data: Buffer;
    try {
      data = await readFile(path);
    } catch {
      throw new BundleError(
        `--ssh copies a self-contained build to the nodes, but ${path} does not exist — build it with \`npm run bundle\` in ${packageRoot} (or point CALICO_NETTEST_BUNDLE_DIR at one)`,
      );
    }
    files.push({ name, path, sha256: createHash('sha256').update(data).digest('hex'), size: data.length });
  }
  const id = createHash('sha256').update(files.map((f) => f.sha256).join('\n')).digest('hex');
  const out: LocatedBundle = { dir, files, id };
  try {
    const built = await stat(join(packageRoot, 'dist', 'cli', 'main.js'));
    const bundled = await stat(files[0]!.path);
    if (built.mtimeMs > bundled.mtimeMs + 1000) out.staleHint = `${files[0]!.path} is older than dist/ — run \`npm run bundle\` again if the responder changed`;
  } catch {
    /* no dist/: running from source or from a package without it */
  }
  return out;
}
