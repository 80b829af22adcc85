// The witness for real (issue: native layer): the responder's own Witness class with its kernel filters,
// opened inside a test namespace, fed real probes and real noise from another namespace.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { loadNative } from '../../src/native.js';
import type { NativeSocket } from '../../src/native-types.js';
import { Witness } from '../../src/responder/witness.js';
import { Session, SessionStore, type ExpectedFlow } from '../../src/responder/sessions.js';
import { deriveSessionKey, encodeProbePayload, encodeProbeSyn, tcpProbeTag } from '../../src/packets/probe.js';
import { encodeIPv4 } from '../../src/packets/ipv4.js';
import { encodeTcp, TCP_FLAGS } from '../../src/packets/tcp.js';
import { encodeUdp } from '../../src/packets/udp.js';
import { buildVxlanProbe } from '../../src/packets/vxlan.js';
import { buildIpipInner } from '../../src/packets/ipip.js';
import { createTopology, describeTopology, destroyTopology, uniquePrefix } from '../../src/lab/topology.js';
import { inNs, run } from '../../src/lab/sys.js';
import { nativeIn, needsRoot } from '../helpers/lab.js';
import { waitFor, waitOut } from '../helpers/wait.js';


t.test('witness in a namespace: filters keep noise in the kernel, probes are witnessed', { skip: needsRoot }, async (t) => {
  const topo = describeTopology(uniquePrefix(), 2);
  await createTopology(topo);
  t.teardown(() => destroyTopology(topo));
  const [n1, n2] = [topo.nodes[0]!, topo.nodes[1]!];
  const native = loadNative();
  const secret = randomBytes(32);
  const idBytes = randomBytes(8);
  const key = deriveSessionKey(secret, idBytes);
  // The flows node1 sends node2: what node2's session expects in, and node1's sends out.
  const flows = new Map<number, ExpectedFlow>([
    [1, { src: n1.address, check: 'ipip', transport: 'ipip', port: null }],
    [2, { src: n1.address, check: 'vxlan', transport: 'udp', port: 4789 }],
    [3, { src: n1.address, check: 'bgp', transport: 'tcp', port: 179 }],
    [4, { src: n1.address, check: 'ipip', transport: 'ipip', port: null }],
    [5, { src: n1.address, check: 'ipip', transport: 'ipip', port: null }],
  ]);
  const mkStore = () => {
    const store = new SessionStore();
    const s = new Session(idBytes.toString('hex'), idBytes, key, new Set([n1.address, n2.address]), { bgp: 179, vxlan: 4789 }, flows, 120_000, Date.now());
    for (const [idx, f] of flows) s.outbound.set(`${n2.address}/${idx}`, f);
    store.open(s, Date.now());
    return store;
  };
  const store2 = mkStore();
  const store1 = mkStore();
  const w2 = new Witness({ native: nativeIn(native, n2.ns), address: n2.address, ports: { tcp: [179], udp: [4789] }, store: store2 });
  const w1 = new Witness({ native: nativeIn(native, n1.ns), address: n1.address, ports: { tcp: [179], udp: [4789] }, store: store1 });
  w2.open();
  w1.open();
  t.teardown(() => {
    w1.close();
    w2.close();
  });
  t.ok(w2.capture, 'packet capture available');
  const tx: NativeSocket = native.open({ kind: 'raw', protocol: 255, hdrincl: true, netns: `/run/netns/${n1.ns}` });
  t.teardown(() => tx.close());
  const send = (protocol: number, payload: Buffer, id = 0) => tx.send(encodeIPv4({ src: n1.address, dst: n2.address, protocol, payload, id }), n2.address);
  const flow = (idx: number) => ({ ...flows.get(idx)!, dst: n2.address, idx });
  const probe = (idx: number) => encodeProbePayload({ key, sessionId: idBytes, ...flow(idx), attempt: 0, sendTimeMs: Date.now() });
  const session2 = store2.active(Date.now())[0]!;

  // 10 000 packets that are not probes: UDP to 4789 without the magic, TCP ACKs to 179, SYNs without the probe
  // stamp (a real client's: ephemeral source port, MSS 1460) to the watched 179 and to 180, IP-in-IP without magic.
  for (let i = 0; i < 10_000; i++) {
    switch (i % 4) {
      case 0:
        send(17, encodeUdp({ srcAddr: n1.address, dstAddr: n2.address, srcPort: 40000 + (i % 1000), dstPort: 4789, payload: randomBytes(60) }));
        break;
      case 1:
        send(6, encodeTcp({ srcAddr: n1.address, dstAddr: n2.address, srcPort: 40000 + (i % 1000), dstPort: 179, seq: i, ack: 1, flags: TCP_FLAGS.ACK }));
        break;
      case 2:
        send(6, encodeTcp({ srcAddr: n1.address, dstAddr: n2.address, srcPort: 40000 + (i % 1000), dstPort: i % 8 === 2 ? 179 : 180, seq: i, flags: TCP_FLAGS.SYN, mss: 1460 }));
        break;
      default:
        send(4, buildIpipInner({ innerSrc: n1.address, innerDst: n2.address, payload: randomBytes(54) }));
    }
  }
  await waitOut(300, 'none of the noise may reach user space');
  t.equal(w2.stats.packets, 0, 'none of 10 000 non-probe packets reached user space at the destination');

  // Real probes after the noise: each is witnessed at the interface and at the socket layer, with the sender's address.
  send(4, buildIpipInner({ innerSrc: n1.address, innerDst: n2.address, payload: probe(1) }));
  send(17, encodeUdp({ srcAddr: n1.address, dstAddr: n2.address, srcPort: 61001, dstPort: 4789, payload: buildVxlanProbe({ innerSrc: n1.address, innerDst: n2.address, payload: probe(2) }) }));
  send(6, encodeProbeSyn({ srcAddr: n1.address, dstAddr: n2.address, srcPort: 61002, dstPort: 179, tag: tcpProbeTag(key, flow(3)) }));
  await waitFor(() => [1, 2, 3].every((i) => session2.witnessed.get(i)?.socket), { timeout: 5000, what: 'the three probes witnessed at the socket layer' }).catch(() => undefined); // the asserts below say which is missing
  for (const idx of [1, 2, 3]) {
    const e = session2.witnessed.get(idx);
    t.ok(e?.iface, `probe ${idx} seen arriving on an interface`);
    t.equal(e?.ifname, 'eth0');
    t.ok(e?.socket, `probe ${idx} seen at the socket layer`);
    t.equal(e?.observedSource, n1.address, `probe ${idx}: the right source address`);
  }
  t.same(session2.witnessed.get(1)?.flow, flow(1), 'each witnessed as exactly its flow');
  t.same(session2.witnessed.get(2)?.flow, flow(2));
  t.same(session2.witnessed.get(3)?.flow, flow(3));
  const session1 = store1.active(Date.now())[0]!;
  t.ok(session1.left.has(`${n2.address}/1`), 'the source packet socket saw the IP-in-IP probe leave');
  t.ok(session1.left.has(`${n2.address}/3`), 'the source packet socket saw the TCP probe leave');

  // INPUT drop at the destination: the raw witness sees nothing, the packet socket still sees it arrive.
  await run(inNs(n2.ns, ['iptables', '-A', 'INPUT', '-p', '4', '-j', 'DROP']));
  send(4, buildIpipInner({ innerSrc: n1.address, innerDst: n2.address, payload: probe(4) }));
  await waitFor(() => session2.witnessed.get(4)?.iface, { timeout: 5000, what: 'probe 4 on the interface' }).catch(() => undefined);
  await waitOut(300, 'a socket-layer sighting must not follow');
  t.ok(session2.witnessed.get(4)?.iface, 'arrived on the interface');
  t.notOk(session2.witnessed.get(4)?.socket, 'never reached a socket: the INPUT chain dropped it');

  // OUTPUT drop at the source: the raw send fails with EPERM and nothing is seen leaving.
  await run(inNs(n1.ns, ['iptables', '-A', 'OUTPUT', '-p', '4', '-j', 'DROP']));
  t.throws(() => send(4, buildIpipInner({ innerSrc: n1.address, innerDst: n2.address, payload: probe(5) })), { code: 'EPERM', syscall: 'sendto' });
  await waitOut(200, 'nothing may be seen leaving or arriving');
  t.notOk(session1.left.has(`${n2.address}/5`), 'the source packet socket saw nothing leave');
  t.notOk(session2.witnessed.has(5), 'the destination saw nothing');
});
