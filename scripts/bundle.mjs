// `npm run bundle`: the self-contained build copied to nodes by `mesh --ssh` — one ES module with every
// dependency inlined, plus the native addon next to it: bundle/calico-nettest.mjs + bundle/calico_nettest.node.
// Runs as `node bundle/calico-nettest.mjs responder ...` on any Linux host of the same CPU architecture.
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'bundle');
const entry = join(root, 'src', 'cli', 'main.ts');
const addon = join(root, 'build', 'Release', 'calico_nettest.node');
const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));

// ESM has no require/__filename; bundled CommonJS dependencies need them. The addon path is set here so
// that src/native.ts finds the .node next to the bundle, wherever the bundle was copied to.
const banner = [
  "import { createRequire as __cntCreateRequire } from 'node:module';",
  "import { fileURLToPath as __cntFileURLToPath } from 'node:url';",
  "import { dirname as __cntDirname, join as __cntJoin } from 'node:path';",
  'const require = __cntCreateRequire(import.meta.url);',
  'const __filename = __cntFileURLToPath(import.meta.url);',
  'const __dirname = __cntDirname(__filename);',
  "process.env.CALICO_NETTEST_ADDON ??= __cntJoin(__dirname, 'calico_nettest.node');",
].join('\n');

// src/version.ts reads ../package.json at run time, which the bundle does not carry: inline the version.
const inlineVersion = {
  name: 'inline-version',
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/]version\.ts$/ }, () => ({
      contents: `export const VERSION = ${JSON.stringify(pkg.version)};\n`,
      loader: 'ts',
    }));
  },
};

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await build({
  stdin: { contents: `import { main } from ${JSON.stringify(entry)};\nawait main(process.argv);\n`, resolveDir: root, sourcefile: 'bundle-entry.ts', loader: 'ts' },
  outfile: join(out, 'calico-nettest.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  banner: { js: banner },
  // Kubernetes discovery runs on the coordinator only, never from the bundle; left out, it is loaded lazily.
  external: ['@kubernetes/client-node'],
  plugins: [inlineVersion],
  logLevel: 'warning',
  legalComments: 'none',
});
try {
  await copyFile(addon, join(out, 'calico_nettest.node'));
} catch {
  console.error(`bundle: ${addon} is missing — build the addon first (npm install, or npx node-gyp rebuild)`);
  process.exit(1);
}
const sums = [];
for (const f of ['calico-nettest.mjs', 'calico_nettest.node']) {
  sums.push(`${createHash('sha256').update(await readFile(join(out, f))).digest('hex')}  ${f}`);
}
await writeFile(join(out, 'SHA256SUMS'), `${sums.join('\n')}\n`);
console.log(`bundle: ${join(out, 'calico-nettest.mjs')} + calico_nettest.node (${pkg.version})`);
