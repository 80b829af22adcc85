// Starting responders on the nodes over SSH with the system OpenSSH client (it honours ~/.ssh/config,
// the agent, known_hosts and ProxyJump). Per node: check it (Node.js ≥ 20, root or sudo, the build's
// hash), copy the bundle if it lacks it, and run the responder in the foreground of an SSH session
// that removes everything when its stdin closes — which happens on stop(), and also when this process
// dies, because the session's stdin is a pipe from us. See: ssh(1), ssh_config(5).
import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { LocatedBundle } from './bundle.js';
import { EXIT, UserError } from '../errors.js';

export interface SshSettings {
  user?: string;
  key?: string;
  port?: number;
  /** Extra `-o` options, e.g. StrictHostKeyChecking=accept-new. */
  options?: string[];
  connectTimeoutSec?: number;
  /** Directory on the node that holds the build (must not be mounted noexec: the addon is mapped executable). */
  remoteDir?: string;
  /** The ssh program (tests and odd installs). */
  sshPath?: string;
}

export const DEFAULT_REMOTE_DIR = '/var/tmp/calico-nettest';
export const MIN_NODE_MAJOR = 20;
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 8_000;

/** A node to start a responder on. */
export interface SshTarget {
  name: string;
  /** Where SSH connects (the node's control host). */
  host: string;
  /** The responder's --listen address. */
  address: string;
  controlPort: number;
}

export interface RemoteResponder {
  node: string;
  /** Stop the responder and remove what was copied; resolves when the session ended. Never rejects. */
  stop(): Promise<void>;
}

/** A failure that belongs to one node, in words for the report. */
export class NodeStartError extends UserError {
  constructor(
    readonly node: string,
    message: string,
  ) {
    super(message, EXIT.cannotRun);
    this.name = 'NodeStartError';
  }
}

/** Quote one word for a POSIX shell. */
export function shQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The ssh argv (options, destination, remote command) for one command on `host`. */
export function sshArgv(s: SshSettings, host: string, remoteCommand: string): string[] {
  const argv = [
    s.sshPath ?? 'ssh',
    '-T',
    '-o', 'BatchMode=yes',
    '-o', `ConnectTimeout=${s.connectTimeoutSec ?? 10}`,
    // A dead path ends the session (and so the responder) within ~30 s instead of TCP's hours.
    '-o', 'ServerAliveInterval=10',
    '-o', 'ServerAliveCountMax=3',
    '-o', 'LogLevel=ERROR',
  ];
  if (s.port) argv.push('-p', String(s.port));
  if (s.user) argv.push('-l', s.user);
  if (s.key) argv.push('-i', s.key, '-o', 'IdentitiesOnly=yes');
  for (const o of s.options ?? []) argv.push('-o', o);
  argv.push('--', host, remoteCommand);
  return argv;
}

/** `sh -c SCRIPT name ARGS...` as one remote command line (ssh joins its words with spaces). */
function remoteSh(script: string, args: readonly string[], sudo: boolean): string {
  return [...(sudo ? ['sudo', '-n'] : []), 'sh', '-c', shQuote(script), 'calico-nettest', ...args.map(shQuote)].join(' ');
}

// ---- what the node says about itself ------------------------------------------------------------

const PREFLIGHT = `
echo "uid=$(id -u)"
echo "user=$(id -un 2>/dev/null)"
echo "arch=$(uname -m)"
n=$(command -v node 2>/dev/null)
if [ -z "$n" ]; then for p in /usr/local/bin/node /usr/bin/node /opt/nodejs/bin/node; do if [ -x "$p" ]; then n=$p; break; fi; done; fi
echo "node=$n"
if [ -n "$n" ]; then echo "nodeversion=$("$n" --version 2>/dev/null)"; fi
if [ "$(id -u)" != 0 ]; then if sudo -n true 2>/dev/null; then echo sudo=1; else echo sudo=0; fi; fi
if command -v sha256sum >/dev/null 2>&1 && [ -d "$1" ]; then (cd "$1" && sha256sum $2 2>/dev/null) | sed 's/^/sum=/'; fi
echo end=1
`;

export interface NodeFacts {
  uid: number;
  user: string;
  arch: string;
  node: string;
  nodeVersion: string;
  sudo: boolean;
  /** file name -> sha256 of what the node already holds in the build's directory. */
  sums: Map<string, string>;
}

