// An idle responder costs nothing: with no live session every witness socket drops everything in the
// kernel; a session arms the probe filters, and its end (or expiry) disarms them again.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { loadNative } from '../../src/native.js';
import { Witness } from '../../src/responder/witness.js';
import { Session, SessionStore } from '../../src/responder/sessions.js';
import { deriveSessionKey, encodeProbePayload } from '../../src/packets/probe.js';
import { encodeIPv4 } from '../../src/packets/ipv4.js';
import { buildIpipInner } from '../../src/packets/ipip.js';
import { createTopology, describeTopology, destroyTopology, uniquePrefix } from '../../src/lab/topology.js';
import { nativeIn, needsRoot } from '../helpers/lab.js';
import { waitFor, waitOut } from '../helpers/wait.js';


t.test('no session: nothing reaches user space; a session arms the filters; its end disarms them', { skip: needsRoot }, async (t) => {
  const topo = describeTopology(uniquePrefix(), 2);
  await createTopology(topo);
  t.teardown(() => destroyTopology(topo));
  const [n1, n2] = [topo.nodes[0]!, topo.nodes[1]!];
  const native = loadNative();
  const store = new SessionStore();
  const w = new Witness({ native: nativeIn(native, n2.ns), address: n2.address, ports: { tcp: [179], udp: [4789] }, store });
  w.open();
  t.teardown(() => w.close());
  const tx = native.open({ kind: 'raw', protocol: 255, hdrincl: true, netns: `/run/netns/${n1.ns}` });
  t.teardown(() => tx.close());
  const idBytes = randomBytes(8);
  const key = deriveSessionKey(randomBytes(32), idBytes);
  const sendProbe = (idx: number) =>
    tx.send(
      encodeIPv4({ src: n1.address, dst: n2.address, protocol: 4, payload: buildIpipInner({ innerSrc: n1.address, innerDst: n2.address, payload: encodeProbePayload({ key, sessionId: idBytes, src: n1.address, dst: n2.address, transport: 'ipip', port: null, check: 'ipip', idx, attempt: 0, sendTimeMs: 0 }) }) }),
      n2.address,
    );

  t.notOk(w.filtering, 'idle: drop-all attached');
  for (let i = 0; i < 100; i++) sendProbe(i);
  await waitOut(200, 'no packet may reach user space');
  t.equal(w.stats.packets, 0, 'even probe-shaped packets stay in the kernel while no session is live');

  const inbound = new Map(Array.from({ length: 10 }, (_, idx) => [idx, { src: n1.address, check: 'ipip' as const, transport: 'ipip' as const, port: null }]));
  const session = new Session(idBytes.toString('hex'), idBytes, key, new Set([n1.address]), {}, inbound, 1500, Date.now());
  store.open(session, Date.now());
  w.refresh();
  t.ok(w.filtering, 'a live session arms the probe filters');
  sendProbe(1);
  await waitFor(() => session.witnessed.get(1)?.socket, { timeout: 5000, what: 'probe 1 witnessed' }).catch(() => undefined);
  t.ok(session.witnessed.get(1)?.socket, 'and probes are witnessed');

  // The session expires at 1.5 s; the witness notices within a second.
  await waitFor(() => !w.filtering, { timeout: 10_000, what: 'the witness to disarm after the session expired' }).catch(() => undefined);
  t.notOk(w.filtering, 'expiry disarms them');
  const before = w.stats.packets;
  for (let i = 0; i < 100; i++) sendProbe(i);
  await waitOut(200, 'no packet may reach user space');
  t.equal(w.stats.packets, before, 'nothing more reaches user space');
});
