// Kernel features decided functionally: create each link/set/table in a scratch namespace of our own,
// falling back to the kernel config (/proc/config.gz, /boot/config-*) and /sys/module when we cannot.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { run } from '../lab/sys.js';
import type { CheckId } from '../types.js';
import type { Finding, PreflightContext } from './findings.js';

export type FeatureState = 'present' | 'missing' | 'unknown';

/** One kernel feature Calico needs: how to try it, its config symbol, what breaks without it. */
interface Feature {
  module: string;
  config: string;
  breaks: string;
  /** The check that needs it (missing is then an error when that check runs). */
  check?: CheckId;
  /** argv run inside the scratch namespace; exit 0 means the kernel can do it. */
  tryArgv?: string[];
  needs?: string;
}

export const FEATURES: readonly Feature[] = [
  { module: 'ipip', config: 'CONFIG_NET_IPIP', check: 'ipip', breaks: 'IP-in-IP encapsulation (IPIP pools, tunl0)', tryArgv: ['ip', 'link', 'add', 'cntpf0', 'type', 'ipip'] },
  { module: 'vxlan', config: 'CONFIG_VXLAN', check: 'vxlan', breaks: 'VXLAN encapsulation (vxlan.calico)', tryArgv: ['ip', 'link', 'add', 'cntpf1', 'type', 'vxlan', 'id', '4096', 'dstport', '4789'] },
  { module: 'wireguard', config: 'CONFIG_WIREGUARD', check: 'wireguard', breaks: 'WireGuard encryption (wireguard.cali)', tryArgv: ['ip', 'link', 'add', 'cntpf2', 'type', 'wireguard'] },
  { module: 'ip_set', config: 'CONFIG_IP_SET', breaks: 'Felix\'s iptables dataplane (policy uses ipsets)', tryArgv: ['ipset', 'create', 'cntpf', 'hash:ip'], needs: 'ipset' },
  { module: 'nf_tables', config: 'CONFIG_NF_TABLES', breaks: 'Felix\'s nftables dataplane and iptables-nft', tryArgv: ['nft', 'add', 'table', 'inet', 'cntpf'], needs: 'nft' },
  { module: 'ip_tables', config: 'CONFIG_IP_NF_IPTABLES', breaks: 'Felix\'s iptables dataplane (legacy backend)' },
  { module: 'ip6_tables', config: 'CONFIG_IP6_NF_IPTABLES', breaks: 'IPv6 policy (legacy iptables backend)' },
  { module: 'ipt_REJECT', config: 'CONFIG_IP_NF_TARGET_REJECT', breaks: 'policy Deny actions that reject' },
  { module: 'xt_rpfilter', config: 'CONFIG_IP_NF_MATCH_RPFILTER', breaks: 'Felix\'s anti-spoofing RPF rules' },
  { module: 'xt_set', config: 'CONFIG_NETFILTER_XT_SET', breaks: 'policy rules that match ipsets' },
  { module: 'nf_conntrack_netlink', config: 'CONFIG_NF_CT_NETLINK', breaks: 'Felix\'s conntrack cleanup of deleted pods\' flows' },
  { module: 'xt_addrtype', config: 'CONFIG_NETFILTER_XT_MATCH_ADDRTYPE', breaks: 'NAT-outgoing and host endpoint rules' },
  { module: 'xt_conntrack', config: 'CONFIG_NETFILTER_XT_MATCH_CONNTRACK', breaks: 'stateful policy (established/related)' },
  { module: 'xt_ipvs', config: 'CONFIG_NETFILTER_XT_MATCH_IPVS', breaks: 'policy with kube-proxy in IPVS mode' },
  { module: 'xt_mark', config: 'CONFIG_NETFILTER_XT_MARK', breaks: 'Felix\'s packet marks (policy and NAT)' },
  { module: 'xt_multiport', config: 'CONFIG_NETFILTER_XT_MATCH_MULTIPORT', breaks: 'policy rules with port lists' },
  { module: 'xt_u32', config: 'CONFIG_NETFILTER_XT_MATCH_U32', breaks: 'IP-in-IP/VXLAN source checks in policy' },
  { module: 'xt_bpf', config: 'CONFIG_NETFILTER_XT_MATCH_BPF', breaks: 'BPF-assisted iptables rules' },
  { module: 'sctp', config: 'CONFIG_IP_SCTP', breaks: 'policy on SCTP ports' },
  { module: 'vfio-pci', config: 'CONFIG_VFIO_PCI', breaks: 'VPP dataplane' },
];

/** The kernel config as symbol → y/m/n, from /proc/config.gz or /boot/config-<release>; null when neither. */
export async function readKernelConfig(root: string, release: string | null): Promise<Map<string, string> | null> {
  let text: string | null = null;
  try {
    text = gunzipSync(await readFile(join(root, 'proc/config.gz'))).toString('utf8');
  } catch {
    if (release) text = await readFile(join(root, `boot/config-${release}`), 'utf8').catch(() => null);
  }
  if (text === null) return null;
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^(CONFIG_\w+)=(\S+)$/gm)) out.set(m[1]!, m[2]!);
  return out;
}