export function parseFacts(stdout: string): NodeFacts | null {
  const kv = new Map<string, string>();
  const sums = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const m = /^([a-z]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    if (m[1] === 'sum') {
      const s = /^([0-9a-f]{64})\s+\*?(.+)$/.exec(m[2]!);
      if (s) sums.set(s[2]!, s[1]!);
    } else kv.set(m[1]!, m[2]!);
  }
  if (!kv.has('end') || !kv.has('uid')) return null;
  return {
    uid: Number(kv.get('uid')),
    user: kv.get('user') ?? '',
    arch: kv.get('arch') ?? '',
    node: kv.get('node') ?? '',
    nodeVersion: kv.get('nodeversion') ?? '',
    sudo: kv.get('sudo') === '1',
    sums,
  };
}

/** uname -m for this process's architecture: the addon only runs on the same one. */
export function unameMachine(arch: string = process.arch): string {
  return ({ x64: 'x86_64', arm64: 'aarch64', arm: 'armv7l', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[arch] ?? arch;
}

/** Why this node cannot run the bundle, in plain words, or null. */
export function factsProblem(f: NodeFacts, localMachine: string = unameMachine()): string | null {
  if (!f.node) return `Node.js is not installed (no \`node\` on PATH or in /usr/local/bin, /usr/bin); the responder needs Node.js ${MIN_NODE_MAJOR} or newer`;
  const major = Number(/^v?(\d+)\./.exec(f.nodeVersion)?.[1] ?? NaN);
  if (!(major >= MIN_NODE_MAJOR)) return `Node.js ${f.nodeVersion || '(unknown version)'} at ${f.node} is too old; the responder needs Node.js ${MIN_NODE_MAJOR} or newer`;
  if (f.uid !== 0 && !f.sudo) return `logged in as ${f.user || `uid ${f.uid}`}, which is not root and cannot sudo without a password; the responder needs root (raw sockets): use --ssh-user root, or allow passwordless sudo`;
  if (f.arch && f.arch !== localMachine && !(f.arch === 'arm64' && localMachine === 'aarch64')) {
    return `the node is ${f.arch}, but the bundled native addon was built for ${localMachine}; build the bundle on a ${f.arch} machine`;
  }
  return null;
}

/** An ssh failure (exit 255, or a remote error) in plain words. */
export function explainSshFailure(stderr: string, code: number | null, where: { host: string; port?: number; user?: string }): string {
  const at = `${where.host}:${where.port ?? 22}`;
  const s = stderr;
  const line = lastLines(stderr, 3);
  if (/No route to host/i.test(s)) return `no route to ${at} (SSH): the node is down or unreachable from here`;
  if (/Connection refused/i.test(s)) return `nothing accepts SSH connections at ${at} (connection refused): is sshd running there?`;
  if (/Connection timed out|Operation timed out|timed out during banner exchange/i.test(s)) return `SSH to ${at} timed out: the node is down, or a firewall drops port ${where.port ?? 22}`;
  if (/Could not resolve hostname/i.test(s)) return `cannot resolve the host name ${where.host}`;
  if (/Permission denied/i.test(s)) {
    return `SSH refused the login${where.user ? ` as ${where.user}` : ''} at ${at} (${/publickey/.test(s) ? 'the key was not accepted' : 'authentication failed'}): check --ssh-user, --ssh-key or your ssh-agent, and the node's authorized_keys`;
  }
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No .*host key is known/i.test(s)) {
    return `the host key of ${at} is not in your known_hosts (or it changed): connect once with ssh to accept it, or pass --ssh-option StrictHostKeyChecking=accept-new`;
  }
  if (/Connection closed|Connection reset|kex_exchange_identification/i.test(s)) return `the SSH connection to ${at} was closed by the node (${line || 'no message'})`;
  if (/failed to map segment|operation not permitted.*\.node/i.test(s)) return `the node cannot map the native addon from the build directory (mounted noexec?): choose another with --ssh-dir (${line})`;
  if (/sudo: .*password/i.test(s)) return `sudo on the node asks for a password; allow passwordless sudo or use --ssh-user root`;
  return `${code === 255 ? 'SSH failed' : `remote command failed (exit ${code ?? 'signal'})`} at ${at}${line ? `: ${line}` : ''}`;
}

function lastLines(text: string, n: number): string {
  return text.trim().split('\n').map((l) => l.trim()).filter(Boolean).slice(-n).join(' | ');
}

// ---- running ssh ----------------------------------------------------------------------------------

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run one ssh command to completion, feeding `input` (a file path streamed, or text). */
function runSsh(argv: string[], input: { file?: string; text?: string }, signal: AbortSignal | undefined, timeoutMs: number): Promise<Finished> {
  return new Promise((resolve) => {
    // Own process group: the user's Ctrl-C must not kill the session before we clean up on the node.
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString('utf8')).slice(-16384)));
    child.stdin.on('error', () => undefined);
    const kill = () => {
      try {
        child.kill('SIGTERM');
      } catch {
        /* gone */
      }
    };
    const timer = setTimeout(() => {
      stderr += `\n(no answer within ${Math.round(timeoutMs / 1000)} s: Connection timed out)`;
      kill();
    }, timeoutMs);
    signal?.addEventListener('abort', kill, { once: true });
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: `${stderr}\n${(err as NodeJS.ErrnoException).code === 'ENOENT' ? `${argv[0]}: not found (install the OpenSSH client)` : err.message}` });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', kill);
      resolve({ code, stdout, stderr });
    });
    if (input.file) createReadStream(input.file).on('error', () => child.stdin.destroy()).pipe(child.stdin);
    else child.stdin.end(input.text ?? '');
  });
}

