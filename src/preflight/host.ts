// Reading a host's preflight facts from files under a root directory ('/' on a node, a fixture in tests).
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FirewalldZone, HostFacts } from './findings.js';

async function text(root: string, path: string): Promise<string | null> {
  try {
    return await readFile(join(root, path), 'utf8');
  } catch {
    return null; // absent or unreadable: the fact is unknown, not false
  }
}

async function num(root: string, path: string): Promise<number | null> {
  const t = await text(root, path);
  if (t === null || !/^\s*-?\d+\s*$/.test(t)) return null;
  return Number(t.trim());
}

async function list(root: string, path: string): Promise<string[]> {
  try {
    return (await readdir(join(root, path))).sort();
  } catch {
    return [];
  }
}

/** The names in proc/<pid>/comm. */
async function processes(root: string): Promise<string[]> {
  const pids = (await list(root, 'proc')).filter((p) => /^\d+$/.test(p));
  const names = await Promise.all(pids.map((p) => text(root, `proc/${p}/comm`)));
  return [...new Set(names.filter((n): n is string => n !== null).map((n) => n.trim()))];
}

/** A firewalld zone file: `<port port="179" protocol="tcp"/>` and `<protocol value="ipip"/>`. */
export function parseFirewalldZone(name: string, xml: string): FirewalldZone {
  const ports: FirewalldZone['ports'] = [];
  for (const m of xml.matchAll(/<port\b([^>]*)\/?>/g)) {
    const port = /\bport="(\d+)(?:-(\d+))?"/.exec(m[1]!);
    const proto = /\bprotocol="(tcp|udp)"/.exec(m[1]!);
    if (!port || !proto) continue;
    const lo = Number(port[1]);
    const hi = port[2] ? Number(port[2]) : lo;
    for (let p = lo; p <= hi && p - lo < 65536; p++) ports.push({ port: p, protocol: proto[1] as 'tcp' | 'udp' });
  }
  const protocols = [...xml.matchAll(/<protocol\b[^>]*\bvalue="([^"]+)"/g)].map((m) => m[1]!);
  return { name, ports, protocols };
}

/** IPv4 routes from proc/net/route (little-endian hex destination and mask). */
export function parseProcRoute(t: string): { dest: string; dev: string }[] {
  const hexIp = (h: string) => [3, 2, 1, 0].map((i) => parseInt(h.slice(i * 2, i * 2 + 2), 16)).join('.');
  const out: { dest: string; dev: string }[] = [];
  for (const line of t.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || !/^[0-9A-Fa-f]{8}$/.test(f[1]!) || !/^[0-9A-Fa-f]{8}$/.test(f[7]!)) continue;
    const mask = parseInt(f[7]!, 16);
    let bits = 0;
    for (let m = mask; m; m >>>= 1) bits += m & 1;
    out.push({ dest: `${hexIp(f[1]!)}/${bits}`, dev: f[0]! });
  }
  return out;
}

async function interfaces(root: string): Promise<HostFacts['interfaces']> {
  const names = await list(root, 'sys/class/net');
  if (names.length === 0) return undefined;
  return Promise.all(
    names.map(async (name) => {
      const state = (await text(root, `sys/class/net/${name}/operstate`))?.trim();
      const flags = await text(root, `sys/class/net/${name}/flags`);
      // operstate 'unknown' is normal for up devices without carrier detection; IFF_UP is bit 0 of flags.
      const up = state === 'up' || (state === 'unknown' && flags !== null && (parseInt(flags, 16) & 1) === 1);
      return { name, up };
    }),
  );
}

export async function readHostFacts(root = '/'): Promise<HostFacts> {
  const nmFiles = ['etc/NetworkManager/NetworkManager.conf', ...(await list(root, 'etc/NetworkManager/conf.d')).filter((f) => f.endsWith('.conf')).map((f) => `etc/NetworkManager/conf.d/${f}`)];
  const nmConfig: HostFacts['nmConfig'] = [];
  for (const file of nmFiles) {
    const t = await text(root, file);
    if (t !== null) nmConfig.push({ file: `/${file}`, text: t });
  }
  const fwConf = await text(root, 'etc/firewalld/firewalld.conf');
  const defaultZone = fwConf ? (/^\s*DefaultZone\s*=\s*(\S+)/m.exec(fwConf)?.[1] ?? null) : null;
  const zones: FirewalldZone[] = [];
  for (const dir of ['usr/lib/firewalld/zones', 'etc/firewalld/zones']) {
    for (const f of (await list(root, dir)).filter((x) => x.endsWith('.xml'))) {
      const t = await text(root, `${dir}/${f}`);
      if (t === null) continue;
      const z = parseFirewalldZone(f.slice(0, -4), t);
      const i = zones.findIndex((x) => x.name === z.name);
      if (i >= 0) zones[i] = z; // /etc overrides /usr/lib, as in firewalld
      else zones.push(z);
    }
  }
  const route = await text(root, 'proc/net/route');
  return {
    kernelRelease: (await text(root, 'proc/sys/kernel/osrelease'))?.trim() ?? null,
    rpFilterAll: await num(root, 'proc/sys/net/ipv4/conf/all/rp_filter'),
    ipForward: await num(root, 'proc/sys/net/ipv4/ip_forward'),
    processes: await processes(root),
    nmConfig,
    firewalldDefaultZone: defaultZone,
    firewalldZones: zones,
    conntrackCount: await num(root, 'proc/sys/net/netfilter/nf_conntrack_count'),
    conntrackMax: await num(root, 'proc/sys/net/netfilter/nf_conntrack_max'),
    interfaces: await interfaces(root),
    routes: route ? parseProcRoute(route) : [],
  };
}
