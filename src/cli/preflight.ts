// `calico-nettest preflight`: Calico's host requirements (kernel, sysctls, NetworkManager, firewalld ...) on
// this host (--local) or on every node of an inventory through its responder (--inventory --secret-file).
import { extname } from 'node:path';
import { Command, Option } from 'commander';
import { CHECK_IDS, type CheckId } from '../types.js';
import { parseCheckList } from '../checks/catalogue.js';
import { DEFAULT_CONTROL_PORT } from '../control/protocol.js';
import { loadInventory } from '../coordinator/inventory.js';
import { labNamespaceProblem } from '../lab/lab.js';
import { gatherPreflight } from '../preflight/gather.js';
import { preflightLocal } from '../preflight/local.js';
import { makeResult, renderPreflight, type PreflightFormat, type PreflightResult } from '../preflight/result.js';
import { ReportWriteError, writeReportFile } from '../report/write.js';
import { loadSecret } from '../secret.js';
import { CliError, EXIT, parseIntOption, useColor } from './common.js';

interface PreflightOptions {
  local?: boolean;
  inventory?: string;
  secretFile?: string;
  checks?: string;
  format: PreflightFormat;
  out?: string;
  root: string;
  node?: string;
  controlPort: number;
  parallelNodes: number;
  timeout: number;
  quiet?: boolean;
  color: boolean;
}

/** --out's format when --format was not given: by the file's extension, as mesh does. */
function formatFor(out: string | undefined, format: PreflightFormat, given: boolean): PreflightFormat {
  if (given || !out) return format;
  const ext = extname(out).toLowerCase();
  return ext === '.html' || ext === '.htm' ? 'html' : ext === '.txt' ? 'table' : 'json';
}

