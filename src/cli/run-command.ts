// The shared body of mesh, pair and verify: load and validate everything first (exit 2, nothing run),
// run the plan with progress on stderr, write the report (atomically, or in place for devices), and map the outcome to an exit status.
import { setMaxListeners } from 'node:events';
import { totalmem } from 'node:os';
import { extname } from 'node:path';
import { getHeapStatistics } from 'node:v8';
import cliProgress from 'cli-progress';
import { parseCheckList } from '../checks/catalogue.js';
import { loadInventory, type Inventory } from '../coordinator/inventory.js';
import { checkRunMemory } from '../coordinator/budget.js';
import { countFlows, type Plan } from '../coordinator/plan.js';
import { runPlan } from '../coordinator/run.js';
import { explainReport } from '../explain/coordinator.js';
import { ReportWriteError, reportChunks, withDiagnosis, writeChunks, writeReportFile } from '../report/write.js';
import { labNamespaceProblem } from '../lab/lab.js';
import { loadSecret } from '../secret.js';
import type { CheckId, Report } from '../types.js';
import { CliError, EXIT, useColor, type Format, type RunCliOptions } from './common.js';
import { progressFormat } from './eta.js';
import { explainNodeErrors, prepareRemote, type PreparedRemote } from '../remote/prepare.js';
import { addPreflight } from '../preflight/gather.js';
import { interruptibleStep } from './interruptible.js';

export interface RunCommandHooks {
  command: 'mesh' | 'pair' | 'verify';
  plan: (inv: Inventory, checks: CheckId[] | undefined) => Plan;
  /** Last step before output (verify: compare with the baseline). */
  post?: (report: Report) => Report;
  /** Exit status for a finished report (verify has its own rule). */
  exitCode?: (report: Report) => number;
  /** Lines printed before the report (verify: what changed). */
  /** Whether --explain is on when neither --explain nor --no-explain is given (pair: yes). */
  explainByDefault?: boolean;
  /** Ask every node's responder for its preflight findings after the run (mesh; --no-preflight skips). */
  preflight?: boolean;
}

function formatForFile(file: string, format: Format): Format {
  if (format !== 'table') return format;
  switch (extname(file).toLowerCase()) {
    case '.xml':
      return 'junit';
    case '.html':
    case '.htm':
      return 'html';
    case '.txt':
      return 'table';
    default:
      return 'json';
  }
}

export async function executeRun(opts: RunCliOptions, hooks: RunCommandHooks): Promise<number> {
  const checks = opts.checks !== undefined ? parseCheckListOrThrow(opts.checks) : undefined;
  if (opts.minTimeout > opts.maxTimeout) throw new CliError(`--min-timeout (${opts.minTimeout}) is larger than --max-timeout (${opts.maxTimeout})`);
  const makePlan = (inv: Inventory): Plan => {
    // Before a single flow object exists: a mesh too large for this process is refused now (exit 3).
    if (hooks.command !== 'pair') {
      const mem = checkRunMemory({ nodes: inv.nodes.length, flows: countFlows(inv, { checks }), command: hooks.command }, { heapLimit: getHeapStatistics().heap_size_limit, totalMem: totalmem() });
      if (!mem.fits) throw new CliError(mem.message!, EXIT.cannotRun);
    }
    const plan = hooks.plan(inv, checks);
    if (plan.flows.length === 0) throw new CliError(`nothing to test: the plan has no flows (checks: ${plan.checks.join(', ') || 'none'})${plan.notes.length ? `\n${plan.notes.join('\n')}` : ''}`);
    return plan;
  };
  // --kubernetes discovers the inventory, --ssh starts responders for this run: stopped in the finally.
  const remote = await prepareRemote(opts, opts.inventory, opts.controlPort, { plan: makePlan, log: (l) => opts.quiet || process.stderr.write(`${l}\n`) });
  try {
    return await executePlan(opts, hooks, remote, makePlan);
  } finally {
    await remote.cleanup();
  }
}

