// Helper process (not a benchmark): holds raw TCP + raw UDP (+ packet) sockets in a namespace with the
// filter given, counts what arrives in a callback, and on SIGTERM (or after --ms) prints one JSON line
// { received: {tcp, udp, packet}, stats: {...}, cpuMs } and exits. Bounded by --ms.
//
//   node bench/receiver.mjs --netns /run/netns/NS --bind ADDR --filter all|udpprobe
//        [--sockets tcp,udp,packet] [--ms 30000] [--batch 64]
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';

const { values: a } = parseArgs({
  options: {
    netns: { type: 'string' },
    bind: { type: 'string' },
    filter: { type: 'string', default: 'all' },
    sockets: { type: 'string', default: 'tcp,udp,packet' },
    ms: { type: 'string', default: '30000' },
    batch: { type: 'string', default: '64' },
    ports: { type: 'string', default: '4789,51820' },
  },
});
const { loadNative } = await import('../dist/native.js');
const bpf = await import('../dist/packets/bpf.js');
const native = loadNative();
const program = a.filter === 'udpprobe' ? bpf.udpProbeToPorts(a.ports.split(',').map(Number)) : bpf.acceptAll();

const socks = {};
const received = {};
for (const kind of a.sockets.split(',')) {
  const opts =
    kind === 'packet'
      ? { kind: 'packet', netns: a.netns, rcvbuf: 4 << 20 }
      : { kind: 'raw', protocol: kind === 'tcp' ? 6 : 17, bindAddress: a.bind, netns: a.netns, rcvbuf: 4 << 20 };
  const s = native.open(opts);
  s.attachFilter(program);
  received[kind] = 0;
  let bytes = 0;
  s.start(
    (packets) => {
      received[kind] += packets.length;
      for (const p of packets) bytes += p.data.length; // touch every packet, as a witness would
    },
    (err) => console.error(`receiver ${kind}: ${err.message}`),
    Number(a.batch),
  );
  socks[kind] = s;
}
process.stderr.write('receiver: ready\n');

/** Kernel's own drop counters for raw sockets in this namespace (/proc/net/raw, last column). */
function kernelRawDrops() {
  try {
    const lines = readFileSync('/proc/self/net/raw', 'utf8').trim().split('\n').slice(1);
    return lines.reduce((n, l) => n + Number(l.trim().split(/\s+/).pop() || 0), 0);
  } catch {
    return null;
  }
}

function finish() {
  const stats = { kernelRawDrops: kernelRawDrops() };
  for (const [k, s] of Object.entries(socks)) {
    stats[k] = s.stats();
    s.close();
  }
  const u = process.cpuUsage();
  console.log(JSON.stringify({ received, stats, cpuMs: (u.user + u.system) / 1000 }));
  process.exit(0);
}
process.on('SIGTERM', finish);
process.on('SIGINT', finish);
setTimeout(finish, Math.min(Number(a.ms), 120_000));
