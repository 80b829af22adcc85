// The responder's control server on loopback, with its witness and prober over fake native bindings (no
// root): refusal of unauthenticated requests, signed answers, session open/close, probe streaming, the witness
// log of the session's inbound flows, bad bodies, per-route body caps.
import t, { type Test } from 'tap';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Prober } from '../../src/checks/prober.js';
import { signRequest } from '../../src/control/auth.js';
import { packInbound, type OpenSessionRequest, type ProbeRequestBody, type ProbeStreamLine } from '../../src/control/protocol.js';
import { ControlClient, ControlError } from '../../src/coordinator/client.js';
import { decodeIPv4, encodeIPv4 } from '../../src/packets/ipv4.js';
import { decodeTcp, encodeTcp, TCP_FLAGS } from '../../src/packets/tcp.js';
import { deriveSessionKey, encodeProbeSyn, tcpProbeTag } from '../../src/packets/probe.js';
import { createControlServer } from '../../src/responder/server.js';
import { SessionStore } from '../../src/responder/sessions.js';
import { Witness } from '../../src/responder/witness.js';
import { FakeNative } from '../helpers/fake-native.js';
import type { Explainer } from '../../src/explain/host.js';
import type { ExplainArmResponse } from '../../src/explain/types.js';

const ME = '198.18.1.2';
const PEER = '198.18.2.2';
const secret = Buffer.from('a-shared-secret-long-enough');
const SID = '00112233aabbccdd';
const key = deriveSessionKey(secret, Buffer.from(SID, 'hex'));
const INSTANCE = 'feedfacefeedfacefeedfacefeedface';

