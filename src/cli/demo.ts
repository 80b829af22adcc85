// `calico-nettest demo`: a 4-node lab with faults of different kinds, a real mesh over it, the matrix and
// the diagnosis, a check of every verdict against the injected faults, and the lab removed afterwards.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { CATALOGUE } from '../checks/catalogue.js';
import { expectedOutcome, parseFault } from '../lab/faults.js';
import { coordinatorArgv, labDown, labUp, LabError, LAUNCHER, launcherForHumans, type LabState } from '../lab/lab.js';
import { isRoot, which } from '../lab/sys.js';
import { parseReport } from '../report/json.js';
import { EXIT, parseIntOption, useColor, bold } from './common.js';

export const DEMO_FAULTS = ['drop:ipip@node2:in', 'drop:vxlan@path:node1>node3', 'drop:bgp@node4:out', 'reject:typha@node2:in', 'mtu:1400@node3'];

const collect = (v: string, prev: string[]) => [...prev, v];

export function makeDemoCommand(): Command {
  return new Command('demo')
    .summary('see it work: a 4-node lab with firewall faults, a mesh, the diagnosis (needs root)')
    .addOption(new Option('-n, --nodes <n>', 'lab size').argParser(parseIntOption('--nodes', 2, 64)).default(4))
    .addOption(new Option('--fault <spec>', 'faults to inject instead of the built-in ones (repeatable)').argParser(collect).default([]))
    .option('--keep', 'keep the lab running afterwards (remove it with: calico-nettest lab down)')
    .addOption(new Option('-o, --out <file>', "where to keep the mesh's JSON report (default: a new file under the temp directory, kept)"))
    .option('--no-color', 'no colours')
    .addHelpText('after', `\nBuilt-in faults: ${DEMO_FAULTS.join(', ')}\n\nExamples:\n  sudo calico-nettest demo\n  sudo calico-nettest demo --nodes 6 --fault 'drop:all@node3:in' --out demo.json\n  sudo calico-nettest demo --keep        # then explore the lab: calico-nettest lab status`)
    .action(async (opts: { nodes: number; fault: string[]; keep?: boolean; out?: string; color: boolean }) => {
      if (!isRoot()) {
        // The lab needs root; rather than failing, ask for it the usual way when sudo is there.
        const sudo = await which('sudo');
        if (!sudo) throw new LabError('the demo needs root (it creates network namespaces and firewall rules): run it as root', 2);
        process.stderr.write('calico-nettest demo needs root (network namespaces, firewall rules): asking sudo\n');
        process.exitCode = await new Promise<number>((resolve) => {
          const child = spawn(sudo, [process.execPath, LAUNCHER, ...process.argv.slice(2)], { stdio: 'inherit' });
          child.on('exit', (c) => resolve(c ?? EXIT.cannotRun));
          child.on('error', () => resolve(EXIT.cannotRun));
        });
        return;
      }
      const color = useColor(process.stdout, opts.color);
      const faults = opts.fault.length ? opts.fault : opts.nodes >= 4 ? DEMO_FAULTS : ['drop:ipip@node2:in'];
      const out = process.stdout;
      out.write(`${bold('calico-nettest demo', color)}: ${opts.nodes} simulated nodes (network namespaces behind a router), a real responder on each.\n`);
      out.write(`Injecting real iptables faults:\n${faults.map((f) => `  - ${f}`).join('\n')}\n\n`);
      let state: LabState | null = null;
      const tmp = await mkdtemp(join(tmpdir(), 'calico-nettest-demo-'));
      let interrupted = false;
      let reportFile: string | null = null;
      const onSig = () => {
        interrupted = true;
      };
      process.on('SIGINT', onSig);
      process.on('SIGTERM', onSig);
      try {
        state = await labUp({ nodes: opts.nodes, faults, onStep: (m) => process.stderr.write(`lab: ${m}\n`) });
        if (interrupted) throw Object.assign(new Error('interrupted'), { interrupted: true });
        // The mesh says "report written to …": the file stays, so that is true (render it with `report`).
        reportFile = opts.out ? resolve(opts.out) : join(tmp, 'report.json');
        const args = ['mesh', '--inventory', state.inventory, '--secret-file', state.secretFile, '--out', reportFile, '--format', 'table', ...(color ? [] : ['--no-color'])];
        out.write(`Running: calico-nettest mesh (from the lab's router namespace ${state.router})\n\n`);
        const [cmd, ...rest] = coordinatorArgv(state, args);
        const code = await new Promise<number>((resolve) => {
          const child = spawn(cmd!, rest, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, ...(color ? { FORCE_COLOR: '1' } : {}) } });
          child.on('exit', (c, sig) => resolve(c ?? (sig ? 128 : 3)));
          child.on('error', () => resolve(3));
        });
        if (interrupted || code === EXIT.interrupted) {
          process.exitCode = EXIT.interrupted;
          return;
        }
        if (code !== EXIT.ok && code !== EXIT.failed) {
          process.exitCode = code;
          return;
        }
        // The demo checks itself: every verdict must be what the injected faults imply.
        const report = parseReport(await readFile(reportFile, 'utf8'), reportFile);
        const parsed = faults.map(parseFault);
        const wrong = report.results.filter((r) => {
          const e = expectedOutcome(parsed, { check: r.check, from: r.from, to: r.to, transport: CATALOGUE[r.check].transport });
          return e.verdict !== r.verdict || e.cause !== r.cause;
        });
        out.write('\n');
        // The preflight findings are real facts of this kernel and these namespaces (e.g. no ipip module), not injected.
        const findings = report.findings ?? [];
        const unchecked = findings.filter((f) => f.id === 'preflight-unavailable').map((f) => f.node);
        if (findings.length) out.write(`Preflight found ${findings.length} host requirement finding${findings.length === 1 ? '' : 's'} on the lab's nodes (above, before the matrices): real facts of this machine's kernel and the nodes' namespaces, not injected faults.\n`);
        if (unchecked.length) out.write(`Preflight could not check ${unchecked.join(', ')}.\n`);
        if (wrong.length === 0) {
          out.write(`${bold('Every one of the', color)} ${report.results.length} flows got the verdict the injected faults imply: the tool found each fault and said where it is.\n`);
          // A lab responder that cannot answer preflight is the demo failing, not a fact of the host.
          process.exitCode = unchecked.length ? EXIT.failed : EXIT.ok;
        } else {
          out.write(`${wrong.length} flows differ from what the injected faults imply:\n`);
          for (const r of wrong.slice(0, 20)) out.write(`  ${r.check} ${r.from} -> ${r.to}: ${r.verdict}/${r.cause ?? '-'}\n`);
          process.exitCode = EXIT.failed;
        }
      } finally {
        process.off('SIGINT', onSig);
        process.off('SIGTERM', onSig);
        const kept = reportFile !== null && (await stat(reportFile).then(() => true, () => false));
        if (kept && reportFile) process.stderr.write(`report kept: ${reportFile}  (render it: calico-nettest report ${reportFile} --format html --out demo.html)\n`);
        if (!kept || opts.out) await rm(tmp, { recursive: true, force: true });
        if (state && !opts.keep) {
          await labDown(state);
          process.stderr.write(`lab ${state.prefix} removed\n`);
        } else if (state) {
          process.stderr.write(`lab ${state.prefix} kept: ${launcherForHumans()} lab down --lab ${state.prefix}\n`);
        }
      }
    });
}
