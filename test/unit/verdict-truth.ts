// classify()/describe() rows for causes no firewall rule explains (issue 11): host-unreachable, rp-filter,
// misrouted, lossy, a reset forged by the path, a conntrack entry older than the session, the kernel's drop
// reason; and properties: loss never becomes a firewall, a destination is blamed only on evidence from it.
import fc from 'fast-check';
import t from 'tap';
import { classify, describe, joinVerdict, type Evidence } from '../../src/verdict.js';
import { DEFAULT_MAX_LOSS, FIREWALL_CAUSES } from '../../src/verdict-facts.js';
import { CHECK_IDS, type PlannedFlow, type SourceOutcome, type WitnessSummary } from '../../src/types.js';
import type { DestKernelFacts } from '../../src/kernel/facts.js';
import { CATALOGUE } from '../../src/checks/catalogue.js';
import { loadSchema } from '../../src/report/json.js';

const tcp: PlannedFlow = { check: 'bgp', transport: 'tcp', from: 'n2', to: 'n1', toAddress: '198.18.1.2', port: 179, idx: 7 };
const ipip: PlannedFlow = { check: 'ipip', transport: 'ipip', from: 'n2', to: 'n1', toAddress: '198.18.1.2', port: null, idx: 8 };
const vip: PlannedFlow = { check: 'apiserver', transport: 'tcp', from: 'n2', to: 'vip', toAddress: '198.18.0.100', port: 6443, idx: 0, sourceOnly: true };

const src = (o: Partial<SourceOutcome> = {}): SourceOutcome => ({
  idx: 7, toAddress: '198.18.1.2', check: 'bgp', reply: null, replyFrom: null, icmp: null, sendError: null,
  left: true, leftOn: 'eth0', rttMs: null, attempts: 3, srcPort: 61000, ...o,
});
const wit = (o: Partial<WitnessSummary> = {}): WitnessSummary => ({
  idx: 7, interfaceSeen: true, interfaceName: 'eth0', socketSeen: false, observedSource: '198.18.2.2', count: 3, ...o,
});
const kernel = (o: Partial<DestKernelFacts['reversePath'][number]> = {}, extra: Partial<DestKernelFacts> = {}): DestKernelFacts => ({
  reversePath: [{ source: '198.18.2.2', iif: 'eth0', lookupError: null, rpFilter: 1, backDev: 'eth0', backVia: null, ...o }],
  rpFilterDrops: null,
  conntrack: { available: true, error: null, preexisting: [] },
  ...extra,
});
const ev = (o: Partial<Evidence> = {}): Evidence => ({
  fromAddress: '198.18.2.2', sourceReachable: true, witnessAvailable: true, capture: true, src: src(), wit: undefined, ...o,
});
const pick = (c: ReturnType<typeof classify>) => ({ verdict: c.verdict, cause: c.cause, where: c.where, rejectedBy: c.rejectedBy });

