// Helper process (not a benchmark): sends a bounded, paced flood of IPv4 packets from a raw
// IPPROTO_RAW socket (IP_HDRINCL) opened in the namespace given, then prints one JSON line
// { sent, errors, ms } and exits. Bounded by --ms and --max; never runs unbounded.
//
//   node bench/flood.mjs --netns /run/netns/NS --src A --dst B --kind nonprobe|udpprobe|ack
//        [--rate PPS] [--ms 5000] [--max 1000000] [--ports 179,5473,2379,6443] [--uports 4789,51820]
//
// kind nonprobe: TCP SYNs (random seq, random source port) to the TCP ports and UDP datagrams
//   without the probe magic to the UDP ports, interleaved 2:1 — "real" traffic a witness must ignore.
// kind ack: TCP ACK segments with 100 bytes of data to the TCP ports (an established connection's
//   traffic — the bulk of a busy apiserver's packets).
// kind udpprobe: UDP datagrams carrying a probe payload (magic + fields; HMAC with a random key) to
//   the UDP ports — every one passes udpProbeToPorts().
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';

const { values: a } = parseArgs({
  options: {
    netns: { type: 'string' },
    src: { type: 'string' },
    dst: { type: 'string' },
    kind: { type: 'string', default: 'nonprobe' },
    rate: { type: 'string', default: '0' },
    ms: { type: 'string', default: '5000' },
    max: { type: 'string', default: '1000000' },
    ports: { type: 'string', default: '179,5473,2379,6443' },
    uports: { type: 'string', default: '4789,51820' },
  },
});
const ms = Math.min(Number(a.ms), 60_000);
const max = Math.min(Number(a.max), 50_000_000);
const rate = Number(a.rate);
if (!a.src?.startsWith('198.18.') || !a.dst?.startsWith('198.18.')) {
  // Network safety: lab addresses only (198.18.0.0/15; the labs here use 198.18.i.2).
  console.error('flood: --src and --dst must be lab addresses in 198.18.0.0/16');
  process.exit(2);
}

const { loadNative } = await import('../dist/native.js');
const { encodeIPv4 } = await import('../dist/packets/ipv4.js');
const { encodeTcp, TCP_FLAGS } = await import('../dist/packets/tcp.js');
const { encodeUdp } = await import('../dist/packets/udp.js');
const { encodeProbePayload } = await import('../dist/packets/probe.js');

const tcpPorts = a.ports.split(',').filter(Boolean).map(Number);
const udpPorts = a.uports.split(',').filter(Boolean).map(Number);

// A pool of distinct packets built up front, so the send loop costs only the send.
const POOL = 1024;
const pool = [];
for (let i = 0; i < POOL; i++) {
  const srcPort = 20000 + ((i * 7919) % 40000);
  if (a.kind === 'udpprobe') {
    const payload = encodeProbePayload({
      key: randomBytes(32),
      sessionId: randomBytes(8),
      src: a.src,
      dst: a.dst,
      transport: 'udp',
      port: udpPorts[i % udpPorts.length],
      check: 'vxlan',
      idx: i & 0xffff,
      attempt: 0,
      sendTimeMs: Date.now(),
    });
    const dstPort = udpPorts[i % udpPorts.length];
    pool.push(encodeIPv4({ src: a.src, dst: a.dst, protocol: 17, id: i, payload: encodeUdp({ srcAddr: a.src, dstAddr: a.dst, srcPort, dstPort, payload }) }));
  } else if (a.kind === 'ack') {
    const dstPort = tcpPorts[i % tcpPorts.length];
    const seg = encodeTcp({ srcAddr: a.src, dstAddr: a.dst, srcPort, dstPort, seq: randomBytes(4).readUInt32BE(), ack: randomBytes(4).readUInt32BE(), flags: TCP_FLAGS.ACK | TCP_FLAGS.PSH, payload: randomBytes(100) });
    pool.push(encodeIPv4({ src: a.src, dst: a.dst, protocol: 6, id: i, payload: seg }));
  } else {
    if (i % 3 === 2 && udpPorts.length) {
      const dstPort = udpPorts[i % udpPorts.length];
      const payload = randomBytes(64);
      payload.writeUInt32BE(0x12345678, 0); // not the probe magic
      pool.push(encodeIPv4({ src: a.src, dst: a.dst, protocol: 17, id: i, payload: encodeUdp({ srcAddr: a.src, dstAddr: a.dst, srcPort, dstPort, payload }) }));
    } else {
      const dstPort = tcpPorts[i % tcpPorts.length];
      const seg = encodeTcp({ srcAddr: a.src, dstAddr: a.dst, srcPort, dstPort, seq: randomBytes(4).readUInt32BE(), flags: TCP_FLAGS.SYN, mss: 1460 });
      pool.push(encodeIPv4({ src: a.src, dst: a.dst, protocol: 6, id: i, payload: seg }));
    }
  }
}

const sock = loadNative().open({ kind: 'raw', protocol: 255, hdrincl: true, netns: a.netns });
let sent = 0;
let errors = 0;
const t0 = performance.now();
const deadline = t0 + ms;
try {
  outer: for (;;) {
    // Bursts of 32, then check time (and pace to --rate when given).
    for (let k = 0; k < 32; k++) {
      if (sent + errors >= max) break outer;
      try {
        sock.send(pool[(sent + errors) % POOL], a.dst);
        sent++;
      } catch {
        errors++; // ENOBUFS under a flood: counted, not retried
      }
    }
    const now = performance.now();
    if (now >= deadline) break;
    if (rate > 0) {
      const due = t0 + ((sent + errors) * 1000) / rate;
      while (performance.now() < due && performance.now() < deadline) {
        /* pace (busy wait keeps timing exact at 10^5 pps) */
      }
    }
  }
} finally {
  sock.close();
}
console.log(JSON.stringify({ sent, errors, ms: performance.now() - t0 }));
