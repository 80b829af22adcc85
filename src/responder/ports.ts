// Who holds the checks' ports (a process via /proc, or the kernel), looked at without binding anything;
// and, only when asked (--hold), holding the free TCP ones so the kernel answers SYN-ACK instead of RST.
import { createServer, type Server, type Socket } from 'node:net';
import { readdir, readFile, readlink } from 'node:fs/promises';

export interface PortHolding {
  proto: 'tcp' | 'udp';
  port: number;
  /** 'responder' when we hold it, 'nobody' when free; otherwise who does, as far as /proc tells. */
  holder: string;
  ours: boolean;
}

export interface HeldPorts {
  holdings: PortHolding[];
  close(): Promise<void>;
}

function listenTcp(port: number, address: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const srv = createServer((sock) => {
      // A probe is half-open and never gets here; a real client is told what this is and let go.
      sock.end('calico-nettest responder holds this port for a connectivity test\n');
      sock.on('error', () => undefined);
    });
    srv.once('error', reject);
    srv.listen({ port, host: address, exclusive: true }, () => {
      srv.off('error', reject);
      resolve(srv);
    });
  });
}

/** Inode of the socket bound to `port` in /proc/net/{tcp,udp} (listening for TCP), 0 for a kernel socket. */
export function findSocketInode(procNet: string, port: number, proto: 'tcp' | 'udp'): number | null {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const line of procNet.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    const local = f[1];
    const state = f[3];
    const inode = f[9];
    if (!local || !inode) continue;
    if (!local.endsWith(`:${hexPort}`)) continue;
    if (proto === 'tcp' && state !== '0A') continue; // LISTEN
    return Number(inode);
  }
  return null;
}

/** Who holds a port: "bird (pid 812)", "the kernel (a VXLAN/WireGuard device?)", or "unknown". */
export async function whoHolds(port: number, proto: 'tcp' | 'udp'): Promise<string> {
  let inode: number | null = null;
  try {
    // The IPv6 table too: a socket on [::] (dual-stack) holds the IPv4 port as well.
    for (const f of [proto, `${proto}6`]) {
      const text = await readFile(`/proc/net/${f}`, 'utf8').catch((err: unknown) => (f === proto ? Promise.reject(err) : ''));
      inode = findSocketInode(text, port, proto);
      if (inode !== null) break;
    }
  } catch {
    return 'another process';
  }
  if (inode === null) return 'another process (not visible in /proc/net)';
  if (inode === 0) return proto === 'udp' ? 'the kernel (a VXLAN or WireGuard device)' : 'the kernel';
  const target = `socket:[${inode}]`;
  try {
    for (const pid of await readdir('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      let fds: string[];
      try {
        fds = await readdir(`/proc/${pid}/fd`);
      } catch {
        continue;
      }
      for (const fd of fds) {
        try {
          if ((await readlink(`/proc/${pid}/fd/${fd}`)) === target) {
            const comm = (await readFile(`/proc/${pid}/comm`, 'utf8')).trim();
            return `${comm} (pid ${pid})`;
          }
        } catch {
          /* gone */
        }
      }
    }
  } catch {
    /* /proc unreadable */
  }
  // A socket no process has open is the kernel's own: a VXLAN or WireGuard device binds its UDP port so.
  return proto === 'udp' ? 'the kernel (a VXLAN or WireGuard device)' : 'a process this responder cannot see (another PID namespace?)';
}

/** Who holds each port, read from /proc/net (IPv4 and IPv6 tables) without binding anything: a bind
 * to look, however brief, could make BIRD, etcd or a VXLAN device starting at that instant fail. */
export async function inspectPorts(wanted: { tcp: number[]; udp: number[] }): Promise<PortHolding[]> {
  const holdings: PortHolding[] = [];
  for (const proto of ['tcp', 'udp'] as const) {
    const tables = await Promise.all([proto, `${proto}6`].map((f) => readFile(`/proc/net/${f}`, 'utf8').catch(() => '')));
    for (const port of [...new Set(wanted[proto])]) {
      const bound = tables.some((t) => findSocketInode(t, port, proto) !== null);
      holdings.push({ proto, port, holder: bound ? await whoHolds(port, proto) : 'nobody', ours: false });
    }
  }
  return holdings;
}

/**
 * --hold: listen on every free TCP port (UDP ports are only looked at). Nothing else on the node can
 * listen on a held port until close(), which releases every one at once, synchronously, and ends
 * any connection a real client made to them.
 */
export async function holdPorts(address: string, wanted: { tcp: number[]; udp: number[] }): Promise<HeldPorts> {
  const servers: Server[] = [];
  const clients = new Set<Socket>();
  const holdings: PortHolding[] = [];
  const close = async () => {
    const closed = servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r())));
    for (const c of clients) c.destroy();
    await Promise.all(closed);
  };
  try {
    for (const port of [...new Set(wanted.tcp)]) {
      try {
        const srv = await listenTcp(port, address);
        srv.on('connection', (c) => {
          clients.add(c);
          c.on('close', () => clients.delete(c));
        });
        servers.push(srv);
        holdings.push({ proto: 'tcp', port, holder: 'responder', ours: true });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EADDRINUSE') throw err;
        holdings.push({ proto: 'tcp', port, holder: await whoHolds(port, 'tcp'), ours: false });
      }
    }
    // UDP ports are only looked at, not held: a held UDP socket would copy every datagram to this
    // process (a flood to 4789 would cost the responder as much as having no filter). A free port makes
    // the kernel answer a probe with ICMP port-unreachable, after the raw witness saw it: still a pass.
    holdings.push(...(await inspectPorts({ tcp: [], udp: wanted.udp })));
  } catch (err) {
    await close();
    throw err;
  }
  return { holdings, close };
}
