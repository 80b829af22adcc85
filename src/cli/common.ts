// What every command shares: the error-to-message and error-to-exit-status mapping, output writing, run options.
import { Option, InvalidArgumentError, type Command } from 'commander';
import pc from 'picocolors';
import { checkList } from '../checks/catalogue.js';
import { DEFAULT_TIMEOUTS } from '../checks/rtt.js';
import { EXIT, UserError } from '../errors.js';
import { DEFAULT_CONTROL_PORT } from '../control/protocol.js';
import { DEFAULT_MAX_LOSS } from '../verdict-facts.js';
import { addRemoteOptions, type RemoteCliOptions } from './remote-options.js';

export { EXIT, UserError } from '../errors.js';

/** An error in how the command was called: its message is printed as is, with its exit status. */
export class CliError extends UserError {
  constructor(message: string, exitCode: number = EXIT.usage) {
    super(message, exitCode);
    this.name = 'CliError';
  }
}

/** Every error of our own is a UserError carrying its exit status; commander's are usage; anything else could not run. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof UserError) return err.exitCode;
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string' && code.startsWith('commander.')) return EXIT.usage;
  return EXIT.cannotRun;
}

export function messageFor(err: unknown): string {
  if (err instanceof UserError) return err.message;
  if (err instanceof Error) {
    // A system error (EACCES on a file, EADDRINUSE…) names the call and the path: it is for the user as is.
    if (typeof (err as { code?: unknown }).code === 'string' && typeof (err as { syscall?: unknown }).syscall === 'string') return err.message;
    return `${err.message}\n(this looks like a bug in calico-nettest; please report it with the command you ran)\n${err.stack ?? ''}`;
  }
  return String(err);
}

/** A percentage 0..100 (decimals allowed), e.g. --max-loss 5. */
export function parsePercentOption(name: string) {
  return (v: string): number => {
    if (!/^\d+(\.\d+)?%?$/.test(v.trim())) throw new InvalidArgumentError(`${name} must be a percentage such as 5 or 2.5`);
    const n = Number(v.trim().replace(/%$/, ''));
    if (n > 100) throw new InvalidArgumentError(`${name} must be between 0 and 100`);
    return n;
  };
}

export function parseIntOption(name: string, lo: number, hi: number) {
  return (v: string): number => {
    if (!/^\d+$/.test(v.trim())) throw new InvalidArgumentError(`${name} must be a whole number`);
    const n = Number(v);
    if (n < lo || n > hi) throw new InvalidArgumentError(`${name} must be between ${lo} and ${hi}`);
    return n;
  };
}

export const FORMATS = ['table', 'json', 'junit', 'html'] as const;
export type Format = (typeof FORMATS)[number];

/** Options of every command that runs probes (mesh, pair, verify). */
export function addRunOptions(cmd: Command): Command {
  cmd
    .addOption(new Option('-i, --inventory <file>', 'inventory (YAML or JSON): nodes, addresses, roles (required unless --kubernetes)').env('CALICO_NETTEST_INVENTORY'))
    .addOption(new Option('-s, --secret-file <file>', 'file holding the secret shared with the responders (not with --ssh: it makes its own)').env('CALICO_NETTEST_SECRET_FILE'))
    .addOption(new Option('-c, --checks <list>', `comma list of checks: ${checkList(',')} (default: the inventory's, else all)`).env('CALICO_NETTEST_CHECKS'))
    .addOption(new Option('-f, --format <format>', 'output format').choices(FORMATS).default('table'))
    .addOption(new Option('-o, --out <file>', 'also write the report to this file (format from --format, else from the extension; default JSON); - is stdout; devices and FIFOs are written in place; a file is replaced only by a complete report (exit 3 and the old file kept otherwise)'))
    .addOption(new Option('--control-port <n>', 'responders\' control port where the inventory gives none').argParser(parseIntOption('--control-port', 1, 65535)).default(DEFAULT_CONTROL_PORT))
    .addOption(new Option('--tries <n>', 'tries before a silent probe counts as blocked').argParser(parseIntOption('--tries', 1, 10)).default(3))
    .addOption(
      new Option('--max-loss <percent>', 'a path losing more than this share of its probes\' tries is "lossy" (fail); below it, flows pass with the loss counted (facts: lost, tries). A percentage: --max-loss 20 tolerates one try in five')
        .argParser(parsePercentOption('--max-loss'))
        .default(DEFAULT_MAX_LOSS * 100),
    )
    .addOption(new Option('--timeout <ms>', 'initial probe timeout; adapts to the measured RTT (srtt + 4·rttvar)').argParser(parseIntOption('--timeout', 10, 60000)).default(DEFAULT_TIMEOUTS.initialMs))
    .addOption(new Option('--min-timeout <ms>', 'lower clamp of the adaptive timeout').argParser(parseIntOption('--min-timeout', 1, 60000)).default(DEFAULT_TIMEOUTS.minMs))
    .addOption(new Option('--max-timeout <ms>', 'upper clamp of the adaptive timeout').argParser(parseIntOption('--max-timeout', 10, 60000)).default(DEFAULT_TIMEOUTS.maxMs))
    .addOption(new Option('--concurrency <n>', 'probes in flight at once per node').argParser(parseIntOption('--concurrency', 1, 4096)).default(64))
    .addOption(new Option('--explain', 'after the run, have each blamed host trace its failing flows\' probes and name the rule that dropped them (on by default for pair)'))
    .addOption(new Option('--no-explain', 'do not trace failing flows (pair traces them by default)'))
    .addOption(new Option('--no-color', 'no colours (also when NO_COLOR is set or output is not a terminal)'))
    .addOption(new Option('-q, --quiet', 'print nothing but errors (use the exit status and --out)'));
  return addRemoteOptions(cmd);
}

export interface RunCliOptions extends RemoteCliOptions {
  /** Checked by prepareRemote: required unless --kubernetes. */
  inventory?: string;
  /** Checked by prepareRemote: required unless --ssh. */
  secretFile?: string;
  checks?: string;
  format: Format;
  out?: string;
  controlPort: number;
  tries: number;
  /** Percent. */
  maxLoss: number;
  timeout: number;
  minTimeout: number;
  maxTimeout: number;
  concurrency: number;
  /** mesh only: responders driven at once. */
  parallelNodes?: number;
  color: boolean;
  quiet?: boolean;
  /** --explain / --no-explain; undefined: the command's default. */
  explain?: boolean;
  /** mesh: --no-preflight makes it false (skip each node's preflight). */
  preflight?: boolean;
}

export function useColor(stream: NodeJS.WriteStream, flag: boolean): boolean {
  return flag && !process.env.NO_COLOR && stream.isTTY === true;
}

export const bold = (s: string, on: boolean) => (on ? pc.bold(s) : s);
