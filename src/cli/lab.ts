// `calico-nettest lab up|down|status|fault`: the network-namespace lab.
import { Command, Option } from 'commander';
import { parseCheckList } from '../checks/catalogue.js';
import { FAULT_GRAMMAR, parseFault } from '../lab/faults.js';
import { join } from 'node:path';
import { describeRemoval, LAUNCHER, LabInterrupted, labDown, labFaultAdd, labFaultClear, labStatus, labUp, launcherForHumans, listLabs, resolveLab, type LabState } from '../lab/lab.js';
import { isRoot } from '../lab/sys.js';
import { CliError, parseIntOption } from './common.js';

const collect = (v: string, prev: string[]) => [...prev, v];

/** The commands to use a lab, ready to paste anywhere: absolute paths, `sudo` only when not root. */
export function labCommands(state: LabState, asRoot = isRoot()): string {
  const me = launcherForHumans(asRoot);
  const common = `--inventory ${state.inventory} --secret-file ${state.secretFile}`;
  const inRouter = `${asRoot ? '' : 'sudo '}ip netns exec ${state.router} ${LAUNCHER}`;
  const [a, b] = state.nodes;
  return [
    `Lab ${state.prefix} is up: ${state.nodes.map((n) => `${n.name} ${n.address}${n.roles.length ? ` (${n.roles.join(', ')})` : ''}`).join(', ')}.`,
    state.faults.length ? `Faults: ${state.faults.join(', ')}` : 'Faults: none',
    '',
    `Run the coordinator from the lab's router namespace (only it reaches every node):`,
    `  ${inRouter} mesh ${common}`,
    `  ${inRouter} pair ${a?.name ?? 'node1'} ${b?.name ?? 'node2'} ${common}`,
    `  ${inRouter} mesh ${common} --format json --out ${join(state.dir, 'last-good.json')}`,
    `  ${inRouter} verify --baseline ${join(state.dir, 'last-good.json')} ${common}`,
    `Change faults:  ${me} lab fault add 'drop:ipip@node2:in' --lab ${state.prefix}   |   ${me} lab fault clear --lab ${state.prefix}`,
    `Responder logs: ${state.dir}/<node>.log`,
    `Tear down:      ${me} lab down --lab ${state.prefix}`,
    '',
  ].join('\n');
}

/** Abort `controller` on Ctrl-C, SIGTERM, SIGHUP or a closed output pipe, until `release()` is called. */
function abortOnInterrupt(controller: AbortController): () => void {
  const onSignal = () => controller.abort();
  const onPipe = (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') controller.abort();
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const sig of signals) process.on(sig, onSignal);
  process.stdout.on('error', onPipe);
  return () => {
    for (const sig of signals) process.off(sig, onSignal);
    process.stdout.off('error', onPipe);
  };
}

