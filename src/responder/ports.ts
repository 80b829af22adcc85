// Holding the checks' ports where nobody else does (so the kernel answers SYN-ACK and sends no ICMP
// port-unreachable), and finding who holds them where we cannot: a process (via /proc) or the kernel.
import { createServer, type Server } from 'node:net';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
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

function bindUdp(port: number, address: string): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const s = createSocket({ type: 'udp4', reuseAddr: false });
    s.once('error', reject);
    s.on('message', () => undefined); // discard: the witness already saw it
    s.bind({ port, address, exclusive: true }, () => {
      s.off('error', reject);
      s.on('error', () => undefined);
      resolve(s);
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
    inode = findSocketInode(await readFile(`/proc/net/${proto}`, 'utf8'), port, proto);
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

/** Hold every free TCP port and look at every UDP port; where one is taken (EADDRINUSE), say who holds it. */
export async function holdPorts(address: string, wanted: { tcp: number[]; udp: number[] }): Promise<HeldPorts> {
  const servers: Server[] = [];
  const holdings: PortHolding[] = [];
  const close = async () => {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  };
  try {
    for (const port of [...new Set(wanted.tcp)]) {
      try {
        servers.push(await listenTcp(port, address));
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
    for (const port of [...new Set(wanted.udp)]) {
      try {
        const probe = await bindUdp(port, address);
        probe.close();
        holdings.push({ proto: 'udp', port, holder: 'nobody', ours: false });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EADDRINUSE') throw err;
        holdings.push({ proto: 'udp', port, holder: await whoHolds(port, 'udp'), ours: false });
      }
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { holdings, close };
}
