// `calico-nettest lab up|down|status|fault`: the network-namespace lab.
import { Command, Option } from 'commander';
import { parseCheckList } from '../checks/catalogue.js';
import { FAULT_GRAMMAR } from '../lab/faults.js';
import { labDown, labFaultAdd, labFaultClear, labStatus, labUp, launcherForHumans, listLabs, resolveLab, type LabState } from '../lab/lab.js';
import { CliError, parseIntOption } from './common.js';

const collect = (v: string, prev: string[]) => [...prev, v];

export function labCommands(state: LabState): string {
  const me = launcherForHumans();
  const common = `--inventory ${state.inventory} --secret-file ${state.secretFile}`;
  const inRouter = `sudo ip netns exec ${state.router} ${me}`;
  const [a, b] = state.nodes;
  return [
    `Lab ${state.prefix} is up: ${state.nodes.map((n) => `${n.name} ${n.address}${n.roles.length ? ` (${n.roles.join(', ')})` : ''}`).join(', ')}.`,
    state.faults.length ? `Faults: ${state.faults.join(', ')}` : 'Faults: none',
    '',
    `Run the coordinator from the lab's router namespace (it reaches every node):`,
    `  ${inRouter} mesh ${common}`,
    `  ${inRouter} pair ${a?.name ?? 'node1'} ${b?.name ?? 'node2'} ${common}`,
    `  ${inRouter} mesh ${common} --format json --out last-good.json`,
    `  ${inRouter} verify --baseline last-good.json ${common}`,
    `Change faults:  sudo ${me} lab fault add drop:ipip@node2:in --lab ${state.prefix}   |   sudo ${me} lab fault clear --lab ${state.prefix}`,
    `Responder logs: ${state.dir}/<node>.log`,
    `Tear down:      sudo ${me} lab down --lab ${state.prefix}`,
    '',
  ].join('\n');
}

export function makeLabCommand(): Command {
  const lab = new Command('lab')
    .summary('simulated nodes in network namespaces, with real responders and real firewall faults')
    .description('Builds nodes as network namespaces joined through a router namespace (so there is a path that can\ndrop), each running a real responder; faults are real iptables rules. Needs root.')
    .addHelpText(
      'after',
      `\nExamples:\n  sudo calico-nettest lab up --nodes 4 --fault drop:ipip@node2:in\n  sudo calico-nettest lab status\n  sudo calico-nettest lab fault add 'drop:vxlan@path:node1>node3'\n  sudo calico-nettest lab fault clear\n  sudo calico-nettest lab down`,
    );

  lab
    .command('up')
    .summary('create a lab')
    .addOption(new Option('-n, --nodes <n>', 'number of nodes').argParser(parseIntOption('--nodes', 2, 500)).default(3))
    .addOption(new Option('--fault <spec>', 'inject a fault (repeatable); see below').argParser(collect).default([]))
    .addOption(new Option('-c, --checks <list>', 'checks to put in the inventory (default: all)'))
    .addHelpText('after', `\n${FAULT_GRAMMAR}\n\nExamples:\n  sudo calico-nettest lab up --nodes 4 --fault drop:ipip@node2:in --fault drop:vxlan@path:node1>node3\n  sudo calico-nettest lab up -n 3 --checks bgp,ipip`)
    .action(async (opts: { nodes: number; fault: string[]; checks?: string }) => {
      let checks;
      try {
        checks = opts.checks ? parseCheckList(opts.checks) : undefined;
      } catch (err) {
        throw new CliError(`--checks: ${(err as Error).message}`);
      }
      const state = await labUp({ nodes: opts.nodes, faults: opts.fault, checks, onStep: (m) => process.stderr.write(`lab: ${m}\n`) });
      process.stdout.write(labCommands(state));
    });

  lab
    .command('down')
    .summary('remove a lab: responders, namespaces, files (also a half-built one)')
    .option('--lab <name>', 'which lab (default: the only one)')
    .option('--all', 'every lab on this machine')
    .action(async (opts: { lab?: string; all?: boolean }) => {
      const labs = opts.all ? await listLabs() : [await resolveLab(opts.lab)];
      for (const l of labs) {
        await labDown(l);
        process.stdout.write(`lab ${l.prefix} removed\n`);
      }
      if (labs.length === 0) process.stdout.write('no lab to remove\n');
    });

  lab
    .command('status')
    .summary('list labs and whether their responders run')
    .action(async () => {
      const labs = await listLabs();
      if (labs.length === 0) process.stdout.write('no lab is up\n');
      for (const l of labs) {
        const st = await labStatus(l);
        process.stdout.write(`${l.prefix}  created ${l.createdAt}  router ${l.router}  faults: ${l.faults.join(', ') || 'none'}\n`);
        for (const n of st) process.stdout.write(`  ${n.name.padEnd(8)} ${n.address.padEnd(14)} responder ${n.alive ? 'running' : 'NOT running'}${n.roles.length ? `  roles: ${n.roles.join(', ')}` : ''}\n`);
        process.stdout.write(`  inventory ${l.inventory}\n  secret    ${l.secretFile}\n`);
      }
    });

  const fault = lab.command('fault').summary('add or clear faults on a running lab');
  fault
    .command('add')
    .argument('<spec...>', 'fault specs, e.g. drop:ipip@node2:in')
    .option('--lab <name>', 'which lab (default: the only one)')
    .addHelpText('after', `\n${FAULT_GRAMMAR}`)
    .action(async (specs: string[], opts: { lab?: string }) => {
      const state = await resolveLab(opts.lab);
      await labFaultAdd(state, specs);
      process.stdout.write(`faults now: ${state.faults.join(', ')}\n`);
    });
  fault
    .command('clear')
    .option('--lab <name>', 'which lab (default: the only one)')
    .action(async (opts: { lab?: string }) => {
      const state = await resolveLab(opts.lab);
      const n = await labFaultClear(state);
      process.stdout.write(`removed ${n} fault rule${n === 1 ? '' : 's'}\n`);
    });
  for (const c of [lab, ...lab.commands, ...fault.commands]) c.exitOverride();
  return lab;
}
