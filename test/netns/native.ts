// The native addon against real packets: two simulated nodes (network namespaces joined through a
// router), raw and packet sockets opened in them with `netns`, firewalls put in the way with iptables.
// Traffic stays inside the namespaces this file creates (198.18.0.0/15); they are removed in teardown.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { createTopology, describeTopology, destroyTopology, uniquePrefix } from '../../src/lab/topology.js';
import { inNs, run, which } from '../../src/lab/sys.js';
import { waitFor, waitOut } from '../helpers/wait.js';
import {
  addonCandidates,
  isNativeError,
  loadNative,
  type BpfInstruction,
  type NativeError,
  type NativeSocket,
  type ReceivedPacket,
  type SocketOptions,
} from '../../src/native.js';

// ---- a tiny IPv4 builder (RFC 791); the real codecs live in src/packets, this file tests the addon alone

function ipChecksum(header: Buffer): number {
  let sum = 0;
  for (let i = 0; i < header.length; i += 2) sum += (header[i]! << 8) + (header[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function ipv4(src: string, dst: string, protocol: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45; // version 4, IHL 5
  h.writeUInt16BE(20 + payload.length, 2);
  h.writeUInt16BE(randomBytes(2).readUInt16BE(0), 4);
  h.writeUInt16BE(0x4000, 6); // DF
  h[8] = 64;
  h[9] = protocol;
  Buffer.from(src.split('.').map(Number)).copy(h, 12);
  Buffer.from(dst.split('.').map(Number)).copy(h, 16);
  h.writeUInt16BE(ipChecksum(h), 10);
  return Buffer.concat([h, payload]);
}

function udp(srcPort: number, dstPort: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(srcPort, 0);
  h.writeUInt16BE(dstPort, 2);
  h.writeUInt16BE(8 + payload.length, 4); // checksum 0: none (allowed for UDP over IPv4)
  return Buffer.concat([h, payload]);
}

// ---- lab

const N1 = '198.18.1.2';
const N2 = '198.18.2.2';
const ACCEPT_ALL: BpfInstruction[] = [{ code: 0x06, jt: 0, jf: 0, k: 0xffff }];
const DROP_ALL: BpfInstruction[] = [{ code: 0x06, jt: 0, jf: 0, k: 0 }];
// ldb [9]; jeq #4 → accept; else drop. On a SOCK_DGRAM packet socket offset 0 is the IPv4 header.
const ONLY_PROTO_4: BpfInstruction[] = [
  { code: 0x30, jt: 0, jf: 0, k: 9 },
  { code: 0x15, jt: 0, jf: 1, k: 4 },
  { code: 0x06, jt: 0, jf: 0, k: 0xffff },
  { code: 0x06, jt: 0, jf: 0, k: 0 },
];
/** An inner protocol nothing handles (RFC 3692 experimentation), so a decapsulating node ignores it. */
const INNER_PROTOCOL = 253;

const newTag = (): Buffer => Buffer.concat([Buffer.from('cnt-native-test:'), randomBytes(8)]);
const ipip = (tag: Buffer): Buffer => ipv4(N1, N2, 4, ipv4(N1, N2, INNER_PROTOCOL, tag));
const udpTo9 = (tag: Buffer): Buffer => ipv4(N1, N2, 17, udp(40000, 9, tag));
const carries = (tag: Buffer) => (p: ReceivedPacket): boolean => p.data.includes(tag);

const waitUntil = (done: () => boolean, what: string, timeoutMs = 3000): Promise<unknown> => waitFor(done, { timeout: timeoutMs, what, every: 5 });

/** Everything a started socket delivers, and how it came in batches. */
class Collector {
  readonly packets: ReceivedPacket[] = [];
  readonly batches: number[] = [];
  readonly errors: NativeError[] = [];

  constructor(readonly socket: NativeSocket, batch?: number) {
    socket.start(
      (packets) => {
        this.batches.push(packets.length);
        this.packets.push(...packets);
      },
      (err) => this.errors.push(err),
      batch,
    );
  }

  matching(test: (p: ReceivedPacket) => boolean): ReceivedPacket[] {
    return this.packets.filter(test);
  }

  async waitFor(test: (p: ReceivedPacket) => boolean, what: string, timeoutMs = 3000): Promise<ReceivedPacket> {
    await waitUntil(() => this.packets.some(test), `${what} (saw ${this.packets.length} other packets)`, timeoutMs);
    return this.packets.find(test)!;
  }
}

/** Fds of this process that are sockets. */
function socketFds(): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
    } catch {
      return false;
    }
  }).length;
}