export function makeLabCommand(): Command {
  const lab = new Command('lab')
    .summary('simulated nodes in network namespaces, with real responders and real firewall faults')
    .description('Builds nodes as network namespaces joined through a router namespace (so there is a path that can drop), each running a real responder; faults are real iptables rules. Needs root.')
    .addHelpText(
      'after',
      `\nExamples:\n  sudo calico-nettest lab up --nodes 4 --fault 'drop:ipip@node2:in'\n  sudo calico-nettest lab status\n  sudo calico-nettest lab fault add 'drop:vxlan@path:node1>node3'\n  sudo calico-nettest lab fault clear\n  sudo calico-nettest lab down\n\nQuote fault specs: the shell takes the '>' of path:NODE>NODE for a redirect.`,
    );

  lab
    .command('up')
    .summary('create a lab')
    .addOption(new Option('-n, --nodes <n>', 'number of nodes').argParser(parseIntOption('--nodes', 2, 500)).default(3))
    .addOption(new Option('--fault <spec>', 'inject a fault (repeatable); see below').argParser(collect).default([]))
    .addOption(new Option('-c, --checks <list>', 'checks to put in the inventory (default: all)'))
    .addHelpText(
      'after',
      `\n${FAULT_GRAMMAR}\n\nExamples (quote specs: the shell takes '>' for a redirect):\n  sudo calico-nettest lab up --nodes 4 --fault 'drop:ipip@node2:in' --fault 'drop:vxlan@path:node1>node3'\n  sudo calico-nettest lab up -n 3 --checks bgp,ipip\n  sudo calico-nettest lab up -n 3 --fault mtu:1400@node2        # a path MTU black hole (add :icmp to let frag-needed out)\n\nCtrl-C while it builds removes everything made so far and says what that was (exit 130).`,
    )
    .action(async (opts: { nodes: number; fault: string[]; checks?: string }) => {
      let checks;
      try {
        checks = opts.checks ? parseCheckList(opts.checks) : undefined;
      } catch (err) {
        throw new CliError(`--checks: ${(err as Error).message}`);
      }
      const controller = new AbortController();
      const release = abortOnInterrupt(controller);
      try {
        const state = await labUp({ nodes: opts.nodes, faults: opts.fault, checks, signal: controller.signal, onStep: (m) => process.stderr.write(`lab: ${m}\n`) });
        // Interrupted after the last step: the user still asked for nothing to be left.
        if (controller.signal.aborted) throw new LabInterrupted(state.prefix, await labDown(state));
        process.stdout.write(labCommands(state));
      } finally {
        release();
      }
    });

  lab
    .command('down')
    .summary('remove a lab: responders, namespaces, files (also a half-built one)')
    .option('--lab <name>', 'which lab (default: the only one)')
    .option('--all', 'every lab on this machine')
    .addHelpText(
      'after',
      `\nA lab is found by its name (cnt-xxxxxx) whatever state it is in: one killed while it was built goes too\n(its namespaces by name, the processes in them by \`ip netns pids\`).\n\nExamples:\n  sudo calico-nettest lab down                    # the only lab\n  sudo calico-nettest lab down --lab cnt-1a2b3c\n  sudo calico-nettest lab down --all`,
    )
    .action(async (opts: { lab?: string; all?: boolean }) => {
      const labs = opts.all ? await listLabs() : [await resolveLab(opts.lab)];
      for (const l of labs) {
        const removed = await labDown(l);
        process.stdout.write(`lab ${l.prefix} removed: ${describeRemoval(removed)}\n`);
      }
      if (labs.length === 0) process.stdout.write('no lab to remove\n');
    });

  lab
    .command('status')
    .summary('list labs and whether their responders run')
    .addHelpText('after', `\nNeeds root (the labs' state and namespaces are root's).\n\nExample:\n  sudo calico-nettest lab status`)
    .action(async () => {
      // As another user the labs' directory and processes cannot be seen: "no lab is up" would be a lie.
      if (!isRoot()) throw new CliError('lab status needs root (the labs\' state and namespaces are root\'s): run it with sudo');
      const labs = await listLabs();
      if (labs.length === 0) process.stdout.write('no lab is up\n');
      for (const l of labs) {
        const st = await labStatus(l);
        if (l.broken) {
          process.stdout.write(`${l.prefix}  BROKEN: ${l.broken} (killed while it was built?)  remove it: ${launcherForHumans()} lab down --lab ${l.prefix}\n`);
          process.stdout.write(`  namespaces left: ${[l.router, ...l.nodes.map((n) => n.ns)].join(' ')}\n`);
          continue;
        }
        process.stdout.write(`${l.prefix}  created ${l.createdAt}  router ${l.router}  faults: ${l.faults.join(', ') || 'none'}\n`);
        for (const n of st) process.stdout.write(`  ${n.name.padEnd(8)} ${n.address.padEnd(14)} responder ${n.alive ? 'running' : 'NOT running'}${n.roles.length ? `  roles: ${n.roles.join(', ')}` : ''}\n`);
        process.stdout.write(`  inventory ${l.inventory}\n  secret    ${l.secretFile}\n`);
      }
    });

  const fault = lab.command('fault').summary('add or clear faults on a running lab').addHelpText('after', `\nExamples:\n  sudo calico-nettest lab fault add 'drop:vxlan@path:node1>node3'\n  sudo calico-nettest lab fault clear`);
  fault
    .command('add')
    .argument('<spec...>', 'fault specs, e.g. drop:ipip@node2:in')
    .option('--lab <name>', 'which lab (default: the only one)')
    .addHelpText('after', `\n${FAULT_GRAMMAR}\n\nExamples (quote specs: the shell takes '>' for a redirect):\n  sudo calico-nettest lab fault add 'drop:ipip@node2:in'\n  sudo calico-nettest lab fault add 'reject:bgp@path:node1>node3' --lab cnt-1a2b3c`)
    .action(async (specs: string[], opts: { lab?: string }) => {
      for (const spec of specs) parseFault(spec); // a bad spec is the first thing to say, whatever the lab
      const state = await resolveLab(opts.lab);
      await labFaultAdd(state, specs);
      process.stdout.write(`faults now: ${state.faults.join(', ')}\n`);
    });
  fault
    .command('clear')
    .summary('remove every fault the lab has')
    .option('--lab <name>', 'which lab (default: the only one)')
    .addHelpText('after', `\nExample:\n  sudo calico-nettest lab fault clear --lab cnt-1a2b3c`)
    .action(async (opts: { lab?: string }) => {
      const state = await resolveLab(opts.lab);
      const n = await labFaultClear(state);
      process.stdout.write(`removed ${n} fault rule${n === 1 ? '' : 's'}\n`);
    });
  for (const c of [lab, ...lab.commands, ...fault.commands]) c.exitOverride();
  return lab;
}
