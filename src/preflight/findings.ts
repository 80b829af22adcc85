// Preflight findings: pure checks from a node's recorded host facts to `{ node, id, severity, ... }`.
import { CATALOGUE } from '../checks/catalogue.js';
import { CHECK_IDS, type CheckId } from '../types.js';

export type Severity = 'error' | 'warning' | 'info';

/** One thing found on a node that breaks (or may break) a Calico feature. Ids are contract: add, never rename. */
export interface Finding {
  node: string;
  id: string;
  severity: Severity;
  /** What was seen, with the facts (values, files) it came from. */
  detail: string;
  /** The Calico feature that fails because of it. */
  breaks: string;
  /** What to do about it. */
  fix: string;
}

export const FINDING_IDS = [
  'kernel-too-old',
  'kernel-module-missing',
  'iptables-backend-mismatch',
  'rp-filter-loose',
  'ip-forward-disabled',
  'networkmanager-manages-calico',
  'firewalld-active',
  'conntrack-near-full',
  'mtu-iface-unmatched',
  'pod-cidr-overlap',
  'vxlan-checksum-offload',
  'preflight-unavailable',
] as const;
export type FindingId = (typeof FINDING_IDS)[number];

/** A firewalld zone as its XML file says: open ports and protocols. */
export interface FirewalldZone {
  name: string;
  ports: { port: number; protocol: 'tcp' | 'udp' }[];
  protocols: string[];
}

/** What preflight reads from a host; every field optional: null/undefined means "could not tell". */
export interface HostFacts {
  /** `uname -r` (from proc/sys/kernel/osrelease). */
  kernelRelease?: string | null;
  rpFilterAll?: number | null;
  ipForward?: number | null;
  /** Names of running processes (proc/<pid>/comm). */
  processes?: string[];
  /** NetworkManager keyfile config text, by file. */
  nmConfig?: { file: string; text: string }[];
  firewalldDefaultZone?: string | null;
  firewalldZones?: FirewalldZone[];
  conntrackCount?: number | null;
  conntrackMax?: number | null;
  /** Interfaces and whether they are up. */
  interfaces?: { name: string; up: boolean }[];
  /** IPv4 routes: destination CIDR and device. */
  routes?: { dest: string; dev: string }[];
  /** The node's own addresses (the inventory's, and the host's where known). */
  addresses?: string[];
}

export interface PreflightContext {
  node: string;
  /** The checks the run needs (the inventory's); an error only for what they need. */
  checks: readonly CheckId[];
  podCIDR?: string;
  serviceCIDR?: string;
}

/** Felix's default MTUIfacePattern. */
export const MTU_IFACE_PATTERN = /^((en|wl|ww|sl|ib)[Pcopsvx].*|(eth|wlan|wwan).*)/;

/** Interfaces Calico creates that NetworkManager must leave alone (Calico's requirements page). */
export const CALICO_IFACES = ['cali*', 'tunl*', 'vxlan.calico', 'vxlan-v6.calico', 'wireguard.cali'] as const;

export function parseKernelVersion(release: string): [number, number] | null {
  const m = /^(\d+)\.(\d+)/.exec(release.trim());
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/** The interface patterns NetworkManager's keyfile config marks unmanaged (`unmanaged-devices=interface-name:x;...`). */
export function nmUnmanagedPatterns(configs: readonly { text: string }[]): string[] {
  const out: string[] = [];
  for (const { text } of configs) {
    let section = '';
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (line.startsWith('#') || line.startsWith(';') || !line) continue;
      const sec = /^\[(.+)\]$/.exec(line);
      if (sec) { section = sec[1]!.trim(); continue; }
      const kv = /^unmanaged-devices\s*=\s*(.*)$/.exec(line);
      if (section !== 'keyfile' || !kv) continue;
      for (const item of kv[1]!.split(/[;,]/)) {
        const m = /^\s*interface-name:(.+?)\s*$/.exec(item);
        if (m) out.push(m[1]!.replace(/^=/, ''));
      }
    }
  }
  return out;
}

/** Does NetworkManager glob `pattern` cover every name `calico` (itself maybe a glob like cali*) stands for? */
export function nmPatternCovers(pattern: string, calico: string): boolean {
  if (pattern === calico) return true;
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  // A glob covers a glob when it matches the glob's fixed prefix followed by anything.
  if (calico.endsWith('*')) return pattern.endsWith('*') && calico.startsWith(pattern.slice(0, -1));
  return re.test(calico);
}