export interface StartOptions {
  ssh: SshSettings;
  bundle: LocatedBundle;
  /** A fresh secret for this run; sent over the session's stdin, never on a command line. */
  secret: Buffer;
  signal?: AbortSignal;
  onStep?: (node: string, step: string) => void;
}

/** Start a responder on `t`. Throws NodeStartError with plain words; on failure nothing is left on the node. */
export async function startRemoteResponder(t: SshTarget, o: StartOptions): Promise<RemoteResponder> {
  const where = { host: t.host, port: o.ssh.port, user: o.ssh.user };
  const fail = (msg: string) => new NodeStartError(t.name, msg);
  const dir = `${(o.ssh.remoteDir ?? DEFAULT_REMOTE_DIR).replace(/\/+$/, '')}/${o.bundle.id.slice(0, 16)}`;
  const names = o.bundle.files.map((f) => f.name);

  // (1) what the node is.
  o.onStep?.(t.name, 'checking');
  const pre = await runSsh(sshArgv(o.ssh, t.host, remoteSh(PREFLIGHT, [dir, names.join(' ')], false)), {}, o.signal, ((o.ssh.connectTimeoutSec ?? 10) + 20) * 1000);
  if (o.signal?.aborted) throw fail('interrupted');
  const facts = parseFacts(pre.stdout);
  if (pre.code !== 0 || !facts) throw fail(explainSshFailure(pre.stderr, pre.code, where));
  const problem = factsProblem(facts);
  if (problem) throw fail(problem);
  const sudo = facts.uid !== 0;

  // (2) the build, unless the node holds exactly this one already.
  const missing = o.bundle.files.filter((f) => facts.sums.get(f.name) !== f.sha256);
  const copied = missing.length > 0;
  if (copied) {
    o.onStep?.(t.name, 'copying the build');
    const tag = randomBytes(4).toString('hex');
    for (const f of missing) {
      const script = 'umask 022; mkdir -p "$1" && cat > "$1/$2.part-$3" && mv -f "$1/$2.part-$3" "$1/$2" || { rm -f "$1/$2.part-$3"; exit 1; }';
      const r = await runSsh(sshArgv(o.ssh, t.host, remoteSh(script, [dir, f.name, tag], sudo)), { file: f.path }, o.signal, 10 * 60_000);
      if (r.code !== 0 || o.signal?.aborted) {
        await runSsh(sshArgv(o.ssh, t.host, remoteSh('rm -rf "$1"', [dir], sudo)), {}, undefined, 30_000);
        throw fail(o.signal?.aborted ? 'interrupted' : `copying the build to ${dir} failed: ${explainSshFailure(r.stderr, r.code, where)}`);
      }
    }
  }

  // (3) the responder, in a session that cleans up when its stdin closes.
  o.onStep?.(t.name, 'starting the responder');
  const args = [dir, facts.node, copied ? '1' : '0', '--listen', t.address, '--control-port', String(t.controlPort), '--log-format', 'json'];
  const child = spawn(...splitArgv(sshArgv(o.ssh, t.host, remoteSh(SESSION, args, sudo))), { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  return await new Promise<RemoteResponder>((resolve, reject) => {
    let stderr = '';
    let buf = '';
    let ready = false;
    let exited = false;
    const exitedP = new Promise<void>((r) => child.on('close', () => r()));
    child.stdin.on('error', () => undefined);
    // The secret's only way to the node: the session's stdin, into a 0600 file (never argv or env).
    child.stdin.write(Buffer.concat([o.secret, Buffer.from('\n')]));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString('utf8')).slice(-16384)));
    // Keep reading: the responder logs every witnessed probe, and a full pipe would stall it.
    child.stdout.on('data', (d: Buffer) => {
      if (ready) return;
      buf += d.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (/"event":"start"/.test(line)) {
          ready = true;
          clearTimeout(timer);
          o.signal?.removeEventListener('abort', onAbort);
          resolve({ node: t.name, stop });
          return;
        }
      }
      if (buf.length > 65536) buf = buf.slice(-4096);
    });
    const stop = async (): Promise<void> => {
      if (exited) return;
      child.stdin.end();
      if (await within(exitedP, STOP_TIMEOUT_MS)) return;
      // The node did not answer: ending the session makes sshd close the script's stdin all the same.
      signalChild(child, 'SIGTERM');
      if (await within(exitedP, 2000)) return;
      signalChild(child, 'SIGKILL');
      await within(exitedP, 2000);
    };
    const onAbort = () => {
      clearTimeout(timer);
      void stop().then(() => reject(fail('interrupted')));
    };
    const timer = setTimeout(() => {
      o.signal?.removeEventListener('abort', onAbort);
      void stop().then(() => reject(fail(`the responder did not start within ${START_TIMEOUT_MS / 1000} s${stderr.trim() ? `: ${lastLines(stderr, 3)}` : ''}`)));
    }, START_TIMEOUT_MS);
    o.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(fail(`cannot run ssh: ${err.message}`));
    });
    child.on('close', (code) => {
      exited = true;
      if (ready) return;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      reject(fail(responderFailure(stderr, code, where)));
    });
  });
}

