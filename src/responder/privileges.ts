// Dropping the responder's privileges (--user): groups, gid, uid, then no_new_privs on every thread and
// not dumpable; and saying so when other processes share that user, since they can still signal it.
import { readdir, readFile } from 'node:fs/promises';
import type { NativeBinding, ProcessRestrictions } from '../native-types.js';
import { ConfigError } from '../secret.js';

/** A user's uid and primary gid from /etc/passwd (a name or a numeric uid). */
export async function lookupUser(name: string): Promise<{ uid: number; gid: number }> {
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f.length >= 4 && (f[0] === name || f[2] === name)) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  if (/^\d+$/.test(name)) return { uid: Number(name), gid: Number(name) };
  throw new ConfigError(`--user ${name}: no such user in /etc/passwd`);
}

/**
 * Other processes that may signal a process running as `uid` (kill(2): the sender's real or effective
 * uid equals the target's real or saved uid). Pids, from /proc; `self` left out.
 */
export async function processesOfUser(uid: number, self: number = process.pid, proc = '/proc'): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir(proc).catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry) || Number(entry) === self) continue;
    const status = await readFile(`${proc}/${entry}/status`, 'utf8').catch(() => '');
    const ids = /^Uid:\s+(\d+)\s+(\d+)/m.exec(status);
    if (ids && (Number(ids[1]) === uid || Number(ids[2]) === uid)) out.push(Number(entry));
  }
  return out;
}

export interface Dropped {
  uid: number;
  gid: number;
  /** null: the binding cannot (a fake one in tests). */
  restrictions: ProcessRestrictions | null;
  /** Other processes of that user when we dropped: each can signal the responder. */
  sharedWith: number[];
}

/**
 * Become `name` for good. Throws when the kernel refuses any step (a half-dropped responder must not
 * run). Call after every raw socket and privileged port is open.
 */
export async function dropPrivileges(name: string, native: NativeBinding): Promise<Dropped> {
  const u = await lookupUser(name);
  // Group first (setuid would take away the right to change it); supplementary groups too.
  process.setgroups?.([u.gid]);
  process.setgid?.(u.gid);
  process.setuid?.(u.uid);
  // After setuid: the kernel resets "dumpable" on a uid change, so PR_SET_DUMPABLE must come last.
  const restrictions = native.restrictProcess ? native.restrictProcess() : null;
  return { ...u, restrictions, sharedWith: await processesOfUser(u.uid) };
}

/** The start log lines for a drop (pure). */
export function describeDrop(name: string, d: Dropped): { info: string; warnings: string[] } {
  const r = d.restrictions;
  const locked = r
    ? `; no_new_privs ${r.allThreads ? 'on every thread' : 'on the main thread'}${r.dumpable ? '' : `, not dumpable (no ptrace or /proc access by other uid ${d.uid} processes)`}`
    : '';
  const warnings: string[] = [];
  if (r && !r.allThreads) warnings.push(`no_new_privs is set on the main thread only (${r.threadsError?.message ?? 'seccomp TSYNC unavailable'}); children the responder spawns are covered`);
  if (d.sharedWith.length > 0) {
    warnings.push(
      `${d.sharedWith.length} other process${d.sharedWith.length === 1 ? '' : 'es'} run as ${name} (uid ${d.uid}): ` +
        `they (and any started later) can signal the responder (SIGSTOP, SIGKILL cannot be blocked) — run it under a dedicated user: ` +
        'useradd --system --no-create-home --shell /usr/sbin/nologin calico-nettest; --user calico-nettest',
    );
  }
  return { info: `dropped privileges to ${name} (uid ${d.uid}, gid ${d.gid}); open sockets keep working${locked}`, warnings };
}
