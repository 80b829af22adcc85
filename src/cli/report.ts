// `calico-nettest report FILE --format ...`: render a saved report in any format.
import { Command, Option } from 'commander';
import { reportChunks, writeChunks, writeFileAtomic } from '../report/write.js';
import { FORMATS, useColor, type Format } from './common.js';
import { loadBaseline } from './verify.js';

export function makeReportCommand(): Command {
  return new Command('report')
    .summary('render a saved JSON report as table, json, junit or html')
    .argument('<file>', 'a JSON report written by mesh, pair or verify')
    .addOption(new Option('-f, --format <format>', 'output format').choices(FORMATS).default('table'))
    .addOption(new Option('-o, --out <file>', 'write to this file (atomically) instead of stdout'))
    .option('--no-color', 'no colours')
    .addHelpText(
      'after',
      '\nExit status: 0 when every flow in the report passed, 1 when it has failed or unknown flows (as the run that\nwrote it did), 2 when the file cannot be read or is not a report.\n\nExamples:\n  calico-nettest report mesh.json\n  calico-nettest report mesh.json --format html --out mesh.html\n  calico-nettest report mesh.json --format junit > junit.xml',
    )
    .action(async (file: string, opts: { format: Format; out?: string; color: boolean }) => {
      const report = await loadBaseline(file, 'report');
      if (opts.out) await writeFileAtomic(opts.out, reportChunks(report, opts.format, { color: false }));
      else await writeChunks(process.stdout, reportChunks(report, opts.format, { color: useColor(process.stdout, opts.color) }));
      const failing = report.summary.fail + report.summary.unknown;
      process.exitCode = failing > 0 ? 1 : 0;
    });
}
