// The prober over a fake native binding (no root): what it sends, how it retries silent probes, refused
// sends, which replies and ICMP errors it matches (through the real kernel filters, emulated), spacing of
// datagram copies, abort, and that a receive error on a reply socket is reported instead of read as a drop.
import t, { type Test } from 'tap';
import { WIREGUARD_HANDSHAKE_SIZE as WIREGUARD_PROBE_SIZE } from '../../src/checks/catalogue.js';
import { Prober, type ProbeOptions, type ProbeRequest, type ProbeSession } from '../../src/checks/prober.js';
import { decodeIPv4, encodeIPv4 } from '../../src/packets/ipv4.js';
import { decodeTcp, encodeTcp, TCP_FLAGS } from '../../src/packets/tcp.js';
import { decodeUdp } from '../../src/packets/udp.js';
import { encodeIcmpError } from '../../src/packets/icmp.js';
import { deriveSessionKey, tcpProbeTag, verifyProbePayload } from '../../src/packets/probe.js';
import { findProbeInVxlan } from '../../src/packets/vxlan.js';
import { findProbeInIpip } from '../../src/packets/ipip.js';
import { joinVerdict } from '../../src/verdict.js';
import type { PlannedFlow, SourceOutcome } from '../../src/types.js';
import { FakeNative, type FakeSocket } from '../helpers/fake-native.js';

const ME = '198.18.1.2';
const PEER = '198.18.2.2';
const ROUTER = '198.18.0.1';
const idBytes = Buffer.from('0123456789abcdef', 'hex');
const key = deriveSessionKey(Buffer.from('a-shared-secret-long-enough'), idBytes);

function session(left: ProbeSession['left'] = () => null): ProbeSession {
  return { idBytes, key, left };
}

const fast: ProbeOptions = { tries: 3, timeouts: { initialMs: 40, minMs: 1, maxMs: 60 }, concurrency: 8, spacingMs: 0 };

const bgp = (idx = 0, to = PEER): ProbeRequest => ({ idx, check: 'bgp', transport: 'tcp', to, port: 179 });
const vxlan = (idx = 0): ProbeRequest => ({ idx, check: 'vxlan', transport: 'udp', to: PEER, port: 4789 });
const ipip = (idx = 0): ProbeRequest => ({ idx, check: 'ipip', transport: 'ipip', to: PEER, port: null });

function setup(t: Test) {
  const native = new FakeNative();
  const prober = new Prober(native, ME);
  prober.open();
  t.teardown(() => prober.close());
  return { native, prober, send: native.raw(255), replies: native.raw(6), icmp: native.raw(1) };
}

async function probe(prober: Prober, reqs: ProbeRequest[], opts: ProbeOptions = fast, s = session(), signal?: AbortSignal): Promise<SourceOutcome[]> {
  const out: SourceOutcome[] = [];
  await prober.run(s, reqs, opts, (o) => out.push(o), signal);
  return out.sort((a, b) => a.idx - b.idx);
}

/** The peer's answer to a SYN the prober sent: SYN-ACK (or RST), from `from`. */
function answer(syn: Buffer, flags: number, from = PEER): Buffer {
  const ip = decodeIPv4(syn);
  const tcp = decodeTcp(ip.payload);
  const seg = encodeTcp({ srcAddr: from, dstAddr: ip.src, srcPort: tcp.dstPort, dstPort: tcp.srcPort, seq: 7, ack: (tcp.seq + 1) >>> 0, flags });
  return encodeIPv4({ src: from, dst: ip.src, protocol: 6, payload: seg });
}

/** An ICMP error from `from` quoting the first 28 bytes of `sent`. */
function icmpError(sent: Buffer, type: number, code: number, from = ROUTER): Buffer {
  return encodeIPv4({ src: from, dst: ME, protocol: 1, payload: encodeIcmpError({ type, code, quoted: sent.subarray(0, 28) }) });
}