export function makePreflightCommand(): Command {
  const cmd = new Command('preflight')
    .summary('check the host requirements Calico needs (kernel modules, sysctls, NetworkManager, firewalld ...)')
    .description(
      'Check hosts against Calico\'s system requirements: kernel version and features (tried for real in a\n' +
        'scratch network namespace: ipip, vxlan, wireguard, ipset, nftables), rp_filter, ip_forward, NetworkManager\n' +
        'and firewalld config, conntrack fill, Felix\'s MTU interface pattern, iptables backends, pod range\n' +
        'overlaps, tx checksum offload on vxlan.calico. With --local on this host; with --inventory and\n' +
        '--secret-file on every node, each node checked by its own responder.',
    )
    .addOption(new Option('--local', 'check this host'))
    .addOption(new Option('-i, --inventory <file>', 'check every node of this inventory through its responder (with --secret-file); with --local: take checks, podCIDR and serviceCIDR from it'))
    .addOption(new Option('-s, --secret-file <file>', 'the shared secret the responders were started with'))
    .addOption(new Option('-c, --checks <list>', 'checks whose needs are errors: bgp,ipip,vxlan,wireguard,typha,etcd,apiserver (default: the inventory\'s, else all)'))
    .addOption(new Option('-f, --format <format>', 'output format (default: table; with --out, by its extension: .html, .txt, else json)').choices(['table', 'json', 'html']).default('table'))
    .addOption(new Option('-o, --out <file>', 'write the result to this file (atomically; `-` is stdout) instead of printing the table'))
    .addOption(new Option('--root <dir>', '--local: read host files (/proc, /sys, /etc) under this directory; kernel tries only with /').default('/'))
    .addOption(new Option('--node <name>', '--local: node name in the findings (default: the hostname)'))
    .addOption(new Option('--control-port <n>', 'responders\' control port for nodes without `control:`').argParser(parseIntOption('--control-port', 1, 65535)).default(DEFAULT_CONTROL_PORT))
    .addOption(new Option('--parallel-nodes <n>', 'responders asked at once').argParser(parseIntOption('--parallel-nodes', 1, 4096)).default(32))
    .addOption(new Option('--timeout <ms>', 'how long one responder may take to answer').argParser(parseIntOption('--timeout', 1000, 600_000)).default(60_000))
    .addOption(new Option('-q, --quiet', 'print nothing but errors (the result still goes to --out)'))
    .option('--no-color', 'no colours')
    .addHelpText(
      'after',
      `
Examples:
  sudo calico-nettest preflight --local
  sudo calico-nettest preflight --local --checks bgp,vxlan --format json --out preflight.json
  sudo calico-nettest preflight --local -i nodes.yaml      # checks, podCIDR and serviceCIDR from the inventory
  calico-nettest preflight -i nodes.yaml -s /etc/calico-nettest/secret              # every node, via its responder
  calico-nettest preflight -i nodes.yaml -s secret --out preflight.html             # one HTML page of all nodes

Exit status: 0 no errors (warnings allowed); 1 errors found (a node whose responder could not be asked
is an error: preflight-unavailable); 2 bad usage, inventory or secret; 3 could not run (no responder
answered; --out could not be written: the old file is kept); 130 interrupted.`,
    )
    .action(async (opts: PreflightOptions) => {
      const remote = !opts.local;
      if (remote && (!opts.inventory || !opts.secretFile)) {
        throw new CliError('preflight needs --local (this host) or --inventory and --secret-file (every node, through its responder); e.g. calico-nettest preflight --local');
      }
      if (opts.local && opts.secretFile) throw new CliError('--secret-file is for checking the nodes through their responders; with --local it is not used (drop one of them)');
      if (remote && (opts.root !== '/' || opts.node)) throw new CliError('--root and --node are for --local (each responder checks its own host)');
      if (remote) {
        const problem = await labNamespaceProblem(opts.inventory!);
        if (problem) throw new CliError(problem);
      }
      const inv = opts.inventory ? await loadInventory(opts.inventory, { controlPort: opts.controlPort }) : null;
      let checks: CheckId[];
      try {
        checks = opts.checks ? parseCheckList(opts.checks) : (inv?.checks ?? [...CHECK_IDS]);
      } catch (err) {
        throw new CliError(`--checks: ${(err as Error).message}`);
      }
      const format = formatFor(opts.out, opts.format, cmd.getOptionValueSource('format') !== 'default');
      let result: PreflightResult;
      let reached = true;
      let interrupted = false;
      if (!remote) {
        result = makeResult(checks, await preflightLocal({ root: opts.root, node: opts.node, checks, podCIDR: inv?.podCIDR, serviceCIDR: inv?.serviceCIDR }));
      } else {
        const secret = await loadSecret(opts.secretFile!);
        const ac = new AbortController();
        const onSig = () => {
          if (ac.signal.aborted) return;
          interrupted = true;
          process.stderr.write('\ninterrupted: the nodes not yet answered are reported as not checked (Ctrl-C again to quit at once)\n');
          ac.abort();
          process.once('SIGINT', () => process.exit(EXIT.interrupted));
        };
        process.once('SIGINT', onSig);
        process.once('SIGTERM', onSig);
        const nodes = inv!.nodes;
        const progress = !opts.quiet && process.stderr.isTTY;
        if (!opts.quiet) process.stderr.write(`preflight: asking ${nodes.length} responder${nodes.length === 1 ? '' : 's'} (checks: ${checks.join(',')})\n`);
        try {
          const g = await gatherPreflight(nodes, {
            secret, checks, podCIDR: inv!.podCIDR, serviceCIDR: inv!.serviceCIDR, parallel: opts.parallelNodes, timeoutMs: opts.timeout, signal: ac.signal,
            onProgress: progress ? (done, total) => process.stderr.write(`\rpreflight: ${done}/${total} nodes${done === total ? '\n' : ''}`) : undefined,
          });
          reached = g.reached.length > 0;
          result = makeResult(checks, g.findings, nodes.map((n) => n.name));
        } finally {
          process.off('SIGINT', onSig);
          process.off('SIGTERM', onSig);
        }
      }
      const color = useColor(process.stdout, opts.color);
      let writeFailed: Error | undefined;
      if (opts.out) {
        try {
          await writeReportFile(opts.out, renderPreflight(result, format, { color: false }));
          if (!opts.quiet && opts.out !== '-') process.stderr.write(`preflight result written to ${opts.out}\n`);
        } catch (err) {
          if (!(err instanceof ReportWriteError)) throw err;
          writeFailed = err;
        }
      }
      // Without --out the chosen format goes to stdout; with --out (not `-`) the table still prints unless --quiet.
      if (!opts.quiet && opts.out !== '-') process.stdout.write(opts.out ? renderPreflight(result, 'table', { color }) : renderPreflight(result, format, { color }));
      if (writeFailed) {
        process.stderr.write(`calico-nettest: ${writeFailed.message.replace('the report', 'the preflight result')}\n`);
        process.exitCode = EXIT.cannotRun;
        return;
      }
      if (interrupted) {
        process.exitCode = EXIT.interrupted;
        return;
      }
      if (!reached) {
        process.stderr.write('calico-nettest: no responder answered — start `calico-nettest responder` on the nodes, and check the secret and the control port\n');
        process.exitCode = EXIT.cannotRun;
        return;
      }
      process.exitCode = result.summary.error > 0 ? EXIT.failed : EXIT.ok;
    });
  return cmd;
}
