// verify against a baseline through a real firewall change and its fix; JUnit from a real run;
// Ctrl-C in the middle of a mesh leaves a valid, partial report and exit 130.
import t from 'tap';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { coordinatorArgv, labFaultAdd, labFaultClear } from '../../src/lab/lab.js';
import { parseReport, validateReport } from '../../src/report/json.js';
import { labArgs, labCli, needsRoot, withLab } from '../helpers/lab.js';
import { waitFor, waitOut } from '../helpers/wait.js';

t.test('verify: a breaking change regresses exactly its flows (exit 1); the fix shows them fixed (exit 0)', { skip: needsRoot }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cnt-verify-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const lab = await withLab(t, { nodes: 3, checks: ['bgp', 'ipip', 'vxlan'] });
  const good = join(dir, 'good.json');
  const base = await labCli(lab, ['mesh', ...labArgs(lab), '--out', good, '--quiet']);
  t.equal(base.code, 0, base.stderr);

  await labFaultAdd(lab, ['drop:ipip@node3:in']);
  const broken = join(dir, 'broken.json');
  const v1 = await labCli(lab, ['verify', '--baseline', good, ...labArgs(lab), '--out', broken]);
  t.equal(v1.code, 1, 'exit 1: something regressed');
  t.match(v1.stdout, /2 flows regressed/);
  const r1 = parseReport(await readFile(broken, 'utf8'), broken);
  const regressed = r1.results.filter((r) => r.change === 'regressed').map((r) => `${r.check} ${r.from}->${r.to} ${r.cause}`).sort();
  t.same(regressed, ['ipip node1->node3 ingress-blocked', 'ipip node2->node3 ingress-blocked']);
  t.equal(r1.results.filter((r) => r.change === 'unchanged').length, r1.results.length - 2);
  t.equal(r1.baseline?.startedAt, parseReport(await readFile(good, 'utf8'), good).startedAt);
  t.same(validateReport(JSON.parse(await readFile(broken, 'utf8'))), [], 'a real verify report validates against schema/report.schema.json');
  t.same(validateReport(JSON.parse(await readFile(good, 'utf8'))), [], 'a real mesh report validates too');

  // Failures already in the baseline are reported, not fatal; --strict makes them fatal.
  const same = await labCli(lab, ['verify', '--baseline', broken, ...labArgs(lab), '--quiet']);
  t.equal(same.code, 0, 'nothing regressed against a baseline that already failed');
  const strict = await labCli(lab, ['verify', '--baseline', broken, ...labArgs(lab), '--quiet', '--strict']);
  t.equal(strict.code, 1, '--strict: any failure is fatal');

  await labFaultClear(lab);
  const fixed = await labCli(lab, ['verify', '--baseline', broken, ...labArgs(lab), '--format', 'json']);
  t.equal(fixed.code, 0);
  const r2 = parseReport(fixed.stdout, 'stdout');
  t.same(r2.results.filter((r) => r.change === 'fixed').map((r) => `${r.check} ${r.from}->${r.to}`).sort(), ['ipip node1->node3', 'ipip node2->node3']);
});

t.test('verify with fewer checks than the baseline says what it did not compare; --strict makes it fatal', { skip: needsRoot }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cnt-verify-scope-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const lab = await withLab(t, { nodes: 3, checks: ['bgp', 'ipip', 'vxlan'] });
  const good = join(dir, 'good.json');
  t.equal((await labCli(lab, ['mesh', ...labArgs(lab), '--out', good, '--quiet'])).code, 0);
  const v = await labCli(lab, ['verify', '--baseline', good, ...labArgs(lab), '--checks', 'bgp', '--out', join(dir, 'v.json')]);
  t.equal(v.code, 0, 'nothing regressed: exit 0');
  t.match(v.stdout, /12 flows of the baseline were not tested: checks ipip, vxlan \(not in this run\)/);
  t.match(v.stderr, /warning: 12 flows of the baseline were not tested/);
  const r = parseReport(await readFile(join(dir, 'v.json'), 'utf8'), 'v.json');
  t.equal(r.baseline?.notTested, 12);
  t.same(r.baseline?.notTestedChecks, ['ipip', 'vxlan']);
  t.equal(r.baseline?.notTestedFlows?.length, 12);
  t.same(validateReport(JSON.parse(await readFile(join(dir, 'v.json'), 'utf8'))), [], 'validates against the schema');
  const strict = await labCli(lab, ['verify', '--baseline', good, ...labArgs(lab), '--checks', 'bgp', '--strict', '--quiet']);
  t.equal(strict.code, 1, '--strict: an untested baseline flow is fatal');
});

t.test('verify refuses a baseline that is not a report (exit 2)', { skip: needsRoot }, async (t) => {
  const lab = await withLab(t, { nodes: 2, checks: ['bgp'] });
  const r = await labCli(lab, ['verify', '--baseline', lab.inventory, ...labArgs(lab)]);
  t.equal(r.code, 2);
  t.match(r.stderr, /not JSON|not a calico-nettest report/);
});

t.test('JUnit from a real run: one testcase per flow, failures carry cause and detail', { skip: needsRoot }, async (t) => {
  const lab = await withLab(t, { nodes: 3, checks: ['bgp', 'ipip'], faults: ['drop:bgp@node2:in'] });
  const r = await labCli(lab, ['mesh', ...labArgs(lab), '--format', 'junit']);
  t.equal(r.code, 1);
  const cases = r.stdout.match(/<testcase [^>]*>/g) ?? [];
  t.equal(cases.length, 12, '3 nodes x 2 directions x 2 checks');
  t.ok(cases.some((c) => /classname="bgp"/.test(c) && /name="node1 -&gt; node2"/.test(c)), 'classname = check, name = "from -> to"');
  const failures = r.stdout.match(/<failure [^>]*>/g) ?? [];
  t.equal(failures.length, 2);
  for (const f of failures) t.match(f, /message="ingress-blocked: /);
});

const readLog = (file: string): string => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};

t.test('Ctrl-C mid-run: a valid partial report marked incomplete, exit 130', { skip: needsRoot }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cnt-sigint-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // Every probe into node3 is dropped and waits long timeouts, so the run is still going when interrupted.
  const lab = await withLab(t, { nodes: 3, faults: ['drop:all@node3:in'] });
  const out = join(dir, 'partial.json');
  const [cmd, ...args] = coordinatorArgv(lab, ['mesh', ...labArgs(lab), '--out', out, '--timeout', '3000', '--min-timeout', '3000', '--max-timeout', '3000', '--quiet']);
  const child = spawn(cmd!, args, { stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Interrupt once the run is probing (a responder has logged a witnessed probe), not after a fixed time: on a
  // loaded machine node may not even have loaded by then. node3's flows still have 3 x 3 s of tries to go.
  await waitFor(() => lab.nodes.some((n) => readLog(n.log).includes('"event":"witness"')), { timeout: 60_000, what: 'a responder to witness a probe' });
  await waitOut(1500, 'the flows not into node3 finish in well under this; node3\'s are still trying');
  child.kill('SIGINT');
  const code = await exited;
  t.equal(code, 130);
  const report = parseReport(await readFile(out, 'utf8'), out);
  t.equal(report.incomplete, true);
  t.ok(report.results.length > 0, `finished flows are kept (${report.results.length})`);
});
