// The mtu join: pass at the host MTU, mtu-blackhole (silent), mtu-limited (frag-needed hop, the
// kernel's learnt PMTU, a local EMSGSIZE), and the ordinary verdict when nothing arrives at any size.
import t from 'tap';
import { joinMtu, type MtuSearchResult } from '../../src/verdict-mtu.js';
import type { MtuSourceFacts, PlannedFlow, SourceOutcome, WitnessSummary } from '../../src/types.js';

const flow: PlannedFlow = { check: 'mtu', transport: 'ipip', from: 'node1', to: 'node2', toAddress: '198.18.2.2', port: null, idx: 3 };
const ctx = { fromAddress: '198.18.1.2', sourceReachable: true, witnessAvailable: true, capture: true };
const facts = (m: Partial<MtuSourceFacts> = {}): MtuSourceFacts => ({ hostMtu: 1500, kernelPmtu: 1500, kernelPmtuAfter: 1500, sizes: [1500], fragNeeded: null, refusedSize: null, ...m });
const src = (m: Partial<MtuSourceFacts> = {}, extra: Partial<SourceOutcome> = {}): SourceOutcome => ({
  idx: 3, toAddress: '198.18.2.2', check: 'mtu', reply: null, replyFrom: null, icmp: null, sendError: null, left: true, leftOn: 'eth0', rttMs: null, attempts: 3, srcPort: null, mtu: facts(m), ...extra,
});
const wit = (size: number, socket = size): WitnessSummary => ({ idx: 3, interfaceSeen: size > 0, interfaceName: 'eth0', socketSeen: socket > 0, observedSource: '198.18.1.2', count: 1, ifaceSize: size, socketSize: socket });
const search = (lo: number | null, r: Partial<MtuSearchResult> = {}): MtuSearchResult => ({ lo, hi: (lo ?? 575) + 1, end: lo === null ? 'nothing-arrives' : 'converged', rounds: 3, fragNeeded: null, refusedSize: null, kernelPmtuAfter: null, ...r });