/** Ports (and protocols) Calico needs open for these checks. */
export function requiredOpenings(checks: readonly CheckId[], ports?: Partial<Record<CheckId, number | null>>): { check: CheckId; port: number | null; protocol: string }[] {
  return checks.map((c) => {
    const e = CATALOGUE[c];
    const port = ports?.[c] ?? e.defaultPort;
    return { check: c, port, protocol: c === 'ipip' ? 'ipip' : e.transport };
  });
}

// ---- CIDR arithmetic (IPv4) ---------------------------------------------------------------------

export function parseCidr4(cidr: string): { base: number; bits: number } | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/.exec(cidr.trim());
  if (!m) return null;
  const octets = m.slice(1, 5).map(Number);
  if (octets.some((o) => o > 255)) return null;
  const bits = m[5] === undefined ? 32 : Number(m[5]);
  if (bits > 32) return null;
  const ip = ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return { base: (ip & mask) >>> 0, bits };
}

export function cidrsOverlap(a: string, b: string): boolean {
  const x = parseCidr4(a);
  const y = parseCidr4(b);
  if (!x || !y) return false;
  const bits = Math.min(x.bits, y.bits);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return ((x.base & mask) >>> 0) === ((y.base & mask) >>> 0);
}

// ---- the checks ---------------------------------------------------------------------------------

type Check = (f: HostFacts, ctx: PreflightContext) => Omit<Finding, 'node'>[];

const kernelTooOld: Check = (f) => {
  const v = f.kernelRelease ? parseKernelVersion(f.kernelRelease) : null;
  if (!v || v[0] > 3 || (v[0] === 3 && v[1] >= 10)) return [];
  return [{ id: 'kernel-too-old', severity: 'error', detail: `kernel ${f.kernelRelease!.trim()} is older than 3.10`, breaks: 'Calico as a whole (Felix needs Linux 3.10 or later)', fix: 'upgrade the kernel to 3.10 or later (Calico\'s supported distributions ship far newer)' }];
};

const rpFilterLoose: Check = (f) =>
  f.rpFilterAll === 2
    ? [{ id: 'rp-filter-loose', severity: 'error', detail: 'net.ipv4.conf.all.rp_filter=2 (loose reverse-path filtering)', breaks: 'Felix (it refuses to start with loose RPF unless IgnoreLooseRPF is set), and with it every Calico feature on this node', fix: 'sysctl -w net.ipv4.conf.all.rp_filter=1 (and persist it in /etc/sysctl.d), or set FELIX_IGNORELOOSERPF=true if you accept the spoofing risk' }]
    : [];

const ipForwardDisabled: Check = (f) =>
  f.ipForward === 0
    ? [{ id: 'ip-forward-disabled', severity: 'error', detail: 'net.ipv4.ip_forward=0', breaks: 'pod networking: the node does not forward packets to and from its pods', fix: 'sysctl -w net.ipv4.ip_forward=1 and persist it in /etc/sysctl.d (calico-node sets it at start, but something reset it)' }]
    : [];

const networkManagerManagesCalico: Check = (f) => {
  if (!(f.processes ?? []).includes('NetworkManager')) return [];
  const patterns = nmUnmanagedPatterns(f.nmConfig ?? []);
  const managed = CALICO_IFACES.filter((c) => !patterns.some((p) => nmPatternCovers(p, c)));
  if (managed.length === 0) return [];
  const files = (f.nmConfig ?? []).map((c) => c.file);
  return [{
    id: 'networkmanager-manages-calico', severity: 'warning',
    detail: `NetworkManager is running and its keyfile config (${files.length ? files.join(', ') : 'no files in conf.d'}) does not mark ${managed.join(', ')} unmanaged`,
    breaks: 'pod and tunnel interfaces: NetworkManager may take over or reset Calico\'s routes and interfaces',
    fix: `add /etc/NetworkManager/conf.d/calico.conf with\n[keyfile]\nunmanaged-devices=${CALICO_IFACES.map((c) => `interface-name:${c}`).join(';')}\nthen: systemctl reload NetworkManager`,
  }];
};