/** What the config says: built in or a module → present, unset → missing (a module file may still be absent). */
export function stateFromConfig(cfg: Map<string, string> | null, symbol: string): FeatureState {
  if (!cfg) return 'unknown';
  const v = cfg.get(symbol);
  return v === 'y' || v === 'm' ? 'present' : 'missing';
}

async function have(cmd: string): Promise<boolean> {
  return (await run(['sh', '-c', `command -v ${cmd}`], { allowFail: true })).code === 0;
}

/**
 * Try each feature in a scratch namespace (`ip netns add cnt-pf-<pid>-<random>`, deleted in every case).
 * Returns null when no namespace can be made (not root, no iproute2): the caller falls back to the config.
 */
export async function tryFeatures(): Promise<Map<string, { state: FeatureState; how: string }> | null> {
  const ns = `cnt-pf-${process.pid}-${randomBytes(3).toString('hex')}`;
  if ((await run(['ip', 'netns', 'add', ns], { allowFail: true }).catch(() => ({ code: -1 }))).code !== 0) return null;
  const out = new Map<string, { state: FeatureState; how: string }>();
  try {
    for (const f of FEATURES) {
      if (!f.tryArgv) continue;
      if (f.needs && !(await have(f.needs))) continue;
      const r = await run(['ip', 'netns', 'exec', ns, ...f.tryArgv], { allowFail: true, timeoutMs: 10_000 });
      out.set(f.module, { state: r.code === 0 ? 'present' : 'missing', how: `\`${f.tryArgv.join(' ')}\` in a scratch namespace ${r.code === 0 ? 'worked' : `failed: ${r.stderr.trim().split('\n')[0] ?? `exit ${r.code}`}`}` });
    }
  } finally {
    await run(['ip', 'netns', 'delete', ns], { allowFail: true }); // its links, sets and tables go with it
  }
  return out;
}

export interface KernelFacts {
  tried: Map<string, { state: FeatureState; how: string }> | null;
  config: Map<string, string> | null;
  /** Names in /sys/module (loaded modules and built-ins with parameters). */
  sysModules: string[];
}

/** Pure: findings for missing kernel features; an error only where a check the run needs depends on it. */
export function kernelModuleFindings(k: KernelFacts, ctx: PreflightContext): Finding[] {
  const out: Finding[] = [];
  for (const f of FEATURES) {
    const tried = k.tried?.get(f.module);
    let state: FeatureState = tried?.state ?? stateFromConfig(k.config, f.config);
    let how = tried?.how ?? (k.config ? `${f.config} is not set in the kernel config` : '');
    if (!tried && state !== 'present' && k.sysModules.includes(f.module.replace(/-/g, '_'))) { state = 'present'; }
    if (state !== 'missing') continue;
    // A functional failure is decisive; the config says the same then, and we add it as a second fact.
    if (tried && k.config) how += `; ${f.config}=${k.config.get(f.config) ?? 'unset'}`;
    const needed = f.check !== undefined && ctx.checks.includes(f.check);
    out.push({
      node: ctx.node, id: 'kernel-module-missing', severity: needed ? 'error' : 'warning',
      detail: `kernel lacks ${f.module}: ${how}${f.check && !needed ? ` (the ${f.check} check is not in this run)` : ''}`,
      breaks: f.breaks,
      fix: `use a kernel with ${f.config}=y or =m (and load it: modprobe ${f.module})${f.check === 'ipip' ? ', or use VXLAN encapsulation instead of IP-in-IP' : ''}`,
    });
  }
  return out;
}

/** Count of `-A` rules in each iptables backend's save output (null: that backend's tool is absent). */
export async function iptablesRuleCounts(): Promise<{ legacy: number | null; nft: number | null }> {
  const count = async (cmd: string) => {
    const r = await run([cmd], { allowFail: true }).catch(() => null);
    if (!r || r.code !== 0) return null;
    return r.stdout.split('\n').filter((l) => l.startsWith('-A ')).length;
  };
  return { legacy: await count('iptables-legacy-save'), nft: await count('iptables-nft-save') };
}

export function iptablesBackendFindings(c: { legacy: number | null; nft: number | null }, ctx: PreflightContext): Finding[] {
  if (!c.legacy || !c.nft) return [];
  return [{
    node: ctx.node, id: 'iptables-backend-mismatch', severity: 'warning',
    detail: `rules in both iptables backends: ${c.legacy} in legacy (iptables-legacy-save), ${c.nft} in nft (iptables-nft-save)`,
    breaks: 'policy: Felix programs one backend (FELIX_IPTABLESBACKEND), and rules in the other still drop or accept packets behind its back',
    fix: 'move every rule to one backend (the one `iptables -V` names) and flush the other; or set FELIX_IPTABLESBACKEND to the one in use',
  }];
}
