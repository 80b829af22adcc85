// Run inside a lab's router namespace: an on-path attacker. It captures node1's IP-in-IP probes on their way to
// node2 and re-sends each (1) re-wrapped as a bare UDP datagram to node2:51820 (WireGuard) and (2) as IP-in-IP
// to node3, both spoofed from node1. Bounded: stops after MS milliseconds or MAX re-sends, and on SIGTERM.
// Prints { captured, sent } as one JSON line.
//   node rewrap.mjs NODE1 NODE2 NODE3 [MS] [MAX]
const [n1, n2, n3, msText = '60000', maxText = '5000'] = process.argv.slice(2);
for (const a of [n1, n2, n3]) if (!a?.startsWith('198.18.')) throw new Error('lab addresses only (198.18.0.0/15)');
const { loadNative } = await import('../../dist/native.js');
const { decodeIPv4, encodeIPv4 } = await import('../../dist/packets/ipv4.js');
const { encodeUdp } = await import('../../dist/packets/udp.js');
const { findProbeInIpip } = await import('../../dist/packets/ipip.js');
const { ipipProbe } = await import('../../dist/packets/bpf.js');

const native = loadNative();
const tx = native.open({ kind: 'raw', protocol: 255, hdrincl: true });
const cap = native.open({ kind: 'packet', rcvbuf: 1 << 20 });
cap.attachFilter(ipipProbe());
let captured = 0;
let sent = 0;
const max = Number(maxText);
const finish = () => {
  cap.close();
  tx.close();
  process.stdout.write(`${JSON.stringify({ captured, sent })}\n`);
  process.exit(0);
};
cap.start(
  (packets) => {
    for (const p of packets) {
      if (p.outgoing) continue; // the forwarded copy leaving towards node2: already seen arriving
      const ip = decodeIPv4(p.data);
      if (ip.src !== n1 || ip.dst !== n2 || ip.protocol !== 4) continue;
      const probe = findProbeInIpip(ip.payload);
      if (!probe) continue;
      captured++;
      if (sent >= max) return finish();
      tx.send(encodeIPv4({ src: n1, dst: n2, protocol: 17, payload: encodeUdp({ srcAddr: n1, dstAddr: n2, srcPort: 40000, dstPort: 51820, payload: probe }) }), n2);
      tx.send(encodeIPv4({ src: n1, dst: n3, protocol: 4, payload: ip.payload }), n3);
      sent += 2;
    }
  },
  () => undefined,
);
setTimeout(finish, Number(msText));
process.on('SIGTERM', finish);