t.test('open: four sockets bound to the node address, reply sockets filtered and receiving', async (t) => {
  const { native, send, replies, icmp } = setup(t);
  t.equal(native.sockets.length, 4);
  for (const s of native.sockets) t.equal(s.options.kind === 'raw' && s.options.bindAddress, ME);
  t.ok(send.options.kind === 'raw' && send.options.hdrincl, 'IPPROTO_RAW send socket with IP_HDRINCL');
  const sized = native.raw(255, 'probe');
  t.ok(sized.options.kind === 'raw' && sized.options.hdrincl, 'the sized (mtu) probes get their own socket with IP_PMTUDISC_PROBE');
  t.ok(replies.filtersAttached === 1 && replies.started, 'TCP reply socket: filter attached, then started');
  t.ok(icmp.filtersAttached === 1 && icmp.started, 'ICMP socket: filter attached, then started');
});

t.test('open fails cleanly: no socket is left open', async (t) => {
  const native = new FakeNative();
  native.openRule = (o) => (o.kind === 'raw' && o.protocol === 1 ? 'EPERM' : undefined);
  const prober = new Prober(native, ME);
  t.throws(() => prober.open(), { code: 'EPERM', syscall: 'socket' });
  t.equal(native.sockets.filter((s) => !s.closed).length, 0);
});

t.test('TCP: a half-open SYN carrying the probe tag; a SYN-ACK on the first try passes', async (t) => {
  const { native, prober, send, replies } = setup(t);
  native.onSend = (_s, data) => setImmediate(() => replies.push(answer(data, TCP_FLAGS.SYN | TCP_FLAGS.ACK)));
  const [r] = await probe(prober, [bgp(5)]);
  t.equal(send.sent.length, 1);
  const ip = decodeIPv4(send.sent[0]!.data);
  const tcp = decodeTcp(ip.payload);
  t.same([ip.src, ip.dst, send.sent[0]!.address, tcp.dstPort], [ME, PEER, PEER, 179]);
  t.ok(tcp.isSyn && !tcp.isAck, 'a SYN');
  const tag = tcpProbeTag(key, { src: ME, dst: PEER, transport: 'tcp', port: 179, check: 'bgp', idx: 5 });
  t.equal(tcp.seq, tag.seq, 'the sequence number carries the flow\'s tag');
  t.equal(tcp.timestamp?.val, tag.tsVal, 'and so does the timestamps option (48 bits in all)');
  t.match(r, { idx: 5, toAddress: PEER, check: 'bgp', reply: 'synack', replyFrom: PEER, icmp: null, sendError: null, attempts: 1, srcPort: tcp.srcPort });
  t.ok(r!.rttMs !== null && r!.rttMs >= 0, 'an RTT');
  t.notOk('receiveError' in r!, 'no receive error');
});

t.test('TCP: a silent probe is retried `tries` times, each from a fresh source port, then reported silent', async (t) => {
  const { prober, send } = setup(t);
  const [r] = await probe(prober, [bgp(1)]);
  t.equal(send.sent.length, 3, 'three SYNs');
  const ports = send.sent.map((p) => decodeTcp(decodeIPv4(p.data).payload).srcPort);
  t.equal(new Set(ports).size, 3, 'each try its own source port');
  t.match(r, { reply: null, replyFrom: null, attempts: 3, sendError: null, rttMs: null });
});

t.test('TCP: the first SYN lost, the second answered with a reset: attempts 2, reply rst', async (t) => {
  const { native, prober, replies } = setup(t);
  let n = 0;
  native.onSend = (_s, data) => {
    if (++n === 2) setImmediate(() => replies.push(answer(data, TCP_FLAGS.RST | TCP_FLAGS.ACK)));
  };
  const [r] = await probe(prober, [bgp()]);
  t.match(r, { reply: 'rst', replyFrom: PEER, attempts: 2 });
});

