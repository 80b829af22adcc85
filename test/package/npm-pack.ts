// The npm package: `npm pack` makes a tarball whose global install puts calico-nettest on PATH with the
// native addon built (the package's install script runs node-gyp on the installing machine).
import t from 'tap';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runIn } from '../helpers/lab.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// Installing 180 packages and compiling the addon takes minutes on a loaded machine.
t.setTimeout(600_000);

t.test('npm pack, npm install -g of the tarball: calico-nettest on PATH, the addon built and loadable', async (t) => {
  const version = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  // `npm test` built dist/ already; packing with scripts would rebuild it under the feet of other tests.
  t.ok(existsSync(join(ROOT, 'dist', 'cli', 'main.js')), 'dist/ is built');
  const dir = await mkdtemp(join(tmpdir(), 'cnt-npm-pack-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));

  const pack = await runIn(['npm', 'pack', '--ignore-scripts', '--json', '--pack-destination', dir], 120_000);
  t.equal(pack.code, 0, `npm pack: ${pack.stderr}`);
  const [info] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const files = info!.files.map((f) => f.path);
  for (const f of ['bin/calico-nettest', 'dist/cli/main.js', 'binding.gyp', 'native/addon.cc', 'schema/report.schema.json', 'deploy/daemonset.yaml', 'deploy/build-image.sh'])
    t.ok(files.includes(f), `the tarball has ${f}`);
  t.notOk(files.some((f) => /^(src|test|bench|build|node_modules)\//.test(f)), 'no sources, tests, build output or dependencies in it');

  const prefix = join(dir, 'prefix');
  const install = await runIn(['npm', 'install', '--global', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', join(dir, info!.filename)], 300_000);
  t.equal(install.code, 0, `npm install -g: ${install.stderr.slice(-2000)}`);
  const pkg = join(prefix, 'lib', 'node_modules', 'calico-nettest');
  t.ok(existsSync(join(pkg, 'build', 'Release', 'calico_nettest.node')), 'the addon was built at install');

  const path = `${join(prefix, 'bin')}:${process.env.PATH ?? ''}`;
  const v = await runIn(['sh', '-c', 'command -v calico-nettest && calico-nettest --version'], 60_000, { PATH: path });
  t.equal(v.code, 0, v.stderr);
  const [where, printed] = v.stdout.trim().split('\n');
  t.equal(where, join(prefix, 'bin', 'calico-nettest'), 'calico-nettest is on PATH from the global prefix');
  t.equal(printed, version, '--version prints the package version');

  const load = await runIn([process.execPath, '-e', `import(${JSON.stringify(join(pkg, 'dist', 'native.js'))}).then((m) => { m.loadNative(); console.log('loaded'); })`], 60_000);
  t.equal(load.stdout.trim(), 'loaded', `the installed addon loads: ${load.stderr}`);
});
