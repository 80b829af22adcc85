// The CLI as a user meets it: the built binary, spawned. Help, exit codes and messages for bad input
// (nothing is run, no stack trace), and `report` rendering saved reports.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mesh, fail } from '../helpers/report-fixtures.js';
import { renderJson } from '../../src/report/json.js';

const BIN = fileURLToPath(new URL('../../bin/calico-nettest', import.meta.url));

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 30_000, env: { ...process.env, NO_COLOR: '1', ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

const dir = await mkdtemp(join(tmpdir(), 'cnt-cli-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const secret = join(dir, 'secret');
await writeFile(secret, 'a-shared-secret-long-enough\n');
const inv = join(dir, 'nodes.yaml');
await writeFile(inv, 'nodes:\n  - name: a\n    address: 198.18.1.2\n  - name: b\n    address: 198.18.2.2\n');

t.test('help and version exit 0, with examples', async (t) => {
  const h = await cli(['--help']);
  t.equal(h.code, 0);
  t.match(h.stdout, /mesh/);
  t.match(h.stdout, /which firewall dropped what|say which firewall/);
  for (const c of ['mesh', 'pair', 'verify', 'responder', 'lab', 'demo', 'report']) {
    const r = await cli([c, '--help']);
    t.equal(r.code, 0, `${c} --help`);
    t.match(r.stdout, /Examples?:/, `${c} --help has examples`);
  }
  t.match((await cli(['--version'])).stdout, /^\d+\.\d+\.\d+/);
});

t.test('bad usage and bad input exit 2 with a clear message and no stack trace', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['mesh'], /--inventory is required|required option '-i, --inventory/],
    [['mesh', '-i', inv], /--secret-file is required|required option '-s, --secret-file/],
    [['mesh', '-i', join(dir, 'missing.yaml'), '-s', secret], /missing\.yaml: cannot load the inventory: file not found/],
    [['mesh', '-i', inv, '-s', join(dir, 'nosecret')], /secret file .* does not exist/],
    [['mesh', '-i', inv, '-s', secret, '--checks', 'bgp,ipipp'], /did you mean 'ipip'/],
    [['mesh', '-i', inv, '-s', secret, '--tries', 'x'], /--tries must be a whole number/],
    [['mesh', '-i', inv, '-s', secret, '--format', 'pdf'], /Allowed choices/],
    [['pair', 'a', 'c', '-i', inv, '-s', secret], /unknown node 'c'/],
    [['pair', 'a', 'a', '-i', inv, '-s', secret], /itself|same node|twice/],
    [['nosuchcommand'], /unknown command/],
    [['responder', '--listen', '198.18.77.1', '-s', secret], /not an address of this host/],
    [['responder', '--listen', 'not-an-ip', '-s', secret], /IPv4/],
  ];
  for (const [args, msg] of cases) {
    const r = await cli(args);
    t.equal(r.code, 2, `${args.join(' ')} -> exit 2`);
    t.match(r.stderr, msg, args.join(' '));
    t.notMatch(r.stderr, /\n\s+at .*\.js:\d+/, 'no stack trace');
  }
  const badYaml = join(dir, 'bad.yaml');
  await writeFile(badYaml, 'nodes:\n  - name: a\n    address: 10.0.0.300\n');
  const r = await cli(['mesh', '-i', badYaml, '-s', secret]);
  t.equal(r.code, 2);
  t.match(r.stderr, /bad\.yaml:3:14: .*10\.0\.0\.300/, 'names file, line and column');
});

t.test('a mesh with no reachable responder exits 3 and says what to do', async (t) => {
  // 127.0.0.1 control addresses: nothing listens there; no probe traffic is ever sent.
  const local = join(dir, 'local.yaml');
  await writeFile(local, 'nodes:\n  - name: a\n    address: 198.18.1.2\n    control: 127.0.0.1:1\n  - name: b\n    address: 198.18.2.2\n    control: 127.0.0.1:2\n');
  const r = await cli(['mesh', '-i', local, '-s', secret, '--checks', 'bgp', '--format', 'json']);
  t.equal(r.code, 3);
  t.match(r.stderr, /could not reach any responder/);
  const report = JSON.parse(r.stdout);
  t.equal(report.summary.unknown, 2, 'the report is still written: every flow unknown');
  t.match(report.results[0].detail, /nothing listens on 127\.0\.0\.1/);
});

t.test('report renders saved reports in every format; bad files exit 2', async (t) => {
  const file = join(dir, 'r.json');
  await writeFile(file, renderJson(mesh(3, { fault: (c, _f, to) => (c === 'ipip' && to === 'node2' ? fail('ingress-blocked') : undefined) })));
  const table = await cli(['report', file]);
  t.equal(table.code, 1, 'a report with failures exits 1');
  t.match(table.stdout, /Diagnosis/);
  t.match(table.stdout, /node2's own firewall drops IP-in-IP/);
  const junit = await cli(['report', file, '--format', 'junit']);
  t.equal((junit.stdout.match(/<testcase /g) ?? []).length, 3 * 2 * 3);
  t.equal((junit.stdout.match(/<failure /g) ?? []).length, 2);
  const html = join(dir, 'r.html');
  t.equal((await cli(['report', file, '--format', 'html', '--out', html])).code, 1);
  t.match(await readFile(html, 'utf8'), /<!DOCTYPE html>/i);
  const truncated = join(dir, 't.json');
  await writeFile(truncated, (await readFile(file, 'utf8')).slice(0, 300));
  const bad = await cli(['report', truncated]);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /truncated/);
  const other = join(dir, 'o.json');
  await writeFile(other, '{"name":"something else"}');
  t.equal((await cli(['report', other])).code, 2);
});

t.test('help walks subcommands: help lab up shows lab up, with examples', async (t) => {
  const r = await cli(['help', 'lab', 'up']);
  t.equal(r.code, 0);
  t.match(r.stdout, /^Usage: calico-nettest lab up /);
  t.match(r.stdout, /--fault 'drop:vxlan@path:node1>node3'/, 'the example with > is quoted');
  for (const path of [['lab', 'down'], ['lab', 'status'], ['lab', 'fault'], ['lab', 'fault', 'add'], ['lab', 'fault', 'clear']]) {
    const h = await cli(['help', ...path]);
    t.match(h.stdout, new RegExp(`^Usage: calico-nettest ${path.join(' ')} `), `help ${path.join(' ')}`);
    t.match(h.stdout, /Examples?:/, `help ${path.join(' ')} has examples`);
  }
  const bad = await cli(['help', 'lab', 'nope']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /no command 'lab nope'/);
});

t.test('report: a missing file is called a report, and its exit status is documented', async (t) => {
  const r = await cli(['report', join(dir, 'none.json')]);
  t.equal(r.code, 2);
  t.match(r.stderr, /cannot read report .*none\.json: ENOENT \(no such file\)/);
  t.notMatch(r.stderr, /baseline/);
  t.match((await cli(['report', '--help'])).stdout, /Exit status: 0 when every flow .* passed, 1 when it has failed or unknown flows/s);
});

t.test('an unquoted path fault (the shell ate the >) says to quote it', async (t) => {
  const r = await cli(['lab', 'fault', 'add', 'drop:vxlan@path:node1', '--lab', 'cnt-000000']);
  t.equal(r.code, 2);
  t.match(r.stderr, /quote specs with > in them/);
});

t.test('a lab inventory used outside the lab\'s router namespace is refused with the command to run', async (t) => {
  const labInv = join(dir, 'lab-inventory.yaml');
  await writeFile(labInv, `# calico-nettest lab cnt-abcdef: 2 nodes behind router namespace cnt-abcdef-r\nnodes:\n  - name: node1\n    address: 198.18.1.2\n  - name: node2\n    address: 198.18.2.2\n`);
  const r = await cli(['mesh', '-i', labInv, '-s', secret]);
  t.equal(r.code, 2, 'nothing is sent');
  t.match(r.stderr, /inventory of lab cnt-abcdef, which is not up any more/);
});
