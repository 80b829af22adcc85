// `mesh --ssh` for real: an OpenSSH server in every node namespace (own host key, own client key, root
// login by key only, no PAM), the coordinator in the router namespace. It must copy the bundle, start
// the responders with a fresh secret, give the same verdicts as pre-started responders, report a node
// without sshd in plain words, and leave nothing running or copied behind — also after Ctrl-C and kill -9.
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { stringify as toYaml } from 'yaml';
import { LAUNCHER } from '../../src/lab/lab.js';
import { inNs, run } from '../../src/lab/sys.js';
import { createTopology, describeTopology, destroyTopology, uniquePrefix, type Topology } from '../../src/lab/topology.js';
import { parseReport } from '../../src/report/json.js';
import type { Report } from '../../src/types.js';
import { needsRoot, runIn, type CliRun } from '../helpers/lab.js';
import { waitOut } from '../helpers/wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SSHD = '/usr/sbin/sshd';
const skip = needsRoot || (!existsSync(SSHD) ? 'needs openssh-server (/usr/sbin/sshd)' : false);

interface SshLab {
  topo: Topology;
  dir: string;
  inventory: string;
  key: string;
  remoteDir: string;
  sshd: Map<string, ChildProcess>;
}

async function ensureBundle(): Promise<void> {
  // Always rebuild: the bundle must be the code under test.
  await run([process.execPath, join(ROOT, 'scripts', 'bundle.mjs')], { timeoutMs: 120_000 });
}