if (process.getuid?.() !== 0) {
  t.plan(0, 'not root: creating network namespaces and opening raw sockets needs root');
} else {
  const native = loadNative();
  const topo = describeTopology(uniquePrefix(), 2);
  const [node1, node2] = topo.nodes as [(typeof topo.nodes)[0], (typeof topo.nodes)[0]];
  const ns1 = `/run/netns/${node1.ns}`;
  const ns2 = `/run/netns/${node2.ns}`;
  const opened: NativeSocket[] = [];
  const open = (options: SocketOptions): NativeSocket => {
    const s = native.open(options);
    opened.push(s);
    return s;
  };
  // Registered before anything is made, so a failure anywhere still removes the namespaces. Sockets
  // are closed first: an open socket keeps its namespace alive after `ip netns del`.
  t.teardown(async () => {
    for (const s of opened) s.close();
    await destroyTopology(topo);
  });
  await createTopology(topo);
  const iptables = await which('iptables');
  const eth0Index = async (ns: string): Promise<number> =>
    Number((await run(inNs(ns, ['cat', '/sys/class/net/eth0/ifindex']))).stdout.trim());

  t.test('a raw proto-4 socket in node2 witnesses IP-in-IP from node1, with its source', async (t) => {
    const rx = open({ kind: 'raw', protocol: 4, netns: ns2 });
    rx.attachFilter(ACCEPT_ALL);
    const seen = new Collector(rx);
    const tx = open({ kind: 'raw', protocol: 255, netns: ns1 });
    t.teardown(() => [rx, tx].forEach((s) => s.close()));

    const tag = newTag();
    const packet = ipip(tag);
    const before = Date.now();
    t.equal(tx.send(packet, N2), packet.length, 'send returns the bytes sent');
    const p = await seen.waitFor(carries(tag), "the IP-in-IP packet at node2's raw socket");
    t.equal(p.source, N1, 'source is node1');
    t.equal(p.data[9], 4, 'data starts at the outer IPv4 header');
    t.equal(p.data.length, packet.length);
    t.equal(p.origLength, packet.length);
    t.equal(p.ifname, null);
    t.equal(p.ifindex, 0);
    t.equal(p.pktType, 0);
    t.equal(p.outgoing, false);
    t.ok(p.tsMs >= before - 1000 && p.tsMs <= Date.now() + 1000, `kernel timestamp ${p.tsMs} is now`);
    t.same(seen.errors, []);
  });

  t.test('packet sockets see the packet leave node1 and arrive at node2', async (t) => {
    const arrive = open({ kind: 'packet', netns: ns2 }); // all interfaces: the name comes from the kernel
    const leave = open({ kind: 'packet', ifname: 'eth0', netns: ns1 });
    const tx = open({ kind: 'raw', protocol: 255, netns: ns1 });
    t.teardown(() => [arrive, leave, tx].forEach((s) => s.close()));
    arrive.attachFilter(ACCEPT_ALL);
    leave.attachFilter(ACCEPT_ALL);
    const atNode2 = new Collector(arrive);
    const atNode1 = new Collector(leave);

    const tag = newTag();
    const packet = ipip(tag);
    tx.send(packet, N2);
    const inbound = await atNode2.waitFor(carries(tag), "the packet on node2's packet socket");
    const outbound = await atNode1.waitFor(carries(tag), "the packet on node1's packet socket");

    // Resolved in the socket's namespace, not the test's.
    t.equal(inbound.ifname, 'eth0');
    t.equal(inbound.ifindex, await eth0Index(node2.ns));
    t.equal(inbound.outgoing, false);
    t.equal(inbound.pktType, 0, 'PACKET_HOST');
    t.equal(inbound.source, '');
    t.equal(inbound.data[0], 0x45, 'SOCK_DGRAM: data starts at the IPv4 header');
    t.equal(inbound.data.length, packet.length);
    t.equal(inbound.origLength, packet.length);

    t.equal(outbound.ifname, 'eth0');
    t.equal(outbound.ifindex, await eth0Index(node1.ns));
    t.equal(outbound.outgoing, true);
    t.equal(outbound.pktType, 4, 'PACKET_OUTGOING');
    t.equal(outbound.data[0], 0x45);
    t.same([...atNode1.errors, ...atNode2.errors], []);
  });

  t.test('filters: nothing before one is attached, nothing queued before a swap leaks through', async (t) => {
    const rx = open({ kind: 'raw', protocol: 4, netns: ns2 });
    const tx = open({ kind: 'raw', protocol: 255, netns: ns1 });
    t.teardown(() => [rx, tx].forEach((s) => s.close()));
    const seen = new Collector(rx);

    const unfiltered = newTag();
    for (let i = 0; i < 3; i++) tx.send(ipip(unfiltered), N2);
    rx.attachFilter(DROP_ALL);
    const dropped = newTag();
    for (let i = 0; i < 3; i++) tx.send(ipip(dropped), N2);
    await waitOut(300, 'what must not arrive has had the time to');
    t.equal(seen.packets.length, 0, 'a new socket and a drop-all filter deliver nothing');

    rx.attachFilter(ACCEPT_ALL);
    const accepted = newTag();
    tx.send(ipip(accepted), N2);
    await seen.waitFor(carries(accepted), 'the packet sent after accept-all was attached');
    t.equal(seen.matching(carries(unfiltered)).length + seen.matching(carries(dropped)).length, 0, 'nothing from before');
    t.equal(seen.packets.length, 1);

    // Packets queued (accepted, not yet read) under the old filter are drained by the swap.
    rx.stop();
    const queued = newTag();
    for (let i = 0; i < 5; i++) tx.send(ipip(queued), N2);
    await waitOut(100, 'the packets reach the stopped socket\'s queue (nothing reads it: no event to wait for)');
    rx.attachFilter(ACCEPT_ALL);
    const after = newTag();
    tx.send(ipip(after), N2);
    const again = new Collector(rx);
    await again.waitFor(carries(after), 'the packet sent after the second swap');
    t.equal(again.matching(carries(queued)).length, 0, 'packets queued before the swap were discarded');
    t.equal(again.packets.length, 1);
  });

  t.test('a proto-4 filter rejects 1000 UDP datagrams and accepts the IP-in-IP packet after them', async (t) => {
    const filtered = open({ kind: 'packet', ifname: 'eth0', netns: ns2, rcvbuf: 16 << 20 });
    const everything = open({ kind: 'packet', ifname: 'eth0', netns: ns2, rcvbuf: 16 << 20 });
    const tx = open({ kind: 'raw', protocol: 255, netns: ns1 });
    t.teardown(() => [filtered, everything, tx].forEach((s) => s.close()));
    filtered.attachFilter(ONLY_PROTO_4);
    everything.attachFilter(ACCEPT_ALL);
    const kept = new Collector(filtered);
    const all = new Collector(everything);

    const udpTag = newTag();
    for (let burst = 0; burst < 20; burst++) {
      for (let i = 0; i < 50; i++) tx.send(udpTo9(udpTag), N2);
      await waitOut(2, 'pacing the burst');
    }
    const tag = newTag();
    tx.send(ipip(tag), N2);
    await kept.waitFor(carries(tag), 'the IP-in-IP packet through the proto-4 filter');
    // Inbound only: node2's ICMP port-unreachable replies quote the datagram, tag included.
    const inboundUdp = (p: ReceivedPacket): boolean => !p.outgoing && p.data[9] === 17 && carries(udpTag)(p);
    await waitUntil(() => all.matching(inboundUdp).length === 1000, 'all 1000 UDP datagrams on the accept-all socket', 5000);
    t.equal(kept.matching(carries(udpTag)).length, 0, 'no UDP datagram passed the filter');
    t.ok(kept.packets.every((p) => p.data[9] === 4), 'only protocol 4 passed');
    t.equal(filtered.stats().received, kept.packets.length);
  });

  t.test('OUTPUT DROP in node1: send fails with EPERM, and nothing leaves', { skip: iptables ? false : 'iptables not installed' }, async (t) => {
    const tx = open({ kind: 'raw', protocol: 255, netns: ns1 });
    const leave = open({ kind: 'packet', ifname: 'eth0', netns: ns1 });
    leave.attachFilter(ACCEPT_ALL);
    const atNode1 = new Collector(leave);
    const rule = ['OUTPUT', '-p', '4', '-j', 'DROP'];
    t.teardown(async () => {
      [tx, leave].forEach((s) => s.close());
      await run(inNs(node1.ns, ['iptables', '-D', ...rule]), { allowFail: true });
    });
    await run(inNs(node1.ns, ['iptables', '-A', ...rule]));

    const tag = newTag();
    let error: unknown;
    try {
      tx.send(ipip(tag), N2);
    } catch (err) {
      error = err;
    }
    t.ok(isNativeError(error), 'send threw a NativeError');
    if (isNativeError(error)) {
      t.equal(error.code, 'EPERM');
      t.equal(error.errno, 1);
      t.equal(error.syscall, 'sendto');
      t.match(error.message, /^sendto\(2\) failed: EPERM \(Operation not permitted\): to 198\.18\.2\.2/);
    }
    await waitOut(200, 'what must not arrive has had the time to');
    t.equal(atNode1.matching(carries(tag)).length, 0, 'the packet never left node1');
  });

  t.test('INPUT DROP in node2: the packet socket sees it arrive, the raw socket sees nothing', { skip: iptables ? false : 'iptables not installed' }, async (t) => {
    const raw = open({ kind: 'raw', protocol: 4, netns: ns2 });
    const wire = open({ kind: 'packet', ifname: 'eth0', netns: ns2 });
    const tx = open({ kind: 'raw', protocol: 255, netns: ns1 });
    const rule = ['INPUT', '-p', '4', '-j', 'DROP'];
    t.teardown(async () => {
      [raw, wire, tx].forEach((s) => s.close());
      await run(inNs(node2.ns, ['iptables', '-D', ...rule]), { allowFail: true });
    });
    raw.attachFilter(ACCEPT_ALL);
    wire.attachFilter(ACCEPT_ALL);
    const atSocket = new Collector(raw);
    const atWire = new Collector(wire);
    await run(inNs(node2.ns, ['iptables', '-A', ...rule]));

    const tag = newTag();
    tx.send(ipip(tag), N2);
    const arrived = await atWire.waitFor(carries(tag), "the packet on node2's eth0");
    t.equal(arrived.outgoing, false);
    await waitOut(300, 'what must not arrive has had the time to');
    t.equal(atSocket.matching(carries(tag)).length, 0, 'the raw socket (after INPUT) never saw it');
  });

  t.test('stats, batches under a burst, and closing while started', async (t) => {
    const tx = open({ kind: 'raw', protocol: 255, netns: ns1 });
    t.teardown(() => tx.close());

    t.test('a burst arrives in batches, and stats count it', async (t) => {
      const rx = open({ kind: 'raw', protocol: 4, netns: ns2, rcvbuf: 8 << 20 });
      const wire = open({ kind: 'packet', ifname: 'eth0', netns: ns2, rcvbuf: 8 << 20 });
      t.teardown(() => [rx, wire].forEach((s) => s.close()));
      rx.attachFilter(ACCEPT_ALL);
      wire.attachFilter(ONLY_PROTO_4);
      const seen = new Collector(rx, 64);
      const onWire = new Collector(wire);
      const tag = newTag();
      // Sent in one synchronous run: the event loop polls only afterwards, so they are all queued.
      for (let i = 0; i < 300; i++) tx.send(ipip(tag), N2);
      await waitUntil(() => seen.matching(carries(tag)).length === 300, 'all 300 packets of the burst');
      await waitUntil(() => onWire.matching(carries(tag)).length === 300, 'all 300 packets on the wire');
      t.ok(Math.max(...seen.batches) > 1, `several packets per callback (batches: ${seen.batches.join(',')})`);
      t.ok(Math.max(...seen.batches) <= 64, 'never more than the batch size');
      const stats = rx.stats();
      t.same(stats, { received: seen.packets.length, batches: seen.batches.length, drops: 0 });
      const wireStats = wire.stats();
      t.equal(wireStats.received, onWire.packets.length);
      t.equal(wireStats.batches, onWire.batches.length);
      t.equal(wireStats.drops, 0, 'PACKET_STATISTICS: nothing dropped');
    });

    t.test('stop() stops delivery; start() resumes with what queued meanwhile', async (t) => {
      const rx = open({ kind: 'raw', protocol: 4, netns: ns2 });
      t.teardown(() => rx.close());
      rx.attachFilter(ACCEPT_ALL);
      const first = new Collector(rx);
      rx.stop();
      const tag = newTag();
      tx.send(ipip(tag), N2);
      await waitOut(200, 'what must not arrive has had the time to');
      t.equal(first.packets.length, 0, 'nothing while stopped');
      const second = new Collector(rx);
      await second.waitFor(carries(tag), 'the packet queued while stopped');
      t.equal(first.packets.length, 0, 'the old callbacks are not called again');
    });

    t.test('close() inside the callback ends delivery', async (t) => {
      const rx = open({ kind: 'raw', protocol: 4, netns: ns2 });
      rx.attachFilter(ACCEPT_ALL);
      let calls = 0;
      rx.start(
        () => {
          calls++;
          rx.close();
        },
        () => undefined,
        1, // one packet per callback, so more callbacks would follow if close() did not stop them
      );
      const tag = newTag();
      for (let i = 0; i < 5; i++) tx.send(ipip(tag), N2);
      await waitUntil(() => calls > 0, 'the first callback');
      await waitOut(200, 'what must not arrive has had the time to');
      t.equal(calls, 1);
      t.equal(rx.closed, true);
    });

    t.test('close() right after start() with packets pending', async (t) => {
      const rx = open({ kind: 'raw', protocol: 4, netns: ns2 });
      rx.attachFilter(ACCEPT_ALL);
      let calls = 0;
      rx.start(() => calls++, () => undefined);
      for (let i = 0; i < 10; i++) tx.send(ipip(newTag()), N2);
      rx.close();
      await waitOut(200, 'what must not arrive has had the time to');
      t.equal(calls, 0);
    });

    t.test('an exception thrown by onPackets reaches uncaughtException, and delivery goes on', async (t) => {
      const rx = open({ kind: 'raw', protocol: 4, netns: ns2 });
      t.teardown(() => rx.close());
      rx.attachFilter(ACCEPT_ALL);
      const caught: unknown[] = [];
      const onUncaught = (err: unknown): void => {
        caught.push(err);
      };
      // tap listens too; take over for the moment this test needs.
      const others = process.listeners('uncaughtException');
      process.removeAllListeners('uncaughtException');
      process.on('uncaughtException', onUncaught);
      t.teardown(() => {
        process.removeListener('uncaughtException', onUncaught);
        for (const l of others) process.on('uncaughtException', l);
      });
      let calls = 0;
      rx.start(() => {
        calls++;
        throw new Error('boom from onPackets');
      }, () => undefined, 1);
      tx.send(ipip(newTag()), N2);
      await waitUntil(() => caught.length > 0, 'the uncaught exception');
      t.match(String(caught[0]), /boom from onPackets/);
      tx.send(ipip(newTag()), N2);
      await waitUntil(() => calls >= 2, 'a second delivery after the exception');
    });

    const addon = addonCandidates().find((p) => existsSync(p));
    t.test('process exit and worker termination with sockets open and started', { skip: addon ? false : 'addon not built' }, async (t) => {
      const opener = `
        const m = require(${JSON.stringify(addon)});
        const s = m.open({ kind: 'raw', protocol: 4, netns: ${JSON.stringify(ns2)} });
        s.attachFilter([{ code: 6, jt: 0, jf: 0, k: 65535 }]);
        const idle = m.open({ kind: 'packet', netns: ${JSON.stringify(ns2)} });`;
      for (const [how, tail] of [
        ['process.exit() while polling', `s.start(() => {}, () => {}); setTimeout(() => process.exit(0), 50);`],
        ['natural exit with open, stopped sockets', `s.start(() => {}, () => {}); s.stop();`],
      ] as const) {
        const child = spawnSync(process.execPath, ['-e', opener + tail], { encoding: 'utf8', timeout: 20_000 });
        t.equal(child.status, 0, `${how}: exit status 0`);
        t.equal(child.signal, null, `${how}: no signal`);
        t.equal(child.stderr, '', `${how}: nothing on stderr`);
      }

      const before = socketFds();
      const worker = new Worker(
        `${opener}
        const { parentPort } = require('node:worker_threads');
        s.start((packets) => parentPort.postMessage(packets.length), () => {});
        parentPort.postMessage('ready');`,
        { eval: true },
      );
      let received = 0;
      let ready = false;
      worker.on('message', (m: unknown) => {
        if (m === 'ready') ready = true;
        else if (typeof m === 'number') received += m;
      });
      const workerErrors: unknown[] = [];
      worker.on('error', (err) => workerErrors.push(err));
      await waitUntil(() => ready, 'the worker to open its sockets', 10_000);
      t.equal(socketFds(), before + 2, 'the worker holds two sockets');
      tx.send(ipip(newTag()), N2);
      await waitUntil(() => received > 0, 'the worker to receive a packet');
      const exitCode = await worker.terminate();
      t.equal(exitCode, 1, 'terminated');
      t.same(workerErrors, []);
      t.equal(socketFds(), before, "the environment cleanup hook closed the worker's sockets");
    });
  });
}