t.test('TCP: answers that are not for the probe are not matched', async (t) => {
  const { native, prober, replies } = setup(t);
  native.onSend = (_s, data) =>
    setImmediate(() => {
      const ip = decodeIPv4(data);
      const tcp = decodeTcp(ip.payload);
      // From another host, and to another port of ours: neither is the probe's answer.
      replies.push(answer(data, TCP_FLAGS.SYN | TCP_FLAGS.ACK, '198.18.9.9'));
      const other = encodeTcp({ srcAddr: PEER, dstAddr: ME, srcPort: tcp.dstPort, dstPort: tcp.srcPort === 61000 ? 61001 : 61000, seq: 1, ack: 1, flags: TCP_FLAGS.SYN | TCP_FLAGS.ACK });
      replies.push(encodeIPv4({ src: PEER, dst: ME, protocol: 6, payload: other }));
      // A bare ACK from the right place is no answer to a SYN either.
      replies.push(answer(data, TCP_FLAGS.ACK));
    });
  const [r] = await probe(prober, [bgp()], { ...fast, tries: 1 });
  t.match(r, { reply: null, attempts: 1 });
});

t.test('refused sends: the errno is the outcome, and a refused probe is not retried', async (t) => {
  for (const code of ['EPERM', 'EMSGSIZE', 'EHOSTUNREACH']) {
    const { prober, send } = setup(t);
    send.sendRule = () => code;
    const out = await probe(prober, [bgp(0), vxlan(1), ipip(2)]);
    t.same(
      out.map((o) => [o.sendError, o.attempts, o.reply]),
      [
        [code, 1, null],
        [code, 1, null],
        [code, 1, null],
      ],
      code,
    );
  }
});

t.test('a datagram refused on its second copy still reports the refusal', async (t) => {
  const { prober, send } = setup(t);
  let n = 0;
  send.sendRule = () => (++n === 2 ? 'EPERM' : undefined);
  const [r] = await probe(prober, [vxlan()]);
  t.match(r, { sendError: 'EPERM', attempts: 2 });
  t.equal(send.sent.length, 1, 'one copy went out');
});

t.test('UDP and IP-in-IP: every copy is a complete signed probe, framed per check, spaced apart', async (t) => {
  const { native, prober, send } = setup(t);
  const at: number[] = [];
  native.onSend = () => at.push(performance.now());
  const spacingMs = 40;
  const out = await probe(prober, [vxlan(3), { idx: 4, check: 'wireguard', transport: 'udp', to: PEER, port: 51820 }, ipip(6)], { ...fast, concurrency: 1, spacingMs });
  t.equal(send.sent.length, 9, 'three copies of each');
  t.same(out.map((o) => [o.attempts, o.reply]), [[3, null], [3, null], [3, null]]);
  for (let i = 1; i < 3; i++) t.ok(at[i]! - at[i - 1]! >= spacingMs - 2, `copy ${i + 1} of the first probe waited the spacing (${(at[i]! - at[i - 1]!).toFixed(1)} ms)`);
  const payloads = send.sent.map((p) => decodeIPv4(p.data));
  const vx = payloads.slice(0, 3).map((ip) => findProbeInVxlan(decodeUdp(ip.payload).payload));
  t.same(vx.map((b) => b && verifyProbePayload(b, key)?.attempt), [0, 1, 2], 'VXLAN-framed probes, attempt 0..2');
  t.ok(vx.every((b) => b && verifyProbePayload(b, key)?.idx === 3));
  t.match(vx[0] && verifyProbePayload(vx[0], key), { src: ME, dst: PEER, transport: 'udp', port: 4789, check: 'vxlan' }, 'the payload names its whole flow');
  const wg = payloads.slice(3, 6).map((ip) => decodeUdp(ip.payload));
  t.ok(wg.every((u) => u.payload.length === WIREGUARD_PROBE_SIZE && u.dstPort === 51820), 'WireGuard probes are padded to a handshake initiation');
  t.ok(new Set(wg.map((u) => u.srcPort)).size === 1, 'the copies share one source port (ICMP errors find the probe by it)');
  const ipipProbes = payloads.slice(6).map((ip) => ({ proto: ip.protocol, p: findProbeInIpip(ip.payload) }));
  t.ok(ipipProbes.every((x) => x.proto === 4 && x.p && verifyProbePayload(x.p, key)?.idx === 6), 'IP-in-IP: proto 4 around a signed inner probe');
});

