// `calico-nettest preflight --local`: Calico's host requirements (kernel, sysctls, NetworkManager, firewalld ...) on this host.
import { Command, Option } from 'commander';
import { CHECK_IDS, type CheckId } from '../types.js';
import { parseCheckList } from '../checks/catalogue.js';
import { loadInventory } from '../coordinator/inventory.js';
import { preflightLocal } from '../preflight/local.js';
import { makeResult, renderPreflightTable } from '../preflight/result.js';
import { writeFileAtomic } from '../report/write.js';
import { CliError, EXIT } from './common.js';

interface PreflightOptions {
  local?: boolean;
  inventory?: string;
  checks?: string;
  format: 'table' | 'json';
  out?: string;
  root: string;
  node?: string;
}

export function makePreflightCommand(): Command {
  const cmd = new Command('preflight')
    .summary('check the host requirements Calico needs (kernel modules, sysctls, NetworkManager, firewalld ...)')
    .description(
      'Check this host against Calico\'s system requirements: kernel version and features (tried for real in a\n' +
        'scratch network namespace: ipip, vxlan, wireguard, ipset, nftables), rp_filter, ip_forward, NetworkManager\n' +
        'and firewalld config, conntrack fill, Felix\'s MTU interface pattern, iptables backends, pod range overlaps.',
    )
    .addOption(new Option('--local', 'check this host (required for now: through the responders is not built yet)'))
    .addOption(new Option('-i, --inventory <file>', 'with --local: take checks, podCIDR and serviceCIDR from this inventory'))
    .addOption(new Option('-c, --checks <list>', 'checks whose needs are errors: bgp,ipip,vxlan,wireguard,typha,etcd,apiserver (default: the inventory\'s, else all)'))
    .addOption(new Option('-f, --format <format>', 'output format').choices(['table', 'json']).default('table'))
    .addOption(new Option('-o, --out <file>', 'write the result to this file (atomically) instead of stdout'))
    .addOption(new Option('--root <dir>', 'read host files (/proc, /sys, /etc) under this directory; kernel tries only with /').default('/'))
    .addOption(new Option('--node <name>', 'node name in the findings (default: the hostname)'))
    .addHelpText(
      'after',
      `
Examples:
  sudo calico-nettest preflight --local
  sudo calico-nettest preflight --local --checks bgp,vxlan --format json --out preflight.json
  sudo calico-nettest preflight --local -i nodes.yaml      # checks, podCIDR and serviceCIDR from the inventory

Exit status: 0 no errors (warnings allowed); 1 errors found; 2 bad usage or inventory; 3 could not run.`,
    )
    .action(async (opts: PreflightOptions) => {
      if (!opts.local) throw new CliError('preflight needs --local (checking every node through the responders is not built yet); e.g. calico-nettest preflight --local');
      const inv = opts.inventory ? await loadInventory(opts.inventory) : null;
      let checks: CheckId[];
      try {
        checks = opts.checks ? parseCheckList(opts.checks) : (inv?.checks ?? [...CHECK_IDS]);
      } catch (err) {
        throw new CliError(`--checks: ${(err as Error).message}`);
      }
      const findings = await preflightLocal({ root: opts.root, node: opts.node, checks, podCIDR: inv?.podCIDR, serviceCIDR: inv?.serviceCIDR });
      const result = makeResult(checks, findings);
      const text = opts.format === 'json' ? JSON.stringify(result, null, 2) + '\n' : renderPreflightTable(result);
      if (opts.out) await writeFileAtomic(opts.out, text);
      else process.stdout.write(text);
      process.exitCode = result.summary.error > 0 ? EXIT.failed : EXIT.ok;
    });
  return cmd;
}
