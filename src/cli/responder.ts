// `calico-nettest responder`: run on every node; witnesses probes and sends this node's probes on request.
import { Command, Option } from 'commander';
import { CATALOGUE, DEFAULT_CHECKS, checkList, parseCheckList } from '../checks/catalogue.js';
import { DEFAULT_CONTROL_PORT, isIPv4 } from '../control/protocol.js';
import { loadNative } from '../native.js';
import { startResponder } from '../responder/responder.js';
import { loadSecret } from '../secret.js';
import type { CheckId } from '../types.js';
import { CliError, parseIntOption } from './common.js';

interface ResponderCliOptions {
  listen: string;
  controlPort: number;
  secretFile: string;
  checks?: string;
  port: string[];
  user?: string;
  hold?: boolean;
  logFormat: 'text' | 'json';
}

/** --port bgp=1179 (repeatable) */
function parsePortOverrides(list: string[]): Partial<Record<CheckId, number>> {
  const out: Partial<Record<CheckId, number>> = {};
  for (const item of list) {
    const m = /^([a-z]+)=(\d{1,5})$/.exec(item.trim());
    const id = m?.[1] as CheckId | undefined;
    if (!m || !id || !(id in CATALOGUE) || CATALOGUE[id].defaultPort === null || Number(m[2]) < 1 || Number(m[2]) > 65535)
      throw new CliError(`--port ${item}: expected CHECK=PORT with a check that has a port (${checkList(', ', (d) => d.defaultPort !== null)}) and a port 1..65535`);
    out[id] = Number(m[2]);
  }
  return out;
}

export function makeResponderCommand(): Command {
  const cmd = new Command('responder')
    .summary('run on every node: witness probes, send this node\'s probes on request')
    .description(
      'Opens raw and packet sockets behind kernel filters to witness probes (whoever holds the ports: BIRD,\n' +
        'etcd, the apiserver, the kernel\'s VXLAN device, or nobody), and serves the authenticated control\n' +
        'channel the coordinator (mesh/pair/verify) talks to. It holds no port: BIRD, Typha, etcd or the\n' +
        'apiserver starting after it bind their ports as usual (a probe to a free port is answered by the\n' +
        'kernel\'s reset, which is witnessed: a pass). --hold listens on the free TCP ports instead, for a\n' +
        'node where nothing runs yet, and says so in the log.\n' +
        'Needs root, or CAP_NET_RAW + CAP_NET_ADMIN (+ CAP_NET_BIND_SERVICE for --hold of ports below 1024).',
    )
    .addOption(new Option('-l, --listen <addr>', 'this node\'s address (the one in the inventory); probes go to and from it').env('CALICO_NETTEST_LISTEN').makeOptionMandatory())
    .addOption(new Option('--control-port <n>', 'control channel TCP port').env('CALICO_NETTEST_CONTROL_PORT').argParser(parseIntOption('--control-port', 1, 65535)).default(DEFAULT_CONTROL_PORT))
    .addOption(new Option('-s, --secret-file <file>', 'file holding the shared secret').env('CALICO_NETTEST_SECRET_FILE').makeOptionMandatory())
    .addOption(new Option('-c, --checks <list>', 'checks to witness (default: all)').env('CALICO_NETTEST_CHECKS'))
    .addOption(new Option('-p, --port <check=port>', 'port override, repeatable (e.g. --port vxlan=8472)').argParser((v: string, prev: string[]) => [...prev, v]).default([]))
    .addOption(new Option('-u, --user <name>', 'drop to this user after opening the sockets, with no_new_privs and not dumpable (use a dedicated user: others of the same user can signal it)').env('CALICO_NETTEST_USER'))
    .addOption(new Option('--hold', 'listen on the checks\' free TCP ports (SYN-ACK instead of RST); nothing else can bind them until this responder stops'))
    .addOption(new Option('--no-hold', 'hold no port (the default; kept for old scripts)'))
    .addOption(new Option('--log-format <format>', 'one line per witnessed probe: text or json').choices(['text', 'json']).default('text'))
    .addHelpText(
      'after',
      `
Examples:
  head -c 32 /dev/urandom | base64 > /etc/calico-nettest/secret; chmod 600 /etc/calico-nettest/secret   # same file on every node
  sudo calico-nettest responder --listen 10.0.0.11 --secret-file /etc/calico-nettest/secret
  sudo calico-nettest responder --listen 10.0.0.11 -s secret --port vxlan=8472 --user calico-nettest --log-format json
  sudo calico-nettest responder --listen 10.0.0.11 -s secret --hold       # a node where BIRD, Typha, etcd do not run yet

Exit status: 0 after SIGTERM/SIGINT; 2 bad option, secret file, or an address not on this host, or the
control port in use (a placeholder or guessable secret too); 3 cannot open sockets (not permitted: run
as root or grant CAP_NET_RAW), or the kernel refused to drop privileges.`,
    );
  cmd.action(async (opts: ResponderCliOptions) => {
    if (!isIPv4(opts.listen)) throw new CliError(`--listen ${opts.listen}: expected this node's IPv4 address`);
    const secret = await loadSecret(opts.secretFile);
    let checks: CheckId[];
    try {
      checks = opts.checks ? parseCheckList(opts.checks) : [...DEFAULT_CHECKS];
    } catch (err) {
      throw new CliError(`--checks: ${(err as Error).message}`);
    }
    const ports = parsePortOverrides(opts.port);
    const native = loadNative();
    const r = await startResponder({
      native,
      address: opts.listen,
      controlPort: opts.controlPort,
      secret,
      checks,
      ports,
      user: opts.user,
      hold: opts.hold === true,
      logFormat: opts.logFormat,
    });
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
    await r.close();
    process.exitCode = 0;
  });
  return cmd;
}