/** Why the session ended before the responder said it started. */
function responderFailure(stderr: string, code: number | null, where: { host: string; port?: number; user?: string }): string {
  if (code === 255) return explainSshFailure(stderr, code, where);
  const m = /calico-nettest: (.+)/.exec(stderr.split('\n').filter((l) => !l.startsWith('calico-nettest-ssh:')).join('\n'));
  if (/failed to map segment/i.test(stderr)) return explainSshFailure(stderr, code, where);
  if (m) return `the responder did not start: ${m[1]!.trim()}`;
  return `the responder did not start (exit ${code ?? 'signal'})${stderr.trim() ? `: ${lastLines(stderr, 3)}` : ''}`;
}

function splitArgv(argv: string[]): [string, string[]] {
  return [argv[0]!, argv.slice(1)];
}

function signalChild(child: ChildProcess, sig: NodeJS.Signals): void {
  try {
    child.kill(sig);
  } catch {
    /* gone */
  }
}

async function within(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
  const ok = await Promise.race([p.then(() => true), t]);
  clearTimeout(timer);
  return ok;
}

// The session, run as root on the node: $1 build directory, $2 node binary, $3 "1" when the build was
// copied for this run (removed at the end), the rest the responder's options. The first stdin line is
// the secret; then stdin stays open, and its end (our stop(), our death, or the SSH session ending)
// stops the responder and removes the secret and the copied build. The session also ends when the
// responder exits by itself, so a responder that cannot start is reported at once.
const SESSION = `
B=$1; N=$2; R=$3; shift 3
umask 077
d=$(mktemp -d "\${TMPDIR:-/tmp}/calico-nettest.XXXXXX") || { echo "calico-nettest: cannot create a temporary directory" >&2; exit 90; }
rmbuild() { if [ "$R" = 1 ]; then rm -rf "$B"; rmdir "\${B%/*}" 2>/dev/null; fi; return 0; }
IFS= read -r s || { rm -rf "$d"; rmbuild; exit 91; }
printf '%s\\n' "$s" > "$d/secret"; s=
exec 3<&0
cat <&3 >/dev/null &
c=$!
( CALICO_NETTEST_ADDON="$B/calico_nettest.node" "$N" "$B/calico-nettest.mjs" responder --secret-file "$d/secret" "$@" </dev/null &
  echo $! > "$d/pid"; wait $!; rc=$?; echo "calico-nettest-ssh: responder exited with status $rc" >&2; kill "$c" 2>/dev/null ) &
w=$!
stop() {
  trap '' HUP INT TERM PIPE
  kill "$c" 2>/dev/null
  i=0; while [ ! -s "$d/pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
  [ -s "$d/pid" ] && kill -TERM "$(cat "$d/pid")" 2>/dev/null
  wait "$w"
  rm -rf "$d"
  rmbuild
}
trap 'stop; exit 0' HUP INT TERM PIPE
wait "$c"
stop
`;