t.test('host-unreachable: EHOSTUNREACH on send, ICMP host unreachable (own kernel or a router), a FAILED neighbour entry', async (t) => {
  const send = classify(tcp, ev({ src: src({ sendError: 'EHOSTUNREACH', left: false }) }));
  t.same(pick(send), { verdict: 'fail', cause: 'host-unreachable', where: 'path', rejectedBy: null });
  t.match(describe(tcp, send), /^nobody answers for 198\.18\.1\.2: sending failed with EHOSTUNREACH — no firewall involved/);

  const own = classify(vip, ev({ src: src({ reply: 'icmp', replyFrom: '198.18.2.2', icmp: { type: 3, code: 1 }, rttMs: 3012.4 }) }));
  t.same(pick(own), { verdict: 'fail', cause: 'host-unreachable', where: 'path', rejectedBy: '198.18.2.2' });
  t.equal(own.facts.replyMs, 3012);
  t.match(describe(vip, own), /^nobody answers for 198\.18\.0\.100: n2's own kernel answered with ICMP host unreachable — no firewall/);

  const router = classify(tcp, ev({ src: src({ reply: 'icmp', replyFrom: '198.18.9.1', icmp: { type: 3, code: 1 }, rttMs: 4 }) }));
  t.same(pick(router), { verdict: 'fail', cause: 'host-unreachable', where: 'path', rejectedBy: '198.18.9.1' });
  t.match(describe(tcp, router), /198\.18\.9\.1 answered with ICMP host unreachable at once \(4 ms\) — .*may also be a REJECT --reject-with icmp-host-unreachable rule/);

  const arp = classify(vip, ev({ src: src({ left: false, leftOn: null, route: { dev: 'eth0', via: null }, homeIf: 'eth0', neigh: 'FAILED' }) }));
  t.same(pick(arp), { verdict: 'fail', cause: 'host-unreachable', where: 'path', rejectedBy: null }, 'not egress-blocked: it never left because nobody answered ARP');
  t.same([arp.facts.routeDev, arp.facts.homeIf, arp.facts.neighbour], ['eth0', 'eth0', 'FAILED']);
  t.match(describe(vip, arp), /n2's neighbour entry for 198\.18\.0\.100 on eth0 is FAILED: nobody answered ARP/);

  // A neighbour entry that is fine, or a probe the destination saw: not this row.
  t.equal(classify(vip, ev({ src: src({ neigh: 'REACHABLE' }) })).cause, 'blocked');
  t.equal(classify(tcp, ev({ src: src({ neigh: 'INCOMPLETE' }), wit: wit() })).cause, 'ingress-blocked');
});

t.test("rp-filter: the destination's kernel refuses the reverse path (EXDEV, or strict with the route back elsewhere)", async (t) => {
  const exdev = classify(tcp, ev({ wit: wit(), destKernel: kernel({ lookupError: 'RTNETLINK answers: Invalid cross-device link', backDev: 'side0', backVia: '198.19.99.2' }, { rpFilterDrops: 6 }) }));
  t.same(pick(exdev), { verdict: 'fail', cause: 'rp-filter', where: 'destination', rejectedBy: null });
  t.same([exdev.facts.rpSource, exdev.facts.rpFilter, exdev.facts.routeBack, exdev.facts.routeBackVia, exdev.facts.rpFilterDrops], ['198.18.2.2', 1, 'side0', '198.19.99.2', 6]);
  t.equal(
    describe(tcp, exdev),
    "n1's kernel drops them: its route back to 198.18.2.2 is via side0 (198.19.99.2), not eth0 where they arrive, and rp_filter=1 (strict) on eth0 (TcpExtIPReversePathFilter counted 6 drops during the test) — no firewall rule involved; fix n1's route to n2 (ip route get 198.18.2.2 on n1) or set rp_filter=2 (loose) on eth0.",
  );
  const strict = classify(ipip, ev({ wit: wit(), destKernel: kernel({ backDev: 'side0' }) }));
  t.same(pick(strict), { verdict: 'fail', cause: 'rp-filter', where: 'destination', rejectedBy: null });
  // The lookup accepts and the route back is the arrival interface, or rp_filter is loose: a rule did it.
  t.equal(classify(tcp, ev({ wit: wit(), destKernel: kernel() })).cause, 'ingress-blocked');
  t.equal(classify(tcp, ev({ wit: wit(), destKernel: kernel({ rpFilter: 2, backDev: 'side0' }) })).cause, 'ingress-blocked');
  // Facts for another source or interface are not this flow's.
  t.equal(classify(tcp, ev({ wit: wit({ interfaceName: 'eth1' }), destKernel: kernel({ backDev: 'side0' }) })).cause, 'ingress-blocked');
  // Reached a socket: whatever the kernel says, it was not dropped before it.
  t.equal(classify(ipip, ev({ wit: wit({ socketSeen: true }), destKernel: kernel({ backDev: 'side0' }) })).verdict, 'pass');
});

t.test("misrouted: unanswered, and the sender's probe leaves by another interface than its address's", async (t) => {
  const c = classify(tcp, ev({ src: src({ leftOn: 'side0', route: { dev: 'side0', via: '198.19.99.2' }, homeIf: 'eth0' }) }));
  t.same(pick(c), { verdict: 'fail', cause: 'misrouted', where: 'source', rejectedBy: null });
  t.equal(describe(tcp, c), "n2 sends to n1 via side0 (198.19.99.2), not eth0 (where its own address is) — no firewall involved; check n2's routes (ip route get 198.18.1.2).");
  // Not seen leaving at all: the route says where it went.
  const gone = classify(tcp, ev({ src: src({ left: false, leftOn: null, route: { dev: 'side0', via: null }, homeIf: 'eth0' }) }));
  t.equal(gone.cause, 'misrouted');
  t.match(describe(tcp, gone), /via side0, not eth0 .*, and nothing of it left/);
  // An answer, or a datagram that reached its socket, is no route problem.
  t.equal(classify(tcp, ev({ src: src({ reply: 'synack', route: { dev: 'side0', via: null }, homeIf: 'eth0' }) })).verdict, 'pass');
  t.equal(classify(ipip, ev({ src: src({ route: { dev: 'side0', via: null }, homeIf: 'eth0' }), wit: wit({ socketSeen: true }) })).verdict, 'pass');
  // Left by its home interface: the ordinary rows.
  t.equal(classify(tcp, ev({ src: src({ route: { dev: 'eth0', via: null }, homeIf: 'eth0' }) })).cause, 'path-blocked');
  // ENETUNREACH with the route by another interface is misrouted; without a known home interface, no-route.
  t.equal(classify(tcp, ev({ src: src({ sendError: 'ENETUNREACH', left: false, leftOn: null, route: { dev: 'side0', via: null }, homeIf: 'eth0' }) })).cause, 'misrouted');
  t.equal(classify(tcp, ev({ src: src({ sendError: 'ENETUNREACH' }) })).cause, 'no-route');
});

t.test('lossy: a pass whose path lost more than --max-loss; within it a pass with the loss counted; a total loss keeps its firewall cause', async (t) => {
  const answered = src({ reply: 'synack', attempts: 3, lost: 2 });
  const over = classify(tcp, ev({ src: answered, wit: wit({ socketSeen: true }), pathLoss: { tries: 20, lost: 5 } }));
  t.same(pick(over), { verdict: 'fail', cause: 'lossy', where: 'path', rejectedBy: null });
  t.same([over.facts.lost, over.facts.pathLost, over.facts.pathTries, over.facts.maxLoss], [2, 5, 20, DEFAULT_MAX_LOSS]);
  t.equal(describe(tcp, over), '1 of 3 tries got through; the path n2→n1 lost 5 of 20 tries (25%, above --max-loss 5%) — loss, not a firewall: check the links and devices between them.');

  const within = classify(tcp, ev({ src: answered, wit: wit({ socketSeen: true }), pathLoss: { tries: 20, lost: 5 }, maxLoss: 0.3 }));
  t.same(pick(within), { verdict: 'pass', cause: null, where: null, rejectedBy: null });
  t.match(describe(tcp, within), /^handshake answered \(SYN-ACK\)\. 2 of 3 tries were lost \(the path n2→n1: 25% of 20 tries lost, --max-loss 30%\)\.$/);
  const r = joinVerdict(tcp, answered, wit({ socketSeen: true }), { fromAddress: '198.18.2.2', sourceReachable: true, witnessAvailable: true, capture: true, pathLoss: { tries: 20, lost: 5 }, maxLoss: 0.3 });
  t.same([r.tries, r.lost, r.dropReason], [3, 2, undefined], 'the result carries tries and lost; a pass no drop reason');

  // A datagram flow of which one copy of three arrived, on a path losing 40%.
  const udp = classify(ipip, ev({ wit: wit({ socketSeen: true, count: 1 }), pathLoss: { tries: 10, lost: 4 } }));
  t.same(pick(udp), { verdict: 'fail', cause: 'lossy', where: 'path', rejectedBy: null });
  // Nothing through in any try: the firewall row stands, and the sentence weighs the path's loss.
  const none = classify(tcp, ev({ pathLoss: { tries: 20, lost: 5 } }));
  t.equal(none.cause, 'path-blocked');
  t.match(describe(tcp, none), /Other flows on this path got through \(the path n2→n1: 25% of 20 tries lost, --max-loss 5%\); this one got nothing through in 3 tries/);
  // No loss on the path: no loss facts, no note.
  const clean = classify(tcp, ev({ src: src({ reply: 'synack', lost: 0 }), wit: wit({ socketSeen: true }) }));
  t.same([clean.facts.lost, clean.facts.pathLost, describe(tcp, clean)], [0, undefined, 'handshake answered (SYN-ACK).']);
});

t.test('a TCP reset in the destination\'s name it never saw: rejected in the path, forged', async (t) => {
  const c = classify(tcp, ev({ src: src({ reply: 'rst', replyFrom: '198.18.1.2' }), wit: undefined }));
  t.same(pick(c), { verdict: 'fail', cause: 'rejected', where: 'path', rejectedBy: '198.18.1.2' });
  t.equal(c.facts.forgedReset, true);
  t.match(describe(tcp, c), /^rejected in the path: a TCP reset came back in n1's name \(198\.18\.1\.2\), but n1 never saw the probe arrive/);
  // Seen arriving: n1's own REJECT. No capture: not known, not forged.
  const own = classify(tcp, ev({ src: src({ reply: 'rst', replyFrom: '198.18.1.2' }), wit: wit() }));
  t.same([own.where, own.facts.forgedReset], ['destination', undefined]);
  t.equal(classify(tcp, ev({ capture: false, src: src({ reply: 'rst', replyFrom: '198.18.1.2' }) })).facts.forgedReset, undefined);
});

t.test('IP-in-IP with a conntrack entry older than the session: the sentence says a fresh flow could not be tested', async (t) => {
  const c = classify(ipip, ev({ wit: wit({ socketSeen: true }), destKernel: kernel({}, { conntrack: { available: true, error: null, preexisting: ['198.18.2.2'] } }) }));
  t.equal(c.verdict, 'pass');
  t.equal(c.facts.conntrackPreexisting, true);
  t.match(describe(ipip, c), /n1 already had a conntrack entry for IP-in-IP with n2 before the test .* a fresh flow could not be tested/);
  t.equal(classify(tcp, ev({ wit: wit({ socketSeen: true }), destKernel: kernel({}, { conntrack: { available: true, error: null, preexisting: ['198.18.2.2'] } }) })).facts.conntrackPreexisting, undefined, 'only IP-in-IP is tracked by addresses alone');
});

t.test("the kernel's drop reason: a fact and the result's dropReason; null on a failure where it could not be read", async (t) => {
  const ctx = { fromAddress: '198.18.2.2', sourceReachable: true, witnessAvailable: true, capture: true };
  const r = joinVerdict(tcp, src(), wit(), { ...ctx, dropReason: { reason: 'NETFILTER_DROP' } });
  t.same([r.cause, r.dropReason, r.facts?.dropReason], ['ingress-blocked', 'NETFILTER_DROP', 'NETFILTER_DROP']);
  const u = joinVerdict(tcp, src(), wit(), { ...ctx, dropReason: { unavailable: 'no tracefs' } });
  t.same([u.dropReason, u.facts?.dropReasonUnavailable], [null, 'no tracefs']);
  t.equal(joinVerdict(tcp, src({ reply: 'synack' }), wit({ socketSeen: true }), ctx).dropReason, undefined);
});

t.test("the kernel's drop reason decides a firewall cause: NETFILTER_DROP confirms it, IP_RPFILTER is rp-filter, any other is kernel-drop", async (t) => {
  const ctx = { fromAddress: '198.18.2.2', sourceReachable: true, witnessAvailable: true, capture: true };
  const nf = joinVerdict(tcp, src(), wit(), { ...ctx, dropReason: { reason: 'NETFILTER_DROP' } });
  t.same([nf.cause, nf.where], ['ingress-blocked', 'destination'], 'confirmed');
  const noCapture = joinVerdict(tcp, src(), undefined, { ...ctx, capture: false, dropReason: { reason: 'NETFILTER_DROP' } });
  t.same([noCapture.cause, noCapture.where], ['ingress-blocked', 'destination'], "without capture: the receiver's own netfilter dropped it, so not the path");
  const rp = joinVerdict(tcp, src(), wit(), { ...ctx, dropReason: { reason: 'IP_RPFILTER' } });
  t.same([rp.verdict, rp.cause, rp.where, rp.dropReason], ['fail', 'rp-filter', 'destination', 'IP_RPFILTER']);
  t.match(rp.detail, /n1's kernel drops them: it filters them by reverse path \(its drop reason: IP_RPFILTER\)/, 'said from the reason when the reverse-path facts are missing');
  const other = joinVerdict(tcp, src(), wit(), { ...ctx, dropReason: { reason: 'NOT_SPECIFIED' } });
  t.same([other.verdict, other.cause, other.where, other.dropReason], ['fail', 'kernel-drop', 'destination', 'NOT_SPECIFIED']);
  t.match(other.detail, /^n1's kernel dropped it \(reason NOT_SPECIFIED\): no firewall rule did/);
  const ret = joinVerdict(tcp, src(), wit({ socketSeen: true }), { ...ctx, dropReason: { reason: 'TCP_MINTTL' } });
  t.same([ret.cause, ret.where], ['kernel-drop', 'destination'], 'return-blocked too: the SYN itself was dropped by the kernel');
  const egress = joinVerdict(tcp, src({ sendError: 'EPERM', left: false }), undefined, { ...ctx, dropReason: { reason: 'NOT_SPECIFIED' } });
  t.same([egress.cause, egress.where], ['egress-blocked', 'source'], "the sender's own refusal stands");
  const rejected = joinVerdict(tcp, src({ reply: 'rst', replyFrom: '198.18.1.2' }), wit(), { ...ctx, dropReason: { reason: 'NOT_SPECIFIED' } });
  t.equal(rejected.cause, 'rejected', 'an answer is not a silent drop');
  const shed = joinVerdict(tcp, src(), wit(), { ...ctx, destinationShed: 40, dropReason: { reason: 'NETFILTER_DROP' } });
  t.same([shed.verdict, shed.cause], ['fail', 'ingress-blocked'], 'shed packets do not make a drop the kernel recorded unknown');
  t.equal(joinVerdict(tcp, src(), wit(), { ...ctx, destinationShed: 40 }).cause, 'overloaded', 'without the reason: overloaded, as before');
  // NO_SOCKET: the receiver's kernel found no listener and answered itself. A reset from it is a closed port
  // (a REJECT rule's drop is NETFILTER_DROP) even where the witness shed its sighting under load.
  const closed = joinVerdict(tcp, src({ reply: 'rst', replyFrom: '198.18.1.2' }), wit(), { ...ctx, destinationShed: 40, dropReason: { reason: 'NO_SOCKET' } });
  t.same([closed.verdict, closed.cause, closed.facts?.dropReason], ['pass', null, 'NO_SOCKET'], 'a reset with NO_SOCKET: the port is closed, the firewall passed it');
  const notRejected = joinVerdict(tcp, src({ reply: 'rst', replyFrom: '198.18.1.2' }), wit(), { ...ctx, dropReason: { reason: 'NETFILTER_DROP' } });
  t.equal(notRejected.cause, 'rejected', 'a reset with NETFILTER_DROP: a REJECT rule');
  const lostAnswer = joinVerdict(tcp, src(), wit({ socketSeen: true }), { ...ctx, dropReason: { reason: 'NO_SOCKET' } });
  t.same([lostAnswer.cause, lostAnswer.dropReason], ['return-blocked', 'NO_SOCKET'], "its answer (the reset) was lost on the way back: return-blocked stands");
  t.equal(joinVerdict(tcp, src(), wit(), { ...ctx, destinationShed: 40, dropReason: { reason: 'NO_SOCKET' } }).cause, 'overloaded', 'NO_SOCKET does not vouch for a silence under load');
  const pass = joinVerdict(ipip, src({ idx: 8, check: 'ipip' }), wit({ idx: 8, socketSeen: true }), { ...ctx, dropReason: { reason: 'NOT_SPECIFIED' } });
  t.same([pass.verdict, pass.dropReason], ['pass', undefined], 'a pass carries no reason');
});

t.test('the schema lists the new causes and result fields', async (t) => {
  const schema = loadSchema() as { $defs: Record<string, { properties: Record<string, { enum?: unknown[]; oneOf?: unknown[] }> }> };
  const causes = schema.$defs['result']!.properties['cause']!.enum ?? (schema.$defs['result']!.properties['cause']!.oneOf as Array<{ enum?: unknown[] }>)?.flatMap((x) => x.enum ?? []);
  for (const c of ['rp-filter', 'misrouted', 'lossy', 'host-unreachable', 'kernel-drop']) t.ok(causes?.includes(c), c);
  for (const f of ['dropReason', 'lost', 'tries']) t.ok(schema.$defs['result']!.properties[f], f);
});

// ---- properties ------------------------------------------------------------------------------
const addr = fc.constantFrom('198.18.2.2', '198.18.1.2', '198.18.9.1', '198.18.0.100');
const dev = fc.constantFrom('eth0', 'side0');
const arbSrc = fc.record({
  idx: fc.constant(7),
  toAddress: fc.constant('198.18.1.2'),
  check: fc.constantFrom(...CHECK_IDS),
  reply: fc.constantFrom<SourceOutcome['reply']>('synack', 'rst', 'icmp', null),
  replyFrom: fc.option(addr, { nil: null }),
  icmp: fc.option(fc.record({ type: fc.constantFrom(3, 11), code: fc.integer({ min: 0, max: 13 }) }), { nil: null }),
  sendError: fc.constantFrom(null, null, null, 'EPERM', 'ENETUNREACH', 'EHOSTUNREACH'),
  left: fc.constantFrom(true, false, null),
  leftOn: fc.option(dev, { nil: null }),
  rttMs: fc.option(fc.double({ min: 0, max: 5000, noNaN: true }), { nil: null }),
  attempts: fc.integer({ min: 0, max: 9 }),
  srcPort: fc.constant(61000),
  lost: fc.option(fc.integer({ min: 0, max: 9 }), { nil: undefined }),
  route: fc.option(fc.record({ dev, via: fc.option(addr, { nil: null }) }), { nil: undefined }),
  homeIf: fc.option(dev, { nil: undefined }),
  neigh: fc.option(fc.constantFrom('REACHABLE', 'STALE', 'FAILED', 'INCOMPLETE'), { nil: undefined }),
}, { requiredKeys: ['idx', 'toAddress', 'check', 'reply', 'replyFrom', 'icmp', 'sendError', 'left', 'leftOn', 'rttMs', 'attempts', 'srcPort'] });
const arbWit = fc.record({
  idx: fc.constant(7),
  interfaceSeen: fc.boolean(),
  interfaceName: fc.option(dev, { nil: null }),
  socketSeen: fc.boolean(),
  observedSource: fc.option(addr, { nil: null }),
  count: fc.integer({ min: 0, max: 9 }),
});
const arbKernel = fc.record({
  reversePath: fc.array(fc.record({ source: addr, iif: dev, lookupError: fc.constantFrom(null, 'Invalid cross-device link', 'Network unreachable'), rpFilter: fc.constantFrom(null, 0, 1, 2), backDev: fc.option(dev, { nil: null }), backVia: fc.option(addr, { nil: null }) }), { maxLength: 3 }),
  rpFilterDrops: fc.option(fc.nat(100), { nil: null }),
  conntrack: fc.record({ available: fc.boolean(), error: fc.constant(null), preexisting: fc.array(addr, { maxLength: 2 }) }),
});
const arbFlow = fc.record({ check: fc.constantFrom(...CHECK_IDS), sourceOnly: fc.boolean() }).map(({ check, sourceOnly }): PlannedFlow => ({
  check, transport: CATALOGUE[check].transport, from: 'n2', to: 'n1', toAddress: '198.18.1.2', port: CATALOGUE[check].defaultPort, idx: 7, ...(sourceOnly ? { sourceOnly: true } : {}),
}));
const arbEvidence = fc.record({
  fromAddress: fc.constant('198.18.2.2'),
  sourceReachable: fc.boolean(),
  witnessAvailable: fc.boolean(),
  capture: fc.boolean(),
  src: fc.option(arbSrc, { nil: undefined }),
  wit: fc.option(arbWit, { nil: undefined }),
  destKernel: fc.option(arbKernel, { nil: undefined }),
  pathLoss: fc.option(fc.record({ tries: fc.integer({ min: 1, max: 50 }), lost: fc.integer({ min: 0, max: 50 }) }), { nil: undefined }),
  maxLoss: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined }),
}, { requiredKeys: ['fromAddress', 'sourceReachable', 'witnessAvailable', 'capture', 'src', 'wit'] });

t.test('property: a flow of which some tries got through never gets a firewall cause', async (t) => {
  fc.assert(
    fc.property(arbFlow, arbEvidence, (flow, e) => {
      const c = classify(flow, e);
      const partial = c.facts.lost !== undefined && c.facts.tries !== undefined && c.facts.lost < c.facts.tries;
      return !partial || c.cause === null || !FIREWALL_CAUSES.has(c.cause);
    }),
    { numRuns: 5000 },
  );
  t.pass('5000 random flows');
});

t.test('property: the destination is blamed only when its own evidence shows the probe arrived; the source only on its own', async (t) => {
  fc.assert(
    fc.property(arbFlow, arbEvidence, (flow, e) => {
      const c = classify(flow, e);
      if (c.where === 'destination' && c.facts.interfaceSeen !== true) return false;
      // Evidence on the source (a refused send, or never seen leaving with no answer and no arrival): never the destination.
      const atSource = !!e.src?.sendError || (e.src?.left === false && !e.src.reply && !e.wit?.interfaceSeen);
      if (atSource && e.sourceReachable && c.where === 'destination') return false;
      if (c.where === 'source' && !(c.facts.sendError || c.facts.left === false || (c.facts.homeIf && (c.facts.leftOn ?? c.facts.routeDev) !== c.facts.homeIf))) return false;
      return true;
    }),
    { numRuns: 5000 },
  );
  t.pass('5000 random flows');
});

t.test('property: the new causes have one place each, lossy only over --max-loss, and describe reads facts only', async (t) => {
  const place: Record<string, string> = { 'rp-filter': 'destination', misrouted: 'source', lossy: 'path', 'host-unreachable': 'path' };
  fc.assert(
    fc.property(arbFlow, arbEvidence, (flow, e) => {
      const c = classify(flow, e);
      if (c.cause && place[c.cause] && (c.where !== place[c.cause] || c.verdict !== 'fail')) return false;
      if (c.cause === 'lossy' && !((c.facts.lost ?? 0) > 0 && c.facts.pathLost! / c.facts.pathTries! > c.facts.maxLoss!)) return false;
      const d = describe(flow, c);
      if (d.length === 0 || d.includes('undefined')) return false;
      return describe(flow, JSON.parse(JSON.stringify(c))) === d;
    }),
    { numRuns: 5000 },
  );
  t.pass('5000 random flows');
});

t.test('loss round: the flows that got nothing through on a lossy path go again; an mtu flow that did not arrive does not', async (t) => {
  const { pathLosses, retryPlan } = await import('../../src/coordinator/loss.js');
  const { flowLoss } = await import('../../src/verdict-facts.js');
  const mtu: PlannedFlow = { check: 'mtu', transport: 'ipip', from: 'n2', to: 'n1', toAddress: '198.18.1.2', port: null, idx: 9 };
  const vx: PlannedFlow = { check: 'vxlan', transport: 'udp', from: 'n2', to: 'n1', toAddress: '198.18.1.2', port: 4789, idx: 10 };
  const flows = [tcp, ipip, mtu, vx];
  const outcomes = new Map<number, SourceOutcome>([
    [0, src({ reply: 'synack', attempts: 3, lost: 1 })], // one try of three lost: the path is lossy
    [1, src({ idx: 8, check: 'ipip' })], // nothing arrived
    [2, src({ idx: 9, check: 'mtu' })], // the host-size probe did not arrive: a size limit, not loss
    [3, src({ idx: 10, check: 'vxlan' })], // two of three arrived
  ]);
  const seen = new Map<number, WitnessSummary>([[10, wit({ idx: 10, socketSeen: true, count: 2 })]]);
  const nodes = new Map([['n1', { witness: { forFlow: (f: PlannedFlow) => seen.get(f.idx) } }], ['n2', { witness: { forFlow: () => undefined } }]]);
  const addressOf = new Map([['n1', '198.18.1.2'], ['n2', '198.18.2.2']]);
  const list = { length: flows.length, get: (i: number) => flows[i]! };
  const get = { get: (i: number) => outcomes.get(i) };
  t.same(pathLosses(list, get, nodes, addressOf).get('n2>n1'), { tries: 6, lost: 2 }, 'the path: the SYN-ACKed and the half-arrived flow');
  t.same(retryPlan(list, get, nodes, addressOf).get('n2'), [1], 'only the IP-in-IP flow goes again');
  t.same(flowLoss(mtu, outcomes.get(2), undefined), { tries: 3, lost: 3 }, 'its own tries are still counted (on its result)');
});

t.test('loss round: a TCP flow goes again when the way back lost tries, though the way there lost none', async (t) => {
  // Seen under load: every flow node2→node1 got through at the first try, the apiserver SYNs arrived at
  // node1's socket three times but the answers were lost on the lossy way back: return-blocked, wrongly.
  const { retryPlan } = await import('../../src/coordinator/loss.js');
  const back: PlannedFlow = { check: 'bgp', transport: 'tcp', from: 'n1', to: 'n2', toAddress: '198.18.2.2', port: 179, idx: 11 };
  const udp: PlannedFlow = { check: 'vxlan', transport: 'udp', from: 'n2', to: 'n1', toAddress: '198.18.1.2', port: 4789, idx: 12 };
  const flows = [tcp, back, udp];
  const outcomes = new Map<number, SourceOutcome>([
    [0, src()], // n2→n1 bgp: nothing came back in 3 tries
    [1, src({ idx: 11, toAddress: '198.18.2.2', reply: 'synack', lost: 2 })], // n1→n2: answered at the third try
    [2, src({ idx: 12, check: 'vxlan' })], // n2→n1 vxlan: nothing arrived
  ]);
  const nodes = new Map([['n1', { witness: { forFlow: () => undefined } }], ['n2', { witness: { forFlow: () => undefined } }]]);
  const addressOf = new Map([['n1', '198.18.1.2'], ['n2', '198.18.2.2']]);
  const plan = retryPlan({ length: 3, get: (i: number) => flows[i]! }, { get: (i: number) => outcomes.get(i) }, nodes, addressOf);
  t.same(plan.get('n2'), [0], 'the TCP flow goes again (its answers cross n1→n2, which lost tries); the datagram flow does not (one way only)');
});