async function startSshd(lab: SshLab, node: Topology['nodes'][number]): Promise<ChildProcess> {
  const cfg = join(lab.dir, `sshd-${node.name}.conf`);
  await writeFile(
    cfg,
    [
      `ListenAddress ${node.address}`,
      'Port 22',
      `HostKey ${join(lab.dir, 'host_key')}`,
      `PidFile ${join(lab.dir, `sshd-${node.name}.pid`)}`,
      `AuthorizedKeysFile ${join(lab.dir, 'authorized_keys')}`,
      // Root by key only, and only in this throw-away configuration.
      'PermitRootLogin prohibit-password',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  const child = spawn('ip', ['netns', 'exec', node.ns, SSHD, '-D', '-e', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  // Ready when the port accepts connections from the router namespace.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await run(inNs(lab.topo.router, ['bash', '-c', `exec 3<>/dev/tcp/${node.address}/22`]), { allowFail: true });
    if (r.code === 0) break;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`sshd on ${node.name} did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  lab.sshd.set(node.name, child);
  return child;
}

function stopSshd(lab: SshLab, name: string): void {
  const c = lab.sshd.get(name);
  if (c?.pid && c.exitCode === null) c.kill('SIGKILL');
  lab.sshd.delete(name);
}

async function makeSshLab(t: Test, nodes = 3): Promise<SshLab> {
  const topo = describeTopology(uniquePrefix('cns'), nodes);
  const dir = await mkdtemp(join(tmpdir(), 'cnt-ssh-'));
  const lab: SshLab = { topo, dir, inventory: join(dir, 'inventory.yaml'), key: join(dir, 'client_key'), remoteDir: join(dir, 'remote'), sshd: new Map() };
  const madeRunSshd = !existsSync('/run/sshd');
  t.teardown(async () => {
    for (const name of [...lab.sshd.keys()]) stopSshd(lab, name);
    await destroyTopology(topo);
    await rm(dir, { recursive: true, force: true });
    if (madeRunSshd) await rmdir('/run/sshd').catch(() => undefined);
  });
  if (madeRunSshd) await mkdir('/run/sshd', { mode: 0o755 });
  await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
  await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', lab.key]);
  await run(['cp', `${lab.key}.pub`, join(dir, 'authorized_keys')]);
  await createTopology(topo);
  const roles = (i: number) => (i === 0 ? ['apiserver', 'etcd'] : i === 1 ? ['typha'] : []);
  await writeFile(lab.inventory, toYaml({ nodes: topo.nodes.map((n, i) => ({ name: n.name, address: n.address, ...(roles(i).length ? { roles: roles(i) } : {}) })) }));
  for (const n of topo.nodes) await startSshd(lab, n);
  return lab;
}

function sshArgs(lab: SshLab): string[] {
  return [
    '--ssh',
    '--ssh-user', 'root',
    '--ssh-key', lab.key,
    '--ssh-option', 'StrictHostKeyChecking=accept-new',
    '--ssh-option', `UserKnownHostsFile=${join(lab.dir, 'known_hosts')}`,
    '--ssh-dir', lab.remoteDir,
  ];
}

async function coordinator(lab: SshLab, args: string[]): Promise<{ run: CliRun; report: Report }> {
  const r = await runIn(inNs(lab.topo.router, [process.execPath, LAUNCHER, ...args, '--format', 'json']), 180_000);
  let report: Report;
  try {
    report = parseReport(r.stdout, 'stdout');
  } catch (err) {
    throw new Error(`no JSON report (exit ${r.code}): ${(err as Error).message}\nstderr: ${r.stderr}`);
  }
  return { run: r, report };
}

/** Every pid in the lab's node namespaces that is not an sshd listener: must be none after a run. */
async function leftovers(lab: SshLab, waitMs = 8000): Promise<string[]> {
  const listeners = new Set([...lab.sshd.values()].map((c) => c.pid));
  const deadline = Date.now() + waitMs;
  for (;;) {
    const out: string[] = [];
    for (const n of lab.topo.nodes) {
      const { stdout } = await run(['ip', 'netns', 'pids', n.ns], { allowFail: true });
      for (const pid of stdout.split(/\s+/).filter(Boolean).map(Number)) {
        if (listeners.has(pid)) continue;
        const { stdout: cmd } = await run(['ps', '-o', 'args=', '-p', String(pid)], { allowFail: true });
        if (cmd.trim()) out.push(`${n.name}: ${pid} ${cmd.trim()}`);
      }
    }
    if (out.length === 0 || Date.now() > deadline) return out;
    await new Promise((r) => setTimeout(r, 200));
  }
}

const remoteContents = async (lab: SshLab) => (existsSync(lab.remoteDir) ? readdir(lab.remoteDir) : []);
const key = (r: Report['results'][number]) => `${r.check} ${r.from}->${r.to}`;

t.test('mesh --ssh: copies the build, starts responders, matches pre-started responders, leaves nothing', { skip }, async (t) => {
  await ensureBundle();
  const lab = await makeSshLab(t, 3);

  const { run: r, report } = await coordinator(lab, ['mesh', '--inventory', lab.inventory, ...sshArgs(lab)]);
  t.equal(r.code, 0, `exit 0\n${r.stderr}`);
  t.match(r.stderr, /starting responders over SSH on 3 nodes/);
  t.same(report.results.filter((x) => x.verdict !== 'pass').map((x) => `${key(x)} ${x.cause}: ${x.detail}`), [], 'every flow passes');
  t.ok(report.results.length >= 3 * 2 * 4, `plenty of flows (${report.results.length})`);
  t.same(await leftovers(lab), [], 'nothing left running in the node namespaces');
  t.same(await remoteContents(lab), [], 'the copied build is removed');

  // The same mesh against responders started by hand (the normal build, a secret file): same verdicts.
  const secret = join(lab.dir, 'secret');
  await writeFile(secret, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  const manual: ChildProcess[] = [];
  t.teardown(() => manual.forEach((c) => c.exitCode === null && c.kill('SIGKILL')));
  for (const n of lab.topo.nodes) {
    const c = spawn('ip', ['netns', 'exec', n.ns, process.execPath, LAUNCHER, 'responder', '--listen', n.address, '--secret-file', secret, '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    manual.push(c);
    await new Promise<void>((resolve, reject) => {
      let out = '';
      c.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('"event":"start"')) resolve();
      });
      c.on('exit', (code) => reject(new Error(`responder on ${n.name} exited ${code}`)));
    });
    c.stdout!.resume();
  }
  const { report: direct } = await coordinator(lab, ['mesh', '--inventory', lab.inventory, '--secret-file', secret]);
  for (const c of manual) c.kill('SIGTERM');
  const shape = (rep: Report) => rep.results.map((x) => `${key(x)} ${x.verdict} ${x.cause}`).sort();
  t.same(shape(report), shape(direct), 'the same flows and verdicts as with pre-started responders');
  t.same(report.nodes, direct.nodes);
});

t.test('mesh --ssh with sshd down on one node: its flows are unknown in plain words, the rest passes', { skip }, async (t) => {
  await ensureBundle();
  const lab = await makeSshLab(t, 3);
  stopSshd(lab, 'node3');
  const { run: r, report } = await coordinator(lab, ['mesh', '--inventory', lab.inventory, '--checks', 'bgp,ipip', ...sshArgs(lab)]);
  t.equal(r.code, 1, `exit 1\n${r.stderr}`);
  t.match(r.stderr, /node3: nothing accepts SSH connections at 198\.18\.3\.2:22 \(connection refused\): is sshd running there\?/);
  for (const x of report.results) {
    if (x.to === 'node3') {
      // Judged from the sender's side (issue 11): node3's kernel answered (a reset; protocol unreachable, as
      // this kernel has no ipip module); the detail still says why node3 had no responder.
      t.equal(x.verdict, 'pass', `${key(x)} judged from the sender's side`);
      t.match(x.detail, /only node\d's side judges.*No responder on node3 for this run: nothing accepts SSH connections/);
      t.match(x.facts, { responder: 'node3', errorKind: 'no-responder' });
    } else if (x.from === 'node3') {
      t.equal(x.verdict, 'unknown', `${key(x)} unknown`);
      t.match(x.detail, /no responder on node3 for this run: nothing accepts SSH connections/);
    } else t.equal(x.verdict, 'pass', `${key(x)} passes`);
  }
  // The diagnosis is made after the flows say why: it says the same, not "not reachable".
  const unknown = report.results.filter((x) => x.verdict === 'unknown').length;
  t.equal(unknown, 4, "node3's own flows");
  t.same((report.diagnosis ?? []).map((d) => d.text), [`node3: no responder for this run (${unknown} flows unknown)`]);
  t.match(report.diagnosis?.[0]?.advice, /for this run: nothing accepts SSH connections at 198\.18\.3\.2:22/);
  t.same(await leftovers(lab), [], 'nothing left running');
  t.same(await remoteContents(lab), [], 'the copied build is removed');
});

t.test('a node that already holds the same build keeps it; a wrong user is refused in plain words', { skip }, async (t) => {
  await ensureBundle();
  const lab = await makeSshLab(t, 2);
  // Pre-install the exact build where --ssh looks for it: nothing is copied, and it stays.
  const { stdout } = await run([process.execPath, '--input-type=module', '-e', `import { locateBundle } from ${JSON.stringify(join(ROOT, 'dist', 'remote', 'bundle.js'))}; console.log((await locateBundle()).id)`]);
  const id = stdout.trim().slice(0, 16);
  const pre = join(lab.remoteDir, id);
  await mkdir(pre, { recursive: true });
  await run(['cp', join(ROOT, 'bundle', 'calico-nettest.mjs'), join(ROOT, 'bundle', 'calico_nettest.node'), pre]);
  const { run: r } = await coordinator(lab, ['pair', 'node1', 'node2', '--inventory', lab.inventory, '--checks', 'bgp', ...sshArgs(lab)]);
  t.equal(r.code, 0, r.stderr);
  t.same((await readdir(pre)).sort(), ['calico-nettest.mjs', 'calico_nettest.node'], 'the node\'s own copy is left alone');

  const bad = await runIn(inNs(lab.topo.router, [process.execPath, LAUNCHER, 'pair', 'node1', 'node2', '--inventory', lab.inventory, '--checks', 'bgp', ...sshArgs(lab), '--ssh-user', 'nobody']), 120_000);
  t.equal(bad.code, 3, 'no responder reachable: exit 3');
  t.match(bad.stderr, /node1: SSH refused the login as nobody at 198\.18\.1\.2:22 \(the key was not accepted\)/);
  t.same(await leftovers(lab), [], 'nothing left running');
});

for (const sig of ['SIGINT', 'SIGKILL'] as const) {
  t.test(`${sig} to the coordinator mid-run: nothing left running on any node`, { skip }, async (t) => {
    await ensureBundle();
    const lab = await makeSshLab(t, 2);
    // node2 drops IP-in-IP: those flows wait out 10 tries x 3 s, so the run is still going when the signal
    // comes, however fast the rest passes (the rule goes with the namespace).
    await run(inNs(lab.topo.nodes[1]!.ns, ['iptables', '-A', 'INPUT', '-p', '4', '-j', 'DROP']));
    const child = spawn('ip', ['netns', 'exec', lab.topo.router, process.execPath, LAUNCHER, 'mesh', '--inventory', lab.inventory, ...sshArgs(lab), '--tries', '10', '--timeout', '3000', '--min-timeout', '3000'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    t.teardown(() => (child.exitCode === null ? void child.kill('SIGKILL') : undefined));
    let err = '';
    child.stdout!.resume();
    // Wait until both responders run (a witnessing responder process exists in each namespace).
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const deadline = Date.now() + 60_000;
    for (;;) {
      const counts = await Promise.all(
        lab.topo.nodes.map(async (n) => {
          const { stdout } = await run(['ip', 'netns', 'pids', n.ns], { allowFail: true });
          let found = 0;
          for (const pid of stdout.split(/\s+/).filter(Boolean)) {
            const { stdout: cmd } = await run(['ps', '-o', 'args=', '-p', pid], { allowFail: true });
            if (/calico-nettest\.mjs responder/.test(cmd)) found++;
          }
          return found;
        }),
      );
      if (counts.every((c) => c > 0)) break;
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`responders never ran: ${err}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await waitOut(500, 'the run gets under way before the signal');
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    child.kill(sig);
    const code = await exited;
    if (sig === 'SIGINT') t.equal(code, 130, `interrupted: exit 130\n${err}`);
    t.same(await leftovers(lab, 15_000), [], 'nothing left running in the node namespaces');
    t.same(await remoteContents(lab), [], 'the copied build is removed');
  });
}