async function executePlan(opts: RunCliOptions, hooks: RunCommandHooks, remote: PreparedRemote, makePlan: (inv: Inventory) => Plan): Promise<number> {
  if (!remote.inventory && opts.inventory) {
    const problem = await labNamespaceProblem(opts.inventory);
    if (problem) throw new CliError(problem);
  }
  const inv = remote.inventory ?? (await loadInventory(opts.inventory!, { controlPort: opts.controlPort }));
  const plan = remote.plan ?? makePlan(inv);
  const secret = remote.secret ?? (await loadSecret(opts.secretFile!));

  const stderr = process.stderr;
  if (!opts.quiet) for (const n of plan.notes) stderr.write(`note: ${n}\n`);
  const ac = new AbortController();
  // Every responder's requests listen on this one signal: dozens of nodes are normal, not a leak.
  setMaxListeners(0, ac.signal);
  const onSigint = () => {
    if (ac.signal.aborted) return;
    stderr.write('\ninterrupted: finishing the probes in flight and writing a partial report (Ctrl-C again to quit at once)\n');
    ac.abort();
    process.once('SIGINT', () => process.exit(EXIT.interrupted));
  };
  process.once('SIGINT', onSigint);
  process.once('SIGTERM', onSigint);

  const bar =
    stderr.isTTY && !opts.quiet
      ? new cliProgress.SingleBar(
          {
            // Time left from the whole run's rate, asked at every redraw (src/cli/eta.ts says why).
            format: progressFormat(`${hooks.command} [{bar}] {value}/{total} flows | {failed} failing | {left} left`),
            hideCursor: true,
            clearOnComplete: true,
            stream: stderr,
          },
          cliProgress.Presets.shades_classic,
        )
      : null;
  bar?.start(plan.flows.length, 0, { failed: 0 });
  const nodeErrors: string[] = [];
  const unreachable = new Map<string, string>();
  let report: Report;
  try {
    report = await runPlan(inv, plan, {
      secret,
      command: hooks.command,
      tries: opts.tries,
      maxLoss: opts.maxLoss / 100,
      timeouts: { initialMs: opts.timeout, minMs: opts.minTimeout, maxMs: opts.maxTimeout },
      concurrency: opts.concurrency,
      parallelNodes: opts.parallelNodes,
      signal: ac.signal,
      onProgress: (p) => bar?.update(p.done, { failed: p.failed }),
      onNodeError: (node, msg) => {
        nodeErrors.push(`${node}: ${msg}`);
        unreachable.set(node, msg);
      },
    });
  } finally {
    bar?.stop();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
  const log = (l: string) => opts.quiet || stderr.write(`${l}\n`);
  let explainInterrupted = false;
  if ((opts.explain ?? hooks.explainByDefault ?? false) && !report.incomplete) {
    // Ctrl-C while tracing: stop tracing (the hosts remove their tables), still write the verdicts.
    const traced = report;
    const step = await interruptibleStep('not naming the rules; writing the report', log, (signal) => explainReport(traced, inv, { secret, signal, log }));
    report = step.value;
    explainInterrupted = step.interrupted;
  }
  let preflightInterrupted = false;
  if (hooks.preflight && opts.preflight !== false && !report.incomplete && !explainInterrupted) {
    // Ctrl-C while asking: the report is written without findings.
    const asked = report;
    const step = await interruptibleStep('not asking for preflight findings; writing the report', log, (signal) => addPreflight(asked, inv, { secret, skip: unreachable, parallel: opts.parallelNodes, log, signal }));
    report = step.value;
    preflightInterrupted = step.interrupted;
  }
  report = explainNodeErrors(report, remote.nodeErrors);
  if (hooks.post) report = hooks.post(report);
  // Once, from the final results (after --explain's rules and the nodes left without a responder).
  report = withDiagnosis(report);
  if (!opts.quiet) for (const e of nodeErrors) stderr.write(`warning: ${e}\n`);

  const color = useColor(process.stdout, opts.color);
  // A report that cannot be written is not lost: the table (or a summary line) still reaches the user,
  // and the run exits 3 with what went wrong; an old file at --out is left as it was.
  let writeFailed: Error | undefined;
  if (opts.out) {
    try {
      await writeReportFile(opts.out, reportChunks(report, formatForFile(opts.out, opts.format), { color: false }));
      if (!opts.quiet && opts.out !== '-') stderr.write(`report written to ${opts.out}\n`);
    } catch (err) {
      if (!(err instanceof ReportWriteError)) throw err;
      writeFailed = err;
    }
  }
  const toStdout = opts.out === '-' ? false : !(opts.out && opts.format !== 'table');
  if (!opts.quiet && toStdout) await writeChunks(process.stdout, reportChunks(report, opts.format, { color }));
  if (writeFailed) {
    const s = report.summary;
    if (!toStdout || opts.quiet) stderr.write(`summary: ${s.pass} passed, ${s.fail} failed, ${s.unknown} unknown (${report.results.length} flows)\n`);
    stderr.write(`calico-nettest: ${writeFailed.message}\n`);
    return EXIT.cannotRun;
  }

  // A flow some responder probed was reached, even when the other end's responder is down.
  const reached = report.results.some((r) => r.cause !== 'responder-unreachable' || r.attempts > 0);
  if (report.incomplete || explainInterrupted || preflightInterrupted) return EXIT.interrupted;
  if (!reached && report.results.length > 0) {
    stderr.write(`calico-nettest: could not reach any responder — start \`calico-nettest responder\` on the nodes, and check the secret and the control port\n`);
    return EXIT.cannotRun;
  }
  if (hooks.exitCode) return hooks.exitCode(report);
  return report.summary.fail + report.summary.unknown > 0 ? EXIT.failed : EXIT.ok;
}

function parseCheckListOrThrow(s: string): CheckId[] {
  try {
    return parseCheckList(s);
  } catch (err) {
    throw new CliError(`--checks: ${(err as Error).message}`);
  }
}