async function responder(t: Test, explainer?: Explainer) {
  const witnessNative = new FakeNative();
  const proberNative = new FakeNative();
  const store = new SessionStore();
  const witness = new Witness({ native: witnessNative, address: ME, ports: { tcp: [], udp: [] }, store });
  witness.open();
  const prober = new Prober(proberNative, ME);
  prober.open();
  const log: string[] = [];
  const server = createControlServer({
    secret,
    address: ME,
    instance: INSTANCE,
    store,
    witness,
    prober,
    info: () => ({ tool: 'calico-nettest', version: 'test', address: ME, instance: INSTANCE, capture: witness.capture, captureError: null, ports: [], sessions: store.size, timeMs: Date.now() }),
    log: (m) => log.push(m),
    ...(explainer ? { explainer } : {}),
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const client = new ControlClient('127.0.0.1', port, secret, ME, 5000);
  t.teardown(async () => {
    client.close();
    witness.close();
    prober.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { witnessNative, proberNative, store, witness, client, port, log };
}

/** A raw request (signed or not) for what ControlClient would never send. */
function raw(port: number, method: string, path: string, body: string, sign = true): Promise<{ status: number; body: string }> {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
  if (sign) Object.assign(headers, signRequest(secret, method, path, body, { address: ME, instance: INSTANCE }));
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** What ME may witness: bgp probes #0..#9 from PEER. */
const openBody: OpenSessionRequest = {
  id: SID,
  peers: [PEER],
  ports: { bgp: 179, vxlan: 4789 },
  ttlMs: 60_000,
  inbound: packInbound(Array.from({ length: 10 }, (_, idx) => ({ idx, src: PEER, check: 'bgp' as const, transport: 'tcp' as const, port: 179 }))),
};
const probeBody = (to = PEER): ProbeRequestBody => ({
  probes: [
    { idx: 0, check: 'bgp', transport: 'tcp', to, port: 179 },
    { idx: 1, check: 'bgp', transport: 'tcp', to, port: 179 },
  ],
  tries: 1,
  timeouts: { initialMs: 50, minMs: 10, maxMs: 100 },
  concurrency: 4,
  spacingMs: 0,
});

t.test('unauthenticated and wrongly signed requests get 401 and nothing else', async (t) => {
  const { port, log, store } = await responder(t);
  const unsigned = await raw(port, 'POST', '/v1/sessions', JSON.stringify(openBody), false);
  t.equal(unsigned.status, 401);
  t.same(JSON.parse(unsigned.body), { error: 'unauthorized' }, 'no hint what was wrong');
  const other = new ControlClient('127.0.0.1', port, Buffer.from('another secret, also long enough'), ME);
  t.teardown(() => other.close());
  await t.rejects(other.openSession(openBody), { name: 'ControlError', status: 401, message: /refused our credentials/ });
  t.equal(store.size, 0, 'no session was opened');
  t.ok(log.some((l) => /^refused POST \/v1\/sessions from .*: /.test(l)), 'the refusal is logged on the responder');
  const replay = signRequest(secret, 'GET', '/v1/info', '', { address: ME });
  const get = (h: Record<string, string>) =>
    new Promise<number>((resolve) => request({ host: '127.0.0.1', port, path: '/v1/info', headers: h }, (res) => (res.resume(), resolve(res.statusCode ?? 0))).end());
  t.equal(await get(replay), 200);
  t.equal(await get(replay), 401, 'a replayed request is refused');
});

t.test('a session opens (arming the witness filters for its ports), is found, and closes', async (t) => {
  const { client, store, witness, witnessNative } = await responder(t);
  t.notOk(witness.filtering, 'idle: every socket drops all');
  const r = await client.openSession(openBody);
  t.match(r, { id: SID, capture: true });
  t.equal(store.size, 1);
  t.ok(witness.filtering, 'a live session arms the filters');
  t.same(witness.currentPorts, { tcp: [179], udp: [4789] }, 'the session\'s ports are witnessed, UDP ones as UDP');
  t.ok(witnessNative.sockets.every((s) => s.filtersAttached >= 1));
  t.match(await client.openSession(openBody), { id: SID }, 'opening the same id again is idempotent');
  t.equal(store.size, 1);
  await client.closeSession(SID);
  t.equal(store.size, 0);
  t.notOk(witness.filtering, 'the last session closed: back to drop-all');
  await t.rejects(client.witness(SID), { status: 404, message: /no such session/ });
});

t.test('probes stream back one outcome per line, then done; probes outside the session\'s peers are refused', async (t) => {
  const { client, proberNative } = await responder(t);
  const replies = proberNative.raw(6);
  proberNative.onSend = (_s, data) =>
    setImmediate(() => {
      const ip = decodeIPv4(data);
      const tcp = decodeTcp(ip.payload);
      const seg = encodeTcp({ srcAddr: PEER, dstAddr: ME, srcPort: tcp.dstPort, dstPort: tcp.srcPort, seq: 1, ack: (tcp.seq + 1) >>> 0, flags: TCP_FLAGS.SYN | TCP_FLAGS.ACK });
      if (tcp.seq === tcpProbeTag(key, { src: ME, dst: PEER, transport: 'tcp', port: 179, check: 'bgp', idx: 0 }).seq) replies.push(encodeIPv4({ src: PEER, dst: ME, protocol: 6, payload: seg }));
    });
  await client.openSession(openBody);
  const lines: ProbeStreamLine[] = [];
  await client.probe(SID, probeBody(), (l) => lines.push(l));
  t.equal(lines.length, 3);
  const outcomes = lines.flatMap((l) => ('outcome' in l ? [l.outcome] : [])).sort((a, b) => a.idx - b.idx);
  t.match(outcomes, [
    { idx: 0, reply: 'synack', replyFrom: PEER, attempts: 1 },
    { idx: 1, reply: null, attempts: 1 },
  ]);
  t.same(lines.at(-1), { done: true, capture: true }, 'the closing line comes last');
  t.equal(proberNative.raw(255).sent.length, 2);
  await t.rejects(client.probe(SID, probeBody('198.18.3.3'), () => undefined), { status: 403, message: /198\.18\.3\.3 refused: not a peer/ });
  t.equal(proberNative.raw(255).sent.length, 2, 'nothing was sent to the stranger');
  await t.rejects(client.probe('ffffffffffffffff', probeBody(), () => undefined), { status: 404, message: /no such session/ });
});

t.test('the witness log: what arrived on an interface and at the socket layer, per probe', async (t) => {
  const { client, witnessNative } = await responder(t);
  await client.openSession(openBody);
  const tag = (idx: number) => tcpProbeTag(key, { src: PEER, dst: ME, transport: 'tcp', port: 179, check: 'bgp', idx });
  const syn = (idx: number) => encodeIPv4({ src: PEER, dst: ME, protocol: 6, payload: encodeProbeSyn({ srcAddr: PEER, dstAddr: ME, srcPort: 61000 + idx, dstPort: 179, tag: tag(idx) }) });
  const sock = witnessNative.raw(6);
  const pkt = witnessNative.packet();
  t.equal(pkt.push({ data: syn(2), ifname: 'eth0', ifindex: 2 }), 1, 'the capture filter passes a probe SYN');
  t.equal(sock.push(syn(2)), 1, 'so does the socket-layer filter');
  pkt.push({ data: syn(3), ifname: 'eth0', ifindex: 2 }); // arrived, never reached a socket
  t.equal(sock.push(encodeIPv4({ src: PEER, dst: ME, protocol: 6, payload: encodeProbeSyn({ srcAddr: PEER, dstAddr: ME, srcPort: 61009, dstPort: 179, tag: { seq: (4 << 16) | 12345, tsVal: 1 } }) })), 1);
  // A genuine tag of flow #5 sent to another port: the flow ME expects at #5 is bgp/179, so it proves nothing.
  sock.push(encodeIPv4({ src: PEER, dst: ME, protocol: 6, payload: encodeProbeSyn({ srcAddr: PEER, dstAddr: ME, srcPort: 61010, dstPort: 5473, tag: tag(5) }) }));
  const w = await client.witness(SID);
  t.equal(w.capture, true);
  t.same(
    [...w.rows].sort((a, b) => a[0] - b[0]),
    [
      [2, 1, 'eth0', 1, PEER, 1, PEER, 'bgp', 179],
      [3, 1, 'eth0', 0, PEER, 0, PEER, 'bgp', 179],
    ],
    'a SYN without the tag is not anyone\'s probe; each row names the flow its proof was for',
  );
  t.equal(w.forged, 1, 'the wrong tag at a watched port and index is counted as forged');
});

t.test('bad bodies: 400 with what is wrong; unknown paths 404; wrong methods 405; a huge body 413', async (t) => {
  const { port } = await responder(t);
  const notJson = await raw(port, 'POST', '/v1/sessions', '{nope');
  t.same([notJson.status, JSON.parse(notJson.body)], [400, { error: 'body is not JSON' }]);
  const badId = await raw(port, 'POST', '/v1/sessions', JSON.stringify({ ...openBody, id: 'xyz' }));
  t.same([badId.status, JSON.parse(badId.body)], [400, { error: 'id must be 16 hex characters' }]);
  t.equal((await raw(port, 'GET', '/v1/nothing', '')).status, 404);
  await raw(port, 'POST', '/v1/sessions', JSON.stringify(openBody));
  t.equal((await raw(port, 'PUT', `/v1/sessions/${SID}`, '')).status, 405);
  const big = await raw(port, 'POST', '/v1/sessions', ' '.repeat((4 << 20) + 1)).catch(() => ({ status: 413, body: '' }));
  t.equal(big.status, 413, 'a session open over its route cap is refused unread');
  const bodyOnDelete = await raw(port, 'DELETE', `/v1/sessions/${SID}`, '{}');
  t.same([bodyOnDelete.status, JSON.parse(bodyOnDelete.body).error], [413, `body of 2 bytes is larger than the 0 allowed for DELETE /v1/sessions/${SID}`]);
});

t.test('a ControlError is what the coordinator sees when nothing listens', async (t) => {
  const c = new ControlClient('127.0.0.1', 1, secret, ME, 2000);
  t.teardown(() => c.close());
  const err = await c.info().catch((e: unknown) => e);
  t.ok(err instanceof ControlError);
  t.match(err, { errno: 'ECONNREFUSED', message: /nothing listens on 127\.0\.0\.1:1/ });
});

t.test('--explain answers through the signed reply, under its own body cap; closing or letting go of the session disarms it', async (t) => {
  const calls: string[] = [];
  const stub = {
    arm: async (sess: { id: string }, req: { specs: unknown[] }) => (calls.push(`arm ${sess.id} ${req.specs.length}`), { armed: true, method: 'counters', note: null, added: 'a table' }),
    collect: async () => null,
    disarm: async (id: string) => void calls.push(`disarm ${id}`),
  } as unknown as Explainer;
  const { client, port } = await responder(t, stub);
  await client.openSession(openBody);
  const spec = { id: 0, direction: 'in', check: 'bgp', transport: 'tcp', peer: PEER, port: 179, idx: 0 };
  const a = await client.explain<ExplainArmResponse>(SID, { op: 'arm', specs: [spec], ttlMs: 60_000 });
  t.match(a, { armed: true, method: 'counters' }, 'the client accepted the answer: it was signed by this responder');
  t.same(calls, [`arm ${SID} 1`]);
  await t.rejects(client.explain(SID, { op: 'collect', sent: {}, waitMs: 0 }), { status: 409, message: /nothing armed/ }, 'errors come signed too');
  await t.rejects(client.explain(SID, { op: 'arm', specs: [{ ...spec, check: 'vxlan' }], ttlMs: 60_000 }), { status: 400, message: /does not travel over tcp/ });
  const big = await raw(port, 'POST', `/v1/sessions/${SID}/explain`, ' '.repeat((1 << 20) + 1)).catch(() => ({ status: 413, body: '' }));
  t.equal(big.status, 413, 'an explain body over its cap is refused unread');
  await client.closeSession(SID);
  t.same(calls.at(-1), `disarm ${SID}`, 'DELETE disarms the session\'s tracing');
  // A held session whose coordinator goes away: the hold's close ends it, and disarms it.
  await client.openSession(openBody);
  const holding = new AbortController();
  const held = client.hold(SID, holding.signal);
  await new Promise((r) => setTimeout(r, 100));
  calls.length = 0;
  holding.abort();
  await held;
  const until = Date.now() + 3000;
  while (!calls.includes(`disarm ${SID}`) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  t.same(calls, [`disarm ${SID}`], 'the hold closed: session ended and disarmed');
});
