// `calico-nettest pair NODE_A NODE_B`: one node pair, every check, both directions.
import { Command } from 'commander';
import { planPair } from '../coordinator/plan.js';
import { addRunOptions, type RunCliOptions } from './common.js';
import { executeRun } from './run-command.js';

export function makePairCommand(): Command {
  const cmd = new Command('pair')
    .summary('test one node pair in both directions')
    .description(
      'Probe every check the plan calls for between NODE_A and NODE_B, both directions, and say which firewall dropped what.\n' +
        '--explain is on by default here: for each flow a host\'s own firewall dropped or rejected, that host traces the\n' +
        'probes once more (a temporary nft table named after the session, removed afterwards) and names the rule\n' +
        '(the iptables-save line or nft rule text) and how to allow the traffic. --no-explain turns it off.',
    )
    .argument('<node-a>', 'a node name from the inventory')
    .argument('<node-b>', 'another node name from the inventory');
  addRunOptions(cmd);
  cmd.addHelpText(
    'after',
    `
Examples:
  calico-nettest pair node-a node-b -i nodes.yaml -s /etc/calico-nettest/secret
  calico-nettest pair node-a node-b -i nodes.yaml -s secret --checks ipip,vxlan --format json
  calico-nettest pair node-a node-b -i nodes.yaml -s secret --no-explain    # verdicts only, no tracing
  calico-nettest pair node-a node-b -i nodes.yaml -s secret --checks ipip,mtu # does the path carry the host MTU?

Exit status: 0 every flow passed; 1 a flow failed or is unknown; 2 bad usage or inventory; 3 could not run.`,
  );
  cmd.action(async (a: string, b: string, opts: RunCliOptions) => {
    process.exitCode = await executeRun(opts, { command: 'pair', explainByDefault: true, plan: (inv, checks) => planPair(inv, a, b, { checks }) });
  });
  return cmd;
}
