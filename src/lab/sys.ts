// Running system commands (ip, iptables, ...) with errors that say which command failed and why.
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

export class CommandError extends Error {
  readonly argv: readonly string[];
  readonly exitCode: number | null;
  readonly stderr: string;
  constructor(argv: readonly string[], exitCode: number | null, stderr: string) {
    super(`command failed (exit ${exitCode ?? 'signal'}): ${argv.join(' ')}${stderr.trim() ? `\n  ${stderr.trim()}` : ''}`);
    this.name = 'CommandError';
    this.argv = argv;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Run a command to completion. Rejects with CommandError on a non-zero exit unless `allowFail`. */
export function run(
  argv: readonly string[],
  opts: { allowFail?: boolean; timeoutMs?: number; input?: string } = {},
): Promise<RunResult> {
  const [cmd, ...args] = argv;
  if (!cmd) return Promise.reject(new TypeError('run: empty argv'));
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
        if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
          reject(new CommandError(argv, null, `${cmd}: not found`));
          return;
        }
        if (code !== 0 && !opts.allowFail) reject(new CommandError(argv, code, stderr));
        else resolve({ stdout, stderr, code });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** argv that runs `argv` inside network namespace `ns`. */
export function inNs(ns: string, argv: readonly string[]): string[] {
  return ['ip', 'netns', 'exec', ns, ...argv];
}

/** Start a long-running process (not awaited). */
export function start(argv: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  const [cmd, ...args] = argv;
  if (!cmd) throw new TypeError('start: empty argv');
  return spawn(cmd, args, opts);
}

/** Full path of an executable on PATH (plus the sbin directories root tools live in), or null. */
export async function which(cmd: string): Promise<string | null> {
  const dirs = new Set([...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/bin', '/bin']);
  for (const dir of dirs) {
    if (!dir) continue;
    const p = join(dir, cmd);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

export const isRoot = (): boolean => process.getuid?.() === 0;

/**
 * Whether process `pid` is still running. A zombie has ended, but `kill(pid, 0)` succeeds on it, and where
 * PID 1 does not reap (many containers) an ended responder stays a zombie: so the state in /proc decides.
 */
export function isRunning(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX] /s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