t.test('ICMP errors quoting the probe are matched (UDP by ports, IP-in-IP by IP id); others are not', async (t) => {
  const { native, prober, icmp } = setup(t);
  native.onSend = (_s, data) =>
    setImmediate(() => {
      const ip = decodeIPv4(data);
      if (ip.protocol === 17 && decodeUdp(ip.payload).dstPort === 4789) icmp.push(icmpError(data, 3, 3, PEER));
      if (ip.protocol === 4) icmp.push(icmpError(data, 3, 13));
      if (ip.protocol === 17 && decodeUdp(ip.payload).dstPort === 51820) {
        // Quoting a packet from another source address (not ours), and one to another port.
        const forged = Buffer.from(data);
        forged.writeUInt8(99, 15);
        icmp.push(icmpError(forged, 3, 3));
        const otherPort = Buffer.from(data);
        otherPort.writeUInt16BE(51821, 22);
        icmp.push(icmpError(otherPort, 3, 3));
      }
    });
  const out = await probe(prober, [vxlan(0), ipip(1), { idx: 2, check: 'wireguard', transport: 'udp', to: PEER, port: 51820 }], { ...fast, tries: 1 });
  t.match(out[0], { reply: 'icmp', replyFrom: PEER, icmp: { type: 3, code: 3 } });
  t.match(out[1], { reply: 'icmp', replyFrom: ROUTER, icmp: { type: 3, code: 13 } });
  t.match(out[2], { reply: null, icmp: null }, 'errors about other packets are not this probe\'s');
});

t.test('TCP: an ICMP error quoting the SYN is its answer', async (t) => {
  const { native, prober, icmp } = setup(t);
  native.onSend = (_s, data) => setImmediate(() => icmp.push(icmpError(data, 3, 10)));
  const [r] = await probe(prober, [bgp()]);
  t.match(r, { reply: 'icmp', replyFrom: ROUTER, icmp: { type: 3, code: 10 }, attempts: 1 });
});

t.test('left: what the capture saw leave is on the outcome', async (t) => {
  const { prober } = setup(t);
  const out = await probe(prober, [bgp(0), bgp(1)], { ...fast, tries: 1 }, session((_dst, idx) => (idx === 0 ? 'eth0' : undefined)));
  t.match(out, [{ left: true, leftOn: 'eth0' }, { left: false, leftOn: null }]);
  const [nocap] = await probe(prober, [bgp(2)], { ...fast, tries: 1 });
  t.match(nocap, { left: null, leftOn: null }, 'no capture: unknown, not false');
});

t.test('a receive error on a reply socket is reported, not read as a drop', async (t) => {
  const { native, prober, replies, icmp } = setup(t);
  let sends = 0;
  native.onSend = () => {
    if (++sends === 1) setImmediate(() => replies.fail('ENOBUFS'));
  };
  const [r] = await probe(prober, [bgp(0)]);
  t.match(r, { reply: null, attempts: 3, receiveError: 'ENOBUFS' });
  const [later] = await probe(prober, [bgp(1)]);
  t.notOk('receiveError' in later!, 'a probe sent after the error is not tainted by it');

  native.onSend = () => setImmediate(() => icmp.fail('ENOMEM'));
  const [u] = await probe(prober, [vxlan(2)], { ...fast, tries: 1 });
  t.match(u, { reply: null, receiveError: 'ENOMEM' }, 'the ICMP socket too');

  // Joined with a witness that saw the SYN reach a socket: not a false return-blocked.
  const flow: PlannedFlow = { check: 'bgp', transport: 'tcp', from: 'a', to: 'b', toAddress: PEER, port: 179, idx: 0 };
  const wit = { idx: 0, interfaceSeen: true, interfaceName: 'eth0', socketSeen: true, observedSource: ME, count: 3 };
  const ctx = { fromAddress: ME, sourceReachable: true, witnessAvailable: true, capture: true };
  const v = joinVerdict(flow, r, wit, ctx);
  t.match(v, { verdict: 'unknown', cause: 'receive-error', receiveError: 'ENOBUFS' });
  t.match(v.detail, /reply socket failed to receive \(ENOBUFS\)/);
  t.match(joinVerdict(flow, later, wit, ctx), { verdict: 'fail', cause: 'return-blocked' }, 'without the error, the same silence is return-blocked');
  // Silence the witness contradicts stays what it is, with the fact kept.
  const notArrived = joinVerdict(flow, r, { ...wit, interfaceSeen: false, socketSeen: false, interfaceName: null }, ctx);
  t.match(notArrived, { verdict: 'fail', cause: 'path-blocked', receiveError: 'ENOBUFS' });
  const endpoint = joinVerdict({ ...flow, sourceOnly: true }, r, undefined, ctx);
  t.match(endpoint, { verdict: 'unknown', cause: 'receive-error' }, 'an endpoint without responder: silence alone decided it, so it cannot');
});

