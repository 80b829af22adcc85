// Options of mesh/pair/verify that reach the nodes for the user: --ssh starts the responders over SSH
// for the run (and removes them after), --kubernetes discovers the inventory from the cluster.
// The work itself is src/remote/prepare.ts.
import { Option, type Command } from 'commander';
import { DEFAULT_K8S_NAMESPACE, type RemoteOptions } from '../remote/prepare.js';
import { DEFAULT_REMOTE_DIR } from '../remote/ssh.js';
import { parseIntOption } from './common.js';

export { DEFAULT_K8S_NAMESPACE };

export interface RemoteCliOptions extends RemoteOptions {
  inventory?: string;
  quiet?: boolean;
}

export function addRemoteOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--ssh', 'start a responder on every node over SSH for this run (fresh secret; stopped and removed afterwards); needs `npm run bundle`').env('CALICO_NETTEST_SSH'))
    .addOption(new Option('--ssh-user <user>', 'SSH login (root, or a user with passwordless sudo); default: your ssh config').env('CALICO_NETTEST_SSH_USER'))
    .addOption(new Option('--ssh-key <file>', 'SSH private key; default: your ssh config and agent').env('CALICO_NETTEST_SSH_KEY'))
    .addOption(new Option('--ssh-port <n>', 'SSH port; default: your ssh config, else 22').env('CALICO_NETTEST_SSH_PORT').argParser(parseIntOption('--ssh-port', 1, 65535)))
    .addOption(
      new Option('--ssh-option <opt>', 'extra ssh -o option, repeatable (e.g. StrictHostKeyChecking=accept-new, UserKnownHostsFile=FILE, ProxyJump=HOST)')
        .env('CALICO_NETTEST_SSH_OPTION')
        .argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]),
    )
    .addOption(new Option('--ssh-dir <dir>', 'directory on the nodes for the copied build (not a noexec mount)').env('CALICO_NETTEST_SSH_DIR').default(DEFAULT_REMOTE_DIR))
    .addOption(new Option('--ssh-parallel <n>', 'nodes set up over SSH at once').argParser(parseIntOption('--ssh-parallel', 1, 1024)).default(32))
    .addOption(new Option('--kubernetes', 'discover nodes, roles, the apiserver and the responder DaemonSet from the cluster (instead of --inventory)').env('CALICO_NETTEST_KUBERNETES'))
    .addOption(new Option('--kubeconfig <file>', 'kubeconfig file; default: KUBECONFIG, else ~/.kube/config'))
    .addOption(new Option('--context <name>', 'kubeconfig context; default: the current one').env('CALICO_NETTEST_CONTEXT'))
    .addOption(new Option('--namespace <ns>', 'namespace of the calico-nettest DaemonSet').env('CALICO_NETTEST_NAMESPACE').default(DEFAULT_K8S_NAMESPACE));
}