const firewalldActive: Check = (f, ctx) => {
  if (!(f.processes ?? []).includes('firewalld')) return [];
  const zoneName = f.firewalldDefaultZone ?? 'public';
  const zone = (f.firewalldZones ?? []).find((z) => z.name === zoneName);
  const closed = requiredOpenings(ctx.checks).filter((r) =>
    r.protocol === 'ipip' ? !zone?.protocols.includes('ipip') && !zone?.protocols.includes('4') : !zone?.ports.some((p) => p.port === r.port && p.protocol === r.protocol),
  );
  const list = closed.map((r) => (r.protocol === 'ipip' ? 'ipip (IP protocol 4)' : `${r.port}/${r.protocol} (${r.check})`));
  return [{
    id: 'firewalld-active', severity: closed.length ? 'warning' : 'info',
    detail: closed.length ? `firewalld is running; its zone ${zoneName} does not open ${list.join(', ')}` : `firewalld is running; its zone ${zoneName} opens every port the checks need`,
    breaks: closed.length ? closed.map((r) => r.check).join(', ') : 'nothing found, but firewalld may conflict with Felix\'s own rules',
    fix: closed.length
      ? closed.map((r) => (r.protocol === 'ipip' ? `firewall-cmd --permanent --zone=${zoneName} --add-protocol=ipip` : `firewall-cmd --permanent --zone=${zoneName} --add-port=${r.port}/${r.protocol}`)).join('; ') + '; firewall-cmd --reload (or disable firewalld as Calico recommends)'
      : 'none needed; Calico recommends disabling firewalld where Felix manages the host\'s rules',
  }];
};

const conntrackNearFull: Check = (f) => {
  const { conntrackCount: n, conntrackMax: max } = f;
  if (n == null || max == null || max <= 0 || n < 0.9 * max) return [];
  return [{ id: 'conntrack-near-full', severity: n >= max ? 'error' : 'warning', detail: `conntrack table holds ${n} of ${max} entries (${Math.round((100 * n) / max)}%)`, breaks: 'new connections of every kind (a full table drops them: "nf_conntrack: table full")', fix: `raise net.netfilter.nf_conntrack_max (e.g. sysctl -w net.netfilter.nf_conntrack_max=${max * 2}) or find what opens so many flows` }];
};

const mtuIfaceUnmatched: Check = (f) => {
  if (!f.interfaces) return [];
  const up = f.interfaces.filter((i) => i.up && i.name !== 'lo');
  if (up.some((i) => MTU_IFACE_PATTERN.test(i.name))) return [];
  return [{ id: 'mtu-iface-unmatched', severity: 'warning', detail: `no up interface matches Felix's default MTUIfacePattern ${MTU_IFACE_PATTERN.source} (up: ${up.map((i) => i.name).join(', ') || 'none'})`, breaks: 'MTU auto-detection: Felix then assumes 1460 and may pick the wrong tunnel MTU', fix: 'set FELIX_MTUIFACEPATTERN to match the host interface (e.g. ^bond0$), or set the MTU explicitly in the Calico installation' }];
};

const podCidrOverlap: Check = (f, ctx) => {
  if (!ctx.podCIDR) return [];
  const out: Omit<Finding, 'node'>[] = [];
  const pod = ctx.podCIDR;
  const hits: string[] = [];
  if (ctx.serviceCIDR && cidrsOverlap(pod, ctx.serviceCIDR)) hits.push(`the service range ${ctx.serviceCIDR}`);
  for (const a of f.addresses ?? []) if (cidrsOverlap(pod, a)) hits.push(`the node address ${a}`);
  for (const r of f.routes ?? []) if (r.dest !== '0.0.0.0/0' && cidrsOverlap(pod, r.dest)) hits.push(`the route ${r.dest} dev ${r.dev}`);
  if (hits.length) out.push({ id: 'pod-cidr-overlap', severity: 'error', detail: `the pod range ${pod} overlaps ${hits.join(', ')}`, breaks: 'pod networking: traffic to the overlapped addresses goes to pods (or the other way)', fix: 'choose a pod IP pool (CALICO_IPV4POOL_CIDR / Installation ipPools) that overlaps no host network, route or service range' });
  return out;
};

export const HOST_CHECKS: Check[] = [kernelTooOld, rpFilterLoose, ipForwardDisabled, networkManagerManagesCalico, firewalldActive, conntrackNearFull, mtuIfaceUnmatched, podCidrOverlap];

/** All findings for one node's host facts. */
export function evaluateHost(facts: HostFacts, ctx: PreflightContext): Finding[] {
  return HOST_CHECKS.flatMap((c) => c(facts, ctx)).map((f) => ({ node: ctx.node, ...f }));
}

export const ALL_CHECKS: readonly CheckId[] = CHECK_IDS;