t.test('abort: in-flight probes end at once with what they have; no more are started', async (t) => {
  const { prober, send } = setup(t);
  const ac = new AbortController();
  const slow: ProbeOptions = { tries: 3, timeouts: { initialMs: 5000, minMs: 5000, maxMs: 5000 }, concurrency: 2, spacingMs: 0 };
  const started = performance.now();
  setTimeout(() => ac.abort(), 50);
  const out = await probe(prober, [bgp(0), bgp(1), bgp(2), bgp(3)], slow, session(), ac.signal);
  t.ok(performance.now() - started < 3000, 'returned long before the 5 s timeout');
  t.ok(out.length <= 2, `only the probes in flight reported (${out.length})`);
  t.ok(out.every((o) => o.reply === null && o.attempts === 1), 'each sent once, no answer');
  t.equal(send.sent.length, 2, 'the other two were never sent');
});

t.test('close: sockets closed, pending waits forgotten; sending on a closed prober fails loudly', async (t) => {
  const native = new FakeNative();
  const prober = new Prober(native, ME);
  prober.open();
  prober.close();
  t.ok(native.sockets.every((s) => s.closed));
  await t.rejects(probe(prober, [bgp()], { ...fast, tries: 1 }), /prober is not open/);
});

t.test('mtu: the wait after the sized probes follows the peer\'s timeout as it learns, not the initial one read once', async (t) => {
  // Before: the wait was read once when the last sized probe left; sent before the first TCP sample to
  // its peer, it waited the initial timeout in full (a clean 12-node mesh took 0.7 s longer half the time).
  const { native, prober, replies } = setup(t);
  native.onSend = (_s, data) => {
    const ip = decodeIPv4(data);
    if (ip.protocol === 6) setTimeout(() => replies.push(answer(data, TCP_FLAGS.SYN | TCP_FLAGS.ACK)), 30);
  };
  const slowStart: ProbeOptions = { tries: 1, timeouts: { initialMs: 30_000, minMs: 1, maxMs: 60_000 }, concurrency: 2, spacingMs: 0 };
  const mtu: ProbeRequest = { idx: 1, check: 'mtu', transport: 'ipip', to: PEER, port: null };
  const t0 = performance.now();
  const out = await probe(prober, [mtu, bgp(2)], slowStart);
  const ms = performance.now() - t0;
  t.match(out, [{ idx: 1, check: 'mtu', sendError: null }, { idx: 2, reply: 'synack' }]);
  t.ok(ms < 15_000, `the mtu probe stopped waiting once the SYN-ACK gave an RTT (${ms.toFixed(0)} ms, initial timeout 30 s)`);
});

t.test('mtu: an ICMP error other than fragmentation-needed is the probe\'s answer (a REJECT), not a size limit', async (t) => {
  const { native, prober, icmp } = setup(t);
  let n = 0;
  native.onSend = (_s, data) => {
    if (decodeIPv4(data).protocol !== 4 || n++ > 0) return;
    setImmediate(() => icmp.push(icmpError(data, 3, 13)));
  };
  const mtu: ProbeRequest = { idx: 4, check: 'mtu', transport: 'ipip', to: PEER, port: null };
  const [r] = await probe(prober, [mtu]);
  t.match(r, { reply: 'icmp', replyFrom: ROUTER, icmp: { type: 3, code: 13 } }, 'admin-prohibited: rejected by the router');
  t.equal(r!.mtu?.fragNeeded, null, 'not a size limit');
});
