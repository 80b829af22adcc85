// preflight through the responders of a real lab: each node checked by its own responder (its own namespace,
// its own sysctls), findings gathered by an authenticated control call; unreachable nodes said, never silent.
import t from 'tap';
import { readFile, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { run } from '../../src/lab/sys.js';
import { validatePreflight, type PreflightResult } from '../../src/preflight/result.js';
import { labArgs, labCli, needsRoot, withLab } from '../helpers/lab.js';
import { kernelCan } from '../helpers/kernel.js';

const parse = (stdout: string, stderr: string): PreflightResult => {
  try {
    return JSON.parse(stdout) as PreflightResult;
  } catch {
    throw new Error(`no JSON: ${stderr}`);
  }
};

t.test('preflight --inventory --secret-file: every node by its own responder', { skip: needsRoot }, async (t) => {
  const ipip = await kernelCan(['ipip']);
  const lab = await withLab(t, { nodes: 3, checks: ['bgp', 'ipip', 'vxlan'] });
  const [n1, n2, n3] = lab.nodes;
  // node2 alone gets loose RPF and no forwarding: only node2's findings may say so.
  await run(['ip', 'netns', 'exec', n2!.ns, 'sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=2', 'net.ipv4.ip_forward=0']);

  const r = await labCli(lab, ['preflight', ...labArgs(lab), '--format', 'json']);
  const res = parse(r.stdout, r.stderr);
  t.same(validatePreflight(res), [], 'JSON matches schema/preflight.schema.json');
  t.same(res.nodes, ['node1', 'node2', 'node3']);
  t.same(res.checks, ['bgp', 'ipip', 'vxlan'], 'checks from the inventory');
  const of = (node: string) => res.findings.filter((f) => f.node === node && f.id !== 'kernel-module-missing').map((f) => f.id).sort();
  t.same(of('node2'), ['ip-forward-disabled', 'rp-filter-loose'], "node2's own sysctls, read in node2's namespace");
  t.same(of('node1'), [], 'node1 is clean');
  t.same(of('node3'), []);
  for (const n of [n1!, n2!, n3!]) {
    const lacksIpip = res.findings.some((f) => f.node === n.name && f.id === 'kernel-module-missing' && /^kernel lacks ipip:/.test(f.detail) && f.severity === 'error');
    t.equal(lacksIpip, !ipip, `${n.name}: ipip missing exactly when the kernel cannot make an ipip link (${ipip})`);
  }
  t.equal(r.code, 1, 'errors found: exit 1');
  t.match(r.stderr, /preflight: asking 3 responders/);

  // The table and the HTML page, the same findings.
  const dir = await mkdtemp(join(tmpdir(), 'cnt-pfn-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const html = join(dir, 'preflight.html');
  const h = await labCli(lab, ['preflight', ...labArgs(lab), '--out', html]);
  t.equal(h.code, 1);
  t.match(h.stdout, /✗ ERROR +ip-forward-disabled +node2\n/, 'the table still prints, the page goes to --out');
  const page = await readFile(html, 'utf8');
  t.match(page, /^<!DOCTYPE html>/);
  t.match(page, /<section id="findings">/);
  t.match(page, /data-finding="rp-filter-loose" data-severity="error" data-nodes="node2"/);
  t.notMatch(page, /<script/, 'no script: the page reads as it is');

  // A responder that does not answer is a finding of its own (an error), the others still count.
  await run(['kill', String(n3!.pid)]);
  await run(['sh', '-c', `while kill -0 ${n3!.pid} 2>/dev/null; do sleep 0.1; done`], { timeoutMs: 10_000 });
  const down = await labCli(lab, ['preflight', ...labArgs(lab), '--format', 'json', '--timeout', '3000']);
  const d = parse(down.stdout, down.stderr);
  const un = d.findings.filter((f) => f.id === 'preflight-unavailable');
  t.same(un.map((f) => [f.node, f.severity]), [['node3', 'error']], 'node3 is not checked, and says so');
  t.match(un[0]!.detail, /nothing listens on 198\.18\.\d+\.\d+:5478/);
  t.ok(d.findings.some((f) => f.node === 'node2' && f.id === 'rp-filter-loose'), 'the others still answered');
  t.equal(down.code, 1);

  // The wrong secret: no responder answers → exit 3, and every node says why.
  const wrong = join(dir, 'wrong-secret');
  await writeFile(wrong, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  const bad = await labCli(lab, ['preflight', '--inventory', lab.inventory, '--secret-file', wrong, '--format', 'json', '--timeout', '3000']);
  t.equal(bad.code, 3, bad.stderr);
  const b = parse(bad.stdout, bad.stderr);
  t.same(b.findings.map((f) => f.id), ['preflight-unavailable', 'preflight-unavailable', 'preflight-unavailable']);
  t.match(b.findings.find((f) => f.node === 'node1')!.detail, /refused our credentials/);
  t.match(bad.stderr, /no responder answered/);
});

t.test('mesh: findings in the report, before the matrices; --no-preflight skips them', { skip: needsRoot }, async (t) => {
  const lab = await withLab(t, { nodes: 3, checks: ['bgp', 'vxlan'] });
  await run(['ip', 'netns', 'exec', lab.nodes[0]!.ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=0']);
  const dir = await mkdtemp(join(tmpdir(), 'cnt-pfm-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const out = join(dir, 'mesh.json');
  const m = await labCli(lab, ['mesh', ...labArgs(lab), '--out', out, '--format', 'table', '--no-color']);
  t.equal(m.code, 0, `every flow passes; findings do not change the exit status: ${m.stderr}`);
  const { parseReport } = await import('../../src/report/json.js');
  const report = parseReport(await readFile(out, 'utf8'), out);
  const fwd = report.findings?.filter((f) => f.id === 'ip-forward-disabled') ?? [];
  t.same(fwd.map((f) => f.node), ['node1'], "node1's finding, from node1's responder");
  t.ok(report.findings!.every((f) => ['node1', 'node2', 'node3'].includes(f.node)));
  t.notOk(report.findings!.some((f) => f.id === 'preflight-unavailable'), 'every responder answered');
  const at = m.stdout.indexOf('Preflight (host requirements)');
  t.ok(at > 0 && at < m.stdout.indexOf('bgp BGP'), 'the findings come before the matrices');
  t.match(m.stdout, /✗ ERROR +ip-forward-disabled +node1\n/);

  const skip = await labCli(lab, ['mesh', ...labArgs(lab), '--format', 'json', '--no-preflight']);
  t.equal(skip.code, 0);
  const r2 = parseReport(skip.stdout, 'stdout');
  t.equal(r2.findings, undefined, '--no-preflight: no findings at all (not an empty list that reads as "all fine")');
  t.notMatch(skip.stderr, /preflight: asking/);
});
