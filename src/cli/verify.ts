// `calico-nettest verify --baseline last-good.json`: re-run and compare flow by flow.
import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { planMesh } from '../coordinator/plan.js';
import { compareToBaseline, verifyExitCode } from '../report/diff.js';
import { parseReport } from '../report/json.js';
import type { Report } from '../types.js';
import { CliError, addRunOptions, type RunCliOptions } from './common.js';
import { executeRun } from './run-command.js';

/** Read a saved JSON report; `what` names it in errors as the user knows it ('baseline', 'report'). */
export async function loadBaseline(file: string, what = 'baseline'): Promise<Report> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === 'ENOENT' ? ' (no such file)' : code === 'EACCES' ? ' (permission denied)' : code === 'EISDIR' ? ' (it is a directory)' : '';
    throw new CliError(`cannot read ${what} ${file}: ${code ?? String(err)}${hint}`);
  }
  return parseReport(text, file);
}

export function makeVerifyCommand(): Command {
  const cmd = new Command('verify')
    .summary('re-run and compare with a saved report (after a firewall change)')
    .description('Re-run the mesh and compare every flow with a baseline report: regressed, fixed, unchanged or new.')
    .addOption(new Option('-b, --baseline <report.json>', 'a JSON report from an earlier mesh/pair/verify').makeOptionMandatory())
    .addOption(new Option('--strict', 'fail on any failing flow, not only on regressions'));
  addRunOptions(cmd);
  cmd.addHelpText(
    'after',
    `
Examples:
  calico-nettest mesh   -i nodes.yaml -s secret --format json --out last-good.json
  # ... change the firewall ...
  calico-nettest verify -i nodes.yaml -s secret --baseline last-good.json --out after.json

Exit status: 0 nothing regressed (failures already in the baseline are reported, not fatal; --strict
makes them fatal); 1 a flow regressed; 2 bad usage, inventory or baseline; 3 could not run.`,
  );
  cmd.action(async (opts: RunCliOptions & { baseline: string; strict?: boolean }) => {
    const baseline = await loadBaseline(opts.baseline);
    const checks = baseline.checks;
    process.exitCode = await executeRun(opts, {
      command: 'verify',
      plan: (inv, c) => planMesh(inv, { checks: c ?? (checks && checks.length ? checks : undefined) }),
      post: (r) => compareToBaseline(r, baseline, opts.baseline),
      exitCode: (r) => verifyExitCode(r, opts.strict === true),
    });
  });
  return cmd;
}
