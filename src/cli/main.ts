// The command line: commander wiring only; each command lives in its own file.
import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.js';
import { CliError, EXIT, exitCodeFor, messageFor } from './common.js';
import { makeDemoCommand } from './demo.js';
import { makeLabCommand } from './lab.js';
import { makeMeshCommand } from './mesh.js';
import { makePairCommand } from './pair.js';
import { makeReportCommand } from './report.js';
import { makeResponderCommand } from './responder.js';
import { makeVerifyCommand } from './verify.js';

export function makeProgram(): Command {
  const program = new Command('calico-nettest')
    .version(VERSION, '-V, --version')
    .description(
      'Prove, with real packets, that the network between Kubernetes nodes carries everything Calico needs\n' +
        '(BGP, IP-in-IP, VXLAN, WireGuard, Typha, etcd, kube-apiserver) in both directions, and when it does not,\n' +
        'say which firewall dropped what: the sender\'s own, something in the path, or the receiver\'s own.',
    )
    .showSuggestionAfterError(true)
    .addHelpText(
      'after',
      `
Typical use:
  1. on every node:   sudo calico-nettest responder --listen <node address> --secret-file secret
  2. from anywhere:   calico-nettest mesh --inventory nodes.yaml --secret-file secret
  one pair:           calico-nettest pair node-a node-b -i nodes.yaml -s secret
  after a change:     calico-nettest verify --baseline last-good.json -i nodes.yaml -s secret
  try it locally:     sudo calico-nettest demo`,
    );
  for (const c of [makeResponderCommand(), makeMeshCommand(), makePairCommand(), makeVerifyCommand(), makeReportCommand(), makeLabCommand(), makeDemoCommand()]) program.addCommand(c);
  // commander's own `help` takes one word: `help lab up` showed the help of `lab`. This one walks the path.
  program.helpCommand(false);
  program
    .command('help [command...]')
    .description('show the help of a command or subcommand (e.g. help lab up)')
    .action((path: string[]) => {
      let cmd: Command = program;
      for (const word of path) {
        const next = cmd.commands.find((c) => c.name() === word || c.aliases().includes(word));
        if (!next) throw new CliError(`no command '${[...path.slice(0, path.indexOf(word)), word].join(' ')}'; see: calico-nettest --help`);
        cmd = next;
      }
      cmd.outputHelp(); // with the examples its addHelpText adds
    });
  program.exitOverride();
  for (const c of program.commands) c.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<void> {
  // `calico-nettest mesh | head`: a closed pipe ends the output, not the program with a stack trace.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw err;
    });
  }
  const program = makeProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed the message (or the help/version text).
      process.exitCode = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help' ? EXIT.ok : EXIT.usage;
      return;
    }
    process.stderr.write(`calico-nettest: ${messageFor(err)}\n`);
    process.exitCode = exitCodeFor(err);
  }
}
