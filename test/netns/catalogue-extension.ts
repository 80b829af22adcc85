// Issue 10: a check added to the catalogue alone (a fake UDP and a fake TCP check, registered here) is sent by the
// real prober and witnessed by the real witness, with its kernel filters, across two namespaces — each probe
// proving the one flow the destination's session expects (issue 12: per-flow MAC and 48-bit TCP tag).
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { CATALOGUE, registerCheck, witnessPorts } from '../../src/checks/catalogue.js';
import { Prober, DEFAULT_PROBE_OPTIONS } from '../../src/checks/prober.js';
import { loadNative } from '../../src/native.js';
import { deriveSessionKey } from '../../src/packets/probe.js';
import { Session, SessionStore } from '../../src/responder/sessions.js';
import { packInbound, unpackInbound } from '../../src/control/protocol.js';
import { Witness } from '../../src/responder/witness.js';
import { createTopology, describeTopology, destroyTopology, uniquePrefix } from '../../src/lab/topology.js';
import type { CheckId, SourceOutcome } from '../../src/types.js';
import { nativeIn, needsRoot } from '../helpers/lab.js';
import { waitFor as wait } from '../helpers/wait.js';

const waitFor = (ok: () => boolean, ms: number) => wait(ok, { timeout: ms, what: 'the fake check' }).then(() => true, () => false);

t.test('a UDP check that exists only in the catalogue is probed and witnessed', { skip: needsRoot }, async (t) => {
  const id = 'netns-fake' as CheckId;
  registerCheck({ id, code: 202, transport: 'udp', defaultPort: 40404, reach: { kind: 'all-pairs' }, probe: { size: 300 }, title: 'Fake', why: 'a check made up by the test.' });
  const topo = describeTopology(uniquePrefix(), 2);
  await createTopology(topo);
  t.teardown(() => destroyTopology(topo));
  const [n1, n2] = [topo.nodes[0]!, topo.nodes[1]!];
  const native = loadNative();
  const idBytes = randomBytes(8);
  const key = deriveSessionKey(randomBytes(32), idBytes);
  const tcpId = 'netns-fake-tcp' as CheckId;
  registerCheck({ id: tcpId, code: 203, transport: 'tcp', defaultPort: 40406, reach: { kind: 'all-pairs' }, title: 'Fake TCP', why: 'a check made up by the test.' });
  const ports = { [id]: CATALOGUE[id].defaultPort!, [tcpId]: CATALOGUE[tcpId].defaultPort! } as Partial<Record<CheckId, number>>;
  const store = new SessionStore();
  // What n2 may witness (the coordinator's session-open body says so): #5, #6 the UDP check, #7 the TCP one, from n1.
  const inbound = unpackInbound(
    packInbound([
      { idx: 5, src: n1.address, check: id, transport: 'udp', port: 40404 },
      { idx: 6, src: n1.address, check: id, transport: 'udp', port: 40404 },
      { idx: 7, src: n1.address, check: tcpId, transport: 'tcp', port: 40406 },
    ]),
  );
  store.open(new Session(idBytes.toString('hex'), idBytes, key, new Set([n1.address]), ports, inbound, 120_000, Date.now()), Date.now());
  // The ports the witness listens on come from the catalogue, as the control server asks it.
  const witness = new Witness({ native: nativeIn(native, n2.ns), address: n2.address, ports: witnessPorts(Object.entries(ports)), store });
  witness.open();
  t.teardown(() => witness.close());
  const prober = new Prober(nativeIn(native, n1.ns), n1.address);
  prober.open();
  t.teardown(() => prober.close());

  const outcomes: SourceOutcome[] = [];
  await prober.run(
    { idBytes, key, left: () => null },
    [
      { idx: 5, check: id, transport: CATALOGUE[id].transport, to: n2.address, port: 40404 },
      // A request may reshape a probe (what the mtu check does): VXLAN-framed, DF, 1400 bytes — cut by the snap length, still witnessed.
      { idx: 6, check: id, transport: 'udp', to: n2.address, port: 40404, framing: 'vxlan', size: 1400, df: true },
      { idx: 7, check: tcpId, transport: 'tcp', to: n2.address, port: 40406 },
    ],
    { ...DEFAULT_PROBE_OPTIONS, tries: 2, spacingMs: 10 },
    (o) => outcomes.push(o),
  );
  t.equal(outcomes.length, 3, 'the prober sent all three and reported their outcomes');
  const byIdx = (idx: number) => outcomes.find((o) => o.idx === idx);
  t.match(byIdx(5), { check: id, sendError: null, attempts: 2 });
  const session = store.active(Date.now())[0]!;
  t.ok(await waitFor(() => session.witnessed.get(5)?.socket === true, 5000), 'witnessed at the socket layer of the destination');
  const e = session.witnessed.get(5)!;
  t.equal(e.flow.check, id, 'the witness names the new check');
  t.equal(e.iface, true, 'and saw it arrive on an interface');
  t.equal(e.observedSource, n1.address);
  t.ok(await waitFor(() => session.witnessed.get(6)?.socket === true, 5000), 'the 1400-byte VXLAN-framed DF probe is witnessed too');
  t.ok(await waitFor(() => session.witnessed.get(7)?.socket === true, 5000), 'the TCP check\'s SYN is witnessed by its tag');
  t.match(session.witnessed.get(7)!.flow, { check: tcpId, port: 40406, src: n1.address, dst: n2.address });
  t.match(byIdx(7), { check: tcpId, reply: 'rst' }, 'nothing listens there: the kernel\'s reset came back');
  t.equal(session.forged, 0, 'no probe was taken for a forgery');
});
