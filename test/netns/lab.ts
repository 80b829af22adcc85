// The lab and the demo as a user drives them: the CLI, real namespaces, nothing left behind.
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { parseReport } from '../../src/report/json.js';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isRunning, run } from '../../src/lab/sys.js';
import { listLabs } from '../../src/lab/lab.js';
import { needsRoot } from '../helpers/lab.js';
import { kernelCan } from '../helpers/kernel.js';
import { waitFor } from '../helpers/wait.js';

const BIN = fileURLToPath(new URL('../../bin/calico-nettest', import.meta.url));

function cli(args: string[], timeoutMs = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: timeoutMs, env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}


const waitUntil = (pred: () => boolean, timeoutMs: number) => waitFor(pred, { timeout: timeoutMs, what: 'the lab command' });

const namespaces = async (prefix: string) => (await run(['ip', 'netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith(prefix)).length;

t.test('demo: verdicts match its faults, and it leaves no namespace behind', { skip: needsRoot }, async (t) => {
  const r = await cli(['demo', '--no-color']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /Diagnosis/);
  t.match(r.stdout, /node2's own firewall drops IP-in-IP/);
  t.match(r.stdout, /the path from 198\.18\.1\.0\/24 to 198\.18\.3\.0\/24 drops VXLAN/);
  t.match(r.stdout, /node4's own firewall blocks BGP/);
  t.match(r.stdout, /node2's own firewall rejects Typha/);
  t.match(r.stdout, /Every one of the \d+ flows got the verdict the injected faults imply/);
  // The lab's own host findings, before the matrices; what the kernel lacks is derived by trying, not hard-coded.
  const at = r.stdout.indexOf('Preflight (host requirements)');
  t.ok(at > 0 && at < r.stdout.indexOf('Each row is a sender'), 'preflight findings shown before the matrices');
  const ipip = await kernelCan(['ipip']);
  t.equal(/✗ ERROR +kernel-module-missing +node1, node2, node3, node4\n +kernel lacks ipip:/.test(r.stdout), !ipip, `ipip missing on every node exactly when this kernel cannot make an ipip link (${ipip})`);
  t.match(r.stdout, /Preflight found \d+ host requirement findings? on the lab's nodes/);
  t.notMatch(r.stdout, /Preflight could not check/);
  const prefix = /lab (cnt-[0-9a-f]{6}) removed/.exec(r.stderr)?.[1];
  t.ok(prefix, 'the demo says which lab it removed');
  t.equal(await namespaces(prefix!), 0, 'no namespace of the demo is left');
  t.notOk((await listLabs()).some((l) => l.prefix === prefix), 'no lab state left');
  // It said "report written to …": that file is kept, says where, and is a whole report.
  const kept = /report kept: (\S+)/.exec(r.stderr)?.[1];
  t.ok(kept && existsSync(kept), `the report it names exists: ${kept}`);
  if (kept) {
    t.teardown(() => rm(dirname(kept), { recursive: true, force: true }));
    t.match(r.stdout + r.stderr, new RegExp(`report written to ${kept.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    const saved = parseReport(await readFile(kept, 'utf8'), kept);
    t.ok(saved.results.length > 0);
    t.same([...new Set(saved.findings?.map((f) => f.node))].sort(), ['node1', 'node2', 'node3', 'node4'], 'the kept report has every node\'s findings');
  }
});

t.test('lab up / status / fault add / fault clear / down through the CLI', { skip: needsRoot }, async (t) => {
  const up = await cli(['lab', 'up', '--nodes', '2', '--fault', 'drop:ipip@node2:in']);
  t.equal(up.code, 0, up.stderr);
  const prefix = /Lab (cnt-[0-9a-f]{6}) is up/.exec(up.stdout)?.[1];
  t.ok(prefix);
  t.teardown(() => cli(['lab', 'down', '--lab', prefix!]));
  t.match(up.stdout, new RegExp(`ip netns exec ${prefix}-r .*calico-nettest mesh --inventory`), 'prints the exact mesh command');
  t.equal(await namespaces(prefix!), 3, 'two nodes and the router');
  const st = await cli(['lab', 'status']);
  t.match(st.stdout, new RegExp(`${prefix}.*faults: drop:ipip@node2:in`));
  t.match(st.stdout, /node1 +198\.18\.1\.2 +responder running/);
  t.equal((await cli(['lab', 'fault', 'add', 'reject:bgp@node1:in', '--lab', prefix!])).code, 0);
  const bad = await cli(['lab', 'fault', 'add', 'drop:ipip@node9:in', '--lab', prefix!]);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /unknown node 'node9'/);
  const bad2 = await cli(['lab', 'fault', 'add', 'dorp:ipip@node1:in', '--lab', prefix!]);
  t.equal(bad2.code, 2);
  t.match(bad2.stderr, /did you mean 'drop'/);
  t.match(bad2.stderr, /ACTION:CHECK@WHERE/, 'names the grammar');
  const cleared = await cli(['lab', 'fault', 'clear', '--lab', prefix!]);
  t.match(cleared.stdout, /removed 2 fault rules/);
  const down = await cli(['lab', 'down', '--lab', prefix!]);
  t.equal(down.code, 0);
  t.equal(await namespaces(prefix!), 0, 'lab down removes every namespace');
});

t.test('lab down removes a half-built lab', { skip: needsRoot }, async (t) => {
  // A lab whose build fails half-way (a bad fault is found only after the namespaces exist would be
  // refused earlier, so simulate: namespaces by that prefix without any state or processes).
  const prefix = 'cnt-0badc0';
  await run(['ip', 'netns', 'add', `${prefix}-r`]);
  await run(['ip', 'netns', 'add', `${prefix}-n1`]);
  t.teardown(async () => {
    await run(['ip', 'netns', 'del', `${prefix}-r`], { allowFail: true });
    await run(['ip', 'netns', 'del', `${prefix}-n1`], { allowFail: true });
  });
  // No lab.json, no directory: only namespaces named like a lab's. The CLI still finds and removes them.
  const st = await cli(['lab', 'status']);
  t.match(st.stdout, new RegExp(`${prefix}  BROKEN: its lab.json is missing`), 'status lists it');
  const down = await cli(['lab', 'down', '--lab', prefix]);
  t.equal(down.code, 0, down.stderr);
  t.match(down.stdout, new RegExp(`lab ${prefix} removed: 2 namespaces`));
  t.equal(await namespaces(prefix), 0);
});

t.test('a lab whose lab.json was emptied (killed mid-write) is listed and removed whole', { skip: needsRoot }, async (t) => {
  const up = await cli(['lab', 'up', '--nodes', '2']);
  t.equal(up.code, 0, up.stderr);
  const prefix = /Lab (cnt-[0-9a-f]{6}) is up/.exec(up.stdout)![1]!;
  t.teardown(() => cli(['lab', 'down', '--lab', prefix]));
  const labs = await listLabs();
  const lab = labs.find((l) => l.prefix === prefix)!;
  const pids = lab.nodes.map((n) => n.pid!);
  await writeFile(join(lab.dir, 'lab.json'), '');
  const st = await cli(['lab', 'status']);
  t.match(st.stdout, new RegExp(`${prefix}  BROKEN: its lab.json is empty`));
  const down = await cli(['lab', 'down', '--lab', prefix]);
  t.equal(down.code, 0, down.stderr);
  t.match(down.stdout, /3 namespaces, 2 responder processes/);
  t.equal(await namespaces(prefix), 0, 'every namespace gone');
  t.same(pids.filter(isRunning), [], 'every responder gone');
  t.notOk(existsSync(lab.dir), 'state directory gone');
});

t.test('Ctrl-C during lab up removes what it made and says what that was', { skip: needsRoot }, async (t) => {
  const child = spawn(process.execPath, [BIN, 'lab', 'up', '--nodes', '3'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Interrupt once the namespaces are being made (something to remove), not at a fixed time.
  await waitUntil(() => /creating 3 node namespaces/.test(stderr), 30_000);
  const prefix = /router (cnt-[0-9a-f]{6})-r/.exec(stderr)![1]!;
  t.teardown(() => cli(['lab', 'down', '--lab', prefix]));
  child.kill('SIGINT');
  t.equal(await exited, 130, 'exit 130');
  t.match(stderr, new RegExp(`interrupted: lab ${prefix} not built; removed \\d+ namespaces?, \\d+ responder process`), stderr);
  t.equal(await namespaces(prefix), 0, 'no namespace left');
  t.notOk((await listLabs()).some((l) => l.prefix === prefix), 'no lab state left');
});

t.test('lab up prints commands that work pasted anywhere: absolute launcher, no sudo as root', { skip: needsRoot }, async (t) => {
  const up = await cli(['lab', 'up', '--nodes', '2']);
  t.equal(up.code, 0, up.stderr);
  const prefix = /Lab (cnt-[0-9a-f]{6}) is up/.exec(up.stdout)![1]!;
  t.teardown(() => cli(['lab', 'down', '--lab', prefix]));
  t.notMatch(up.stdout, /sudo/, 'root needs no sudo');
  t.notMatch(up.stdout, /\.\/bin\//, 'no relative launcher');
  t.match(up.stdout, new RegExp(`^  ip netns exec ${prefix}-r ${BIN.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} mesh --inventory /`, 'm'));
  t.match(up.stdout, /lab fault add 'drop:ipip@node2:in'/, 'the fault example is quoted');
  // Paste the printed mesh command as a user would (through a shell), from another directory.
  const line = /^  (ip netns exec .* mesh --inventory \S+ --secret-file \S+)$/m.exec(up.stdout)![1]!;
  const r = await new Promise<{ code: number; out: string }>((resolve) =>
    execFile('/bin/sh', ['-c', `cd / && ${line} --checks bgp --quiet`], { timeout: 60_000 }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? -1) : 0, out: stdout + stderr })),
  );
  t.equal(r.code, 0, r.out);
});


t.test('an unknown fault node is refused before anything is built', { skip: needsRoot }, async (t) => {
  const r = await cli(['lab', 'up', '--nodes', '2', '--fault', 'drop:bgp@node7:in']);
  t.equal(r.code, 2);
  t.match(r.stderr, /unknown node 'node7'/);
});
