// Simulated hosts: one network namespace per node, all joined through a router namespace, so that
// there is a path that can drop. Addresses come from 198.18.0.0/15 (RFC 2544, reserved for testing).
import { randomBytes } from 'node:crypto';
import { inNs, run } from './sys.js';

export interface TopologyNode {
  /** Node name as the inventory knows it (node1, node2, ...). */
  name: string;
  /** Network namespace name. */
  ns: string;
  /** Interface inside the node namespace. */
  ifname: string;
  address: string;
  gateway: string;
  subnet: string; // a.b.c.0/24
  /** The router-side interface name leading to this node. */
  routerIf: string;
}

export interface Topology {
  prefix: string;
  router: string;
  nodes: TopologyNode[];
}

export const MAX_NODES = 500;

/** The /24 of node i (1-based): 198.18.i.0 for i ≤ 255, then 198.19.(i-256).0. */
export function nodeSubnet(i: number): { base: string; address: string; gateway: string; subnet: string } {
  if (!Number.isInteger(i) || i < 1 || i > MAX_NODES) throw new RangeError(`node index ${i} out of range 1..${MAX_NODES}`);
  const base = i <= 255 ? `198.18.${i}` : `198.19.${i - 256}`;
  return { base, address: `${base}.2`, gateway: `${base}.1`, subnet: `${base}.0/24` };
}

/** A short prefix unique enough that parallel labs and tests never collide: cnt-<6 hex>. */
export function uniquePrefix(tag = 'cnt'): string {
  return `${tag}-${randomBytes(3).toString('hex')}`;
}

/** Describe (without creating) a topology of `count` nodes. */
export function describeTopology(prefix: string, count: number): Topology {
  const nodes: TopologyNode[] = [];
  for (let i = 1; i <= count; i++) {
    const s = nodeSubnet(i);
    nodes.push({
      name: `node${i}`,
      ns: `${prefix}-n${i}`,
      ifname: 'eth0',
      address: s.address,
      gateway: s.gateway,
      subnet: s.subnet,
      routerIf: `n${i}`,
    });
  }
  return { prefix, router: `${prefix}-r`, nodes };
}

/** Create the namespaces, veth pairs, addresses and routes. On failure, removes what it made and rethrows. */
export async function createTopology(topo: Topology, signal?: AbortSignal): Promise<void> {
  try {
    await run(['ip', 'netns', 'add', topo.router]);
    await run(inNs(topo.router, ['ip', 'link', 'set', 'lo', 'up']));
    await run(inNs(topo.router, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']));
    for (const n of topo.nodes) {
      if (signal?.aborted) return; // the caller removes what was made (it finds it by prefix)
      await run(['ip', 'netns', 'add', n.ns]);
      // A new namespace copies the host's IPv4 settings (net.core.devconf_inherit_init_net=0), so a lab
      // would differ from host to host. Set what a Kubernetes node has: forwarding on, and no reverse-path
      // filtering unless a test or fault turns it on (before eth0 exists, which copies `default`).
      await run(inNs(n.ns, ['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0']));
      await run(['ip', 'link', 'add', n.ifname, 'netns', n.ns, 'type', 'veth', 'peer', 'name', n.routerIf, 'netns', topo.router]);
      await run(inNs(n.ns, ['ip', 'link', 'set', 'lo', 'up']));
      await run(inNs(n.ns, ['ip', 'addr', 'add', `${n.address}/24`, 'dev', n.ifname]));
      await run(inNs(n.ns, ['ip', 'link', 'set', n.ifname, 'up']));
      await run(inNs(topo.router, ['ip', 'addr', 'add', `${n.gateway}/24`, 'dev', n.routerIf]));
      await run(inNs(topo.router, ['ip', 'link', 'set', n.routerIf, 'up']));
      await run(inNs(n.ns, ['ip', 'route', 'add', 'default', 'via', n.gateway]));
    }
  } catch (err) {
    await destroyTopology(topo);
    throw err;
  }
}

/** Namespaces whose names start with `prefix-`. */
export async function listNamespaces(prefix: string): Promise<string[]> {
  const { stdout } = await run(['ip', 'netns', 'list'], { allowFail: true });
  return stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(`${prefix}-`));
}

/**
 * Remove every namespace of the topology (found by prefix, so a half-built one goes too), ending the
 * processes still running inside them first: by pid, as `ip netns pids` lists them.
 */
export async function destroyTopology(topo: { prefix: string }): Promise<{ namespaces: number; processes: number }> {
  const names = await listNamespaces(topo.prefix);
  let processes = 0;
  for (const ns of names) {
    const { stdout } = await run(['ip', 'netns', 'pids', ns], { allowFail: true });
    for (const pid of stdout.split(/\s+/).filter(Boolean).map(Number)) {
      if (pid > 1 && pid !== process.pid) {
        try {
          process.kill(pid, 'SIGKILL');
          processes++;
        } catch {
          /* already gone */
        }
      }
    }
  }
  for (const ns of names) await run(['ip', 'netns', 'del', ns], { allowFail: true });
  return { namespaces: names.length, processes };
}
