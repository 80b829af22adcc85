// `calico-nettest mesh`: every node pair of the inventory, every check, both directions.
import { Command, Option } from 'commander';
import { planMesh } from '../coordinator/plan.js';
import { addRunOptions, parseIntOption, type RunCliOptions } from './common.js';
import { executeRun } from './run-command.js';

export function makeMeshCommand(): Command {
  const cmd = new Command('mesh')
    .summary('test every node pair of the inventory')
    .description(
      'Ask every node\'s responder to probe its peers for each check (both directions), collect what every\n' +
        'destination witnessed, and report one verdict per flow with the firewall that dropped it.',
    );
  addRunOptions(cmd)
    .addOption(new Option('--parallel-nodes <n>', 'responders driven at once').argParser(parseIntOption('--parallel-nodes', 1, 4096)).default(64))
    .addOption(new Option('--no-preflight', 'skip asking each node for its preflight findings (kernel modules, sysctls, NetworkManager ...; see `preflight --help`)'));
  cmd.addHelpText(
    'after',
    `
Examples:
  calico-nettest mesh -i nodes.yaml -s /etc/calico-nettest/secret
  calico-nettest mesh -i nodes.yaml -s secret --checks bgp,ipip --format json --out mesh.json
  calico-nettest mesh -i nodes.yaml -s secret --out report.html      # HTML page; the table still prints
  calico-nettest mesh -i nodes.yaml -s secret --explain              # name the rule behind each host-side failure
  calico-nettest mesh -i nodes.yaml -s secret --checks vxlan,mtu      # path MTU in VXLAN framing: pathMtu, hop
  calico-nettest mesh -i nodes.yaml -s secret --no-preflight         # flows only: no host-requirement findings

After the flows, every node's responder checks its host against Calico's requirements (as
\`calico-nettest preflight\` does); the findings come before the matrices and in the report's "findings".
They do not change the exit status, which is about the flows.

Exit status: 0 every flow passed; 1 a flow failed or is unknown; 2 bad usage, inventory or secret
(nothing was run); 3 could not run at all (no responder reachable; the inventory needs more memory than
this process may use, said before anything runs; --out could not be written: the old file is kept);
130 interrupted (partial report).`,
  );
  cmd.action(async (opts: RunCliOptions & { parallelNodes: number }) => {
    process.exitCode = await executeRun(opts, { command: 'mesh', plan: (inv, checks) => planMesh(inv, { checks }), preflight: true });
  });
  return cmd;
}