t.test('the host MTU arrives: pass, pathMtu = hostMtu', async (t) => {
  const r = joinMtu(flow, src(), wit(1500), ctx, 'ipip');
  t.equal(r.verdict, 'pass');
  t.equal(r.cause, null);
  t.equal(r.pathMtu, 1500);
  t.equal(r.hostMtu, 1500);
  t.match(r.detail, /1500-byte DF probes \(IP-in-IP/);
});

t.test('silent limit: mtu-blackhole in the path, with Calico advice', async (t) => {
  const r = joinMtu(flow, src(), wit(1404), ctx, 'ipip', search(1404));
  t.equal(r.cause, 'mtu-blackhole');
  t.equal(r.where, 'path');
  t.equal(r.pathMtu, 1404);
  t.equal(r.hop, null);
  t.match(r.detail, /no ICMP fragmentation-needed/);
  t.match(r.detail, /at most 1384 for IP-in-IP, 1354 for VXLAN, 1344 for WireGuard/);
  t.same([r.lost, r.tries, r.facts?.lost], [undefined, undefined, undefined], 'host-size copies cut by size are not counted as lost');
  const passed = joinMtu(flow, src(), { ...wit(1500), count: 2 }, ctx, 'ipip');
  t.same([passed.verdict, passed.tries, passed.lost], ['pass', 3, 1], 'a pass counts its lost copies, as every datagram flow does');
});

t.test('frag-needed: mtu-limited, hop = its sender and next-hop MTU; the reply is not a reject', async (t) => {
  const frag = { from: '198.18.1.1', mtu: 1400, size: 1500 };
  const r = joinMtu(flow, src({ fragNeeded: frag, kernelPmtuAfter: 1400 }, { reply: 'icmp', replyFrom: '198.18.1.1', icmp: { type: 3, code: 4 } }), wit(1400), ctx, 'ipip', search(1400, { fragNeeded: frag, kernelPmtuAfter: 1400 }));
  t.equal(r.cause, 'mtu-limited');
  t.equal(r.where, 'path');
  t.same(r.hop, { address: '198.18.1.1', mtu: 1400 });
  t.equal(r.rejectedBy, '198.18.1.1');
  t.match(r.detail, /1380 for IP-in-IP, 1350 for VXLAN, 1340 for WireGuard/);
  t.match(r.detail, /taught node1's kernel a path MTU of 1400/, 'the learnt PMTU is said, not left silently');
  t.equal(r.facts?.kernelPmtuLearnt, 1400);
});

t.test('the kernel already knew: signalled, and said', async (t) => {
  const r = joinMtu(flow, src({ kernelPmtu: 1400, kernelPmtuAfter: 1400 }), wit(1400), ctx, 'vxlan', search(1400));
  t.equal(r.cause, 'mtu-limited');
  t.equal(r.kernelPmtu, 1400);
  t.match(r.detail, /already knew a path MTU of 1400/);
  const stale = joinMtu(flow, src({ kernelPmtu: 1400 }), wit(1500), ctx, 'vxlan');
  t.equal(stale.verdict, 'pass', 'a stale learnt PMTU does not fail a path that carries the host MTU');
  t.match(stale.detail, /already knew a path MTU of 1400/);
});

t.test('its own kernel refuses (EMSGSIZE): mtu-limited at the source', async (t) => {
  const r = joinMtu(flow, src({ refusedSize: 1451 }), wit(1450), ctx, 'ipip', search(1450, { refusedSize: 1451 }));
  t.equal(r.cause, 'mtu-limited');
  t.equal(r.where, 'source');
  t.match(r.detail, /EMSGSIZE/);
});

t.test('nothing arrives at any size: the ordinary verdict, not an MTU one', async (t) => {
  const r = joinMtu(flow, src(), undefined, ctx, 'ipip', search(null));
  t.equal(r.cause, 'path-blocked');
  t.equal(r.pathMtu, null);
  const ing = joinMtu(flow, src(), wit(1500, 0), ctx, 'ipip');
  t.equal(ing.cause, 'ingress-blocked', 'arrived whole but no socket saw it: the destination firewall');
  const refused = joinMtu(flow, src({}, { sendError: 'EPERM' }), undefined, ctx, 'ipip');
  t.equal(refused.cause, 'egress-blocked');
  const down = joinMtu(flow, undefined, undefined, { ...ctx, sourceReachable: false }, 'ipip');
  t.equal(down.verdict, 'unknown');
});

t.test('a search stopped at its bound says the interval', async (t) => {
  const r = joinMtu(flow, src(), wit(1200), ctx, 'ipip', search(1200, { hi: 1300, end: 'bounded' }));
  t.equal(r.cause, 'mtu-blackhole');
  t.match(r.detail, /between 1200 and 1299 bytes/);
  t.equal(r.facts?.pathMtuBelow, 1300);
});

t.test('no host MTU known: not probed, unknown', async (t) => {
  const r = joinMtu(flow, src({ hostMtu: null, sizes: [] }), undefined, ctx, 'ipip');
  t.equal(r.verdict, 'unknown');
  t.equal(r.cause, 'not-probed');
});

t.test('a REJECT of the carrier answers the mtu probe too: rejected, with who (not ingress-blocked, not an MTU limit)', async (t) => {
  // The checksum-neutral IP-in-IP probe makes Linux's REJECT answer with ICMP admin-prohibited.
  const host = joinMtu(flow, src({}, { reply: 'icmp', replyFrom: '198.18.2.2', icmp: { type: 3, code: 13 } }), { ...wit(1500, 0), count: 3 }, ctx, 'ipip', search(null));
  t.match(host, { verdict: 'fail', cause: 'rejected', rejectedBy: '198.18.2.2', where: 'destination' });
  const router = joinMtu(flow, src({}, { reply: 'icmp', replyFrom: '198.18.1.1', icmp: { type: 3, code: 13 } }), undefined, ctx, 'ipip', search(null));
  t.match(router, { verdict: 'fail', cause: 'rejected', rejectedBy: '198.18.1.1', where: 'path' });
});

t.test('a silent limit on a lossy path: lossy when loss alone could have lost every host-size copy', async (t) => {
  // Seen for real: 20% random loss, all three 1500-byte copies lost (0.8% of flows), the search's smaller
  // probes arrived — called mtu-blackhole before.
  const lossy = joinMtu(flow, src(), wit(1472), { ...ctx, pathLoss: { tries: 40, lost: 8 } }, 'ipip', search(1472));
  t.match(lossy, { verdict: 'fail', cause: 'lossy', where: 'path', pathMtu: 1472, tries: 3, lost: 3, facts: { hostCopies: 3, pathLost: 8, pathTries: 40 } });
  t.match(lossy.detail, /^cannot tell a size limit from loss: DF probes of up to 1472 bytes arrive at node2, none of the 3 1500-byte copies did, but the path node1→node2 loses packets \(8 of 40 tries of its other flows, 20%\), which would lose all 3 copies 0\.8% of the time/);
  const little = joinMtu(flow, src(), wit(1400), { ...ctx, pathLoss: { tries: 40, lost: 1 } }, 'ipip', search(1400));
  t.equal(little.cause, 'mtu-blackhole', '2.5% loss loses three copies 16 times in a million: the limit stands');
  const frag = { from: '198.18.1.1', mtu: 1400, size: 1500 };
  const said = joinMtu(flow, src({ fragNeeded: frag }, { reply: 'icmp', replyFrom: '198.18.1.1', icmp: { type: 3, code: 4 } }), wit(1400), { ...ctx, pathLoss: { tries: 40, lost: 8 } }, 'ipip', search(1400, { fragNeeded: frag }));
  t.equal(said.cause, 'mtu-limited', 'a fragmentation-needed is said, not inferred from absence: loss does not touch it');
  t.equal(joinMtu(flow, src(), { ...wit(1500), count: 3 }, { ...ctx, pathLoss: { tries: 40, lost: 8 } }, 'ipip').verdict, 'pass', 'every host-size copy arrived: pass');
  t.equal(joinMtu(flow, src(), wit(1500), { ...ctx, pathLoss: { tries: 40, lost: 8 } }, 'ipip').cause, 'lossy', 'one of three arrived on a path over --max-loss: lossy, as every flow');
});
