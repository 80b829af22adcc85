// Reverse-path filtering as the kernel configures and counts it: the rp_filter sysctls (the value in
// force on an interface is max(conf/all, conf/IF): 0 off, 1 strict, 2 loose) and the TcpExt
// IPReversePathFilter counter of /proc/net/netstat (packets the check dropped). Both are per network
// namespace, read through /proc of the responder's own namespace. Parsers pure; readers never throw.
import { readFile } from 'node:fs/promises';

/** The rp_filter mode in force on an interface: max(all, interface) (ip-sysctl.rst). */
export function effectiveRpFilter(all: number | null, iface: number | null): number | null {
  if (all === null && iface === null) return null;
  return Math.max(all ?? 0, iface ?? 0);
}

export const rpFilterName = (v: number | null): string => (v === 1 ? 'strict' : v === 2 ? 'loose' : v === 0 ? 'off' : 'unknown');

/** One counter from /proc/net/netstat's "TcpExt:" header/value line pairs, or null when absent. */
export function parseNetstatCounter(text: string, section: string, name: string): number | null {
  const lines = text.split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    const head = lines[i]!.trim().split(/\s+/);
    const vals = lines[i + 1]!.trim().split(/\s+/);
    if (head[0] !== `${section}:` || vals[0] !== `${section}:`) continue;
    const at = head.indexOf(name);
    if (at <= 0 || at >= vals.length) return null;
    const n = Number(vals[at]);
    return Number.isFinite(n) ? n : null;
  }
  return null;
}

const IFNAME = /^[A-Za-z0-9_.:@-]{1,15}$/;

async function readInt(path: string): Promise<number | null> {
  try {
    const n = Number((await readFile(path, 'utf8')).trim());
    return Number.isInteger(n) ? n : null;
  } catch {
    return null;
  }
}

/** rp_filter in force on `ifname` (null when the sysctls cannot be read, or the name is not an interface's). */
export async function readRpFilter(ifname: string): Promise<number | null> {
  if (!IFNAME.test(ifname) || ifname === '.' || ifname === '..') return null;
  const [all, iface] = await Promise.all([readInt('/proc/sys/net/ipv4/conf/all/rp_filter'), readInt(`/proc/sys/net/ipv4/conf/${ifname}/rp_filter`)]);
  return iface === null ? null : effectiveRpFilter(all, iface);
}

/** TcpExtIPReversePathFilter now (null when unreadable). */
export async function readRpFilterDrops(): Promise<number | null> {
  try {
    return parseNetstatCounter(await readFile('/proc/net/netstat', 'utf8'), 'TcpExt', 'IPReversePathFilter');
  } catch {
    return null;
  }
}
