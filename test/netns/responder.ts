// The responder process itself: control port in use (exit 2), SIGTERM (exit 0), dropping privileges
// with --user (no_new_privs on every thread, not dumpable) and still probing and witnessing with the
// sockets it opened as root.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { inNs, run } from '../../src/lab/sys.js';
import { labReport, needsRoot, runIn, withLab } from '../helpers/lab.js';

const BIN = fileURLToPath(new URL('../../bin/calico-nettest', import.meta.url));

t.test('a second responder on the same control port exits 2 and says why', { skip: needsRoot }, async (t) => {
  const lab = await withLab(t, { nodes: 2, checks: ['bgp'] });
  const n1 = lab.nodes[0]!;
  const r = await runIn(inNs(n1.ns, [process.execPath, BIN, 'responder', '--listen', n1.address, '--secret-file', lab.secretFile, '--no-hold']), 30_000);
  t.equal(r.code, 2);
  t.match(r.stderr, /control port 5478 .* is in use/);
});

t.test('SIGTERM closes everything and exits 0; --user drops privileges, sets no_new_privs, is not dumpable, keeps working', { skip: needsRoot }, async (t) => {
  const lab = await withLab(t, { nodes: 2, checks: ['bgp', 'ipip', 'vxlan'] });
  const n2 = lab.nodes[1]!;
  // Replace node2's responder by one that drops to nobody after opening its sockets.
  process.kill(n2.pid!, 'SIGTERM');
  const stopped = await new Promise<boolean>((resolve) => {
    const deadline = Date.now() + 5000;
    const poll = () => {
      try {
        process.kill(n2.pid!, 0);
        if (Date.now() > deadline) return resolve(false);
        setTimeout(poll, 50);
      } catch {
        resolve(true);
      }
    };
    poll();
  });
  t.ok(stopped, 'the lab responder stopped on SIGTERM');
  // Another process of nobody's, started first: it can signal the responder, which must say so.
  const nobodyUid = Number((await run(['id', '-u', 'nobody'])).stdout.trim());
  const nobodyGid = Number((await run(['id', '-g', 'nobody'])).stdout.trim());
  const neighbour = spawn('sleep', ['60'], { uid: nobodyUid, gid: nobodyGid, stdio: 'ignore' });
  t.teardown(() => {
    if (neighbour.exitCode === null) neighbour.kill('SIGKILL');
  });
  const [cmd, ...args] = inNs(n2.ns, [process.execPath, BIN, 'responder', '--listen', n2.address, '--secret-file', lab.secretFile, '--user', 'nobody']);
  const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const deadline = Date.now() + 15_000;
  while (!/control port 5478/.test(out) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  t.match(out, /dropped privileges to nobody \(uid \d+/);
  const uid = (await readFile(`/proc/${child.pid}/status`, 'utf8')).match(/^Uid:\s+(\d+)/m)?.[1];
  t.equal(uid, String((await run(['id', '-u', 'nobody'])).stdout.trim()), 'running as nobody');
  // no_new_privs: on the process and on every one of its threads (V8's and libuv's too).
  t.match(await readFile(`/proc/${child.pid}/status`, 'utf8'), /^NoNewPrivs:\s+1$/m, 'NoNewPrivs: 1');
  const tasks = await readdir(`/proc/${child.pid}/task`);
  t.ok(tasks.length > 1, `several threads (${tasks.length})`);
  for (const task of tasks) t.match(await readFile(`/proc/${child.pid}/task/${task}/status`, 'utf8'), /^NoNewPrivs:\s+1$/m, `thread ${task}: NoNewPrivs 1`);
  t.match(out, /no_new_privs on every thread, not dumpable/);
  // Not dumpable: another process of nobody's cannot read its memory-backed /proc files (ptrace access).
  // The peeker runs as nobody, so it must not need this checkout (a clone under /root or any 0700 directory):
  // cwd /, and `env -u` drops the NODE_OPTIONS that tap's process tracking puts back (it imports from the checkout).
  const peek = spawnSync('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, '-e', `try { require('fs').readFileSync('/proc/${child.pid}/environ'); console.log('read') } catch (e) { console.log(e.code) }`], { uid: nobodyUid, gid: nobodyGid, cwd: '/', env: { PATH: process.env.PATH }, encoding: 'utf8', timeout: 20_000 });
  t.equal(peek.stdout.trim(), 'EACCES', `nobody cannot read /proc/PID/environ of the responder (${peek.stderr.trim() || 'no stderr'})`);
  // Signals from the same uid cannot be prevented: the responder says so, naming the way out.
  t.match(out, /\d+ other process(?:es)? run as nobody \(uid \d+\): they \(and any started later\) can signal the responder .* dedicated user: useradd --system/);
  const { report } = await labReport(lab, ['pair', 'node1', 'node2']);
  t.same(report.results.filter((r) => r.verdict !== 'pass').map((r) => `${r.check} ${r.from}->${r.to}: ${r.detail}`), [], 'still probes and witnesses');
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM -> exit 0');
});
