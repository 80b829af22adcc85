// The catalogue owns each check's shape: codes, framing, size, DF, families, listen mode; the schema's check enum
// and the help texts follow it; a check added at run time is framed by the prober and recognised by the witness.
import t from 'tap';
import { CATALOGUE, checkIds, checkList, probeShape, registerCheck, witnessPorts } from '../../src/checks/catalogue.js';
import { framePacket, unframe } from '../../src/checks/framing.js';
import { CHECK_IDS, type CheckId } from '../../src/types.js';
import { loadSchema, loadSchemaFile } from '../../src/report/json.js';
import { decodeIPv4 } from '../../src/packets/ipv4.js';
import { decodeUdp } from '../../src/packets/udp.js';
import { checkFromCode, deriveSessionKey, encodeProbePayload, encodeProbeSyn, PROBE_TCP_SPORT_LO, tcpProbeTag, verifyProbePayload } from '../../src/packets/probe.js';
import { encodeIPv4 } from '../../src/packets/ipv4.js';
import { packInbound, unpackInbound } from '../../src/control/protocol.js';
import { classifyProbe } from '../../src/responder/witness.js';
import { Session } from '../../src/responder/sessions.js';
import { makeProgram } from '../../src/cli/main.js';

const defsOf = (s: Record<string, unknown>) => s['$defs'] as Record<string, { enum: unknown[] }>;

t.test('the schema file lists exactly the catalogue\'s checks (regenerate its check enum when this fails)', async (t) => {
  t.same(defsOf(loadSchemaFile())['check']!.enum, [...CHECK_IDS]);
  t.same([...checkIds()].slice(0, CHECK_IDS.length), [...CHECK_IDS], 'the built-in checks are the types\' list, in order');
});

t.test('help texts list the catalogue\'s checks', async (t) => {
  const help: string[] = [];
  const prog = makeProgram();
  for (const c of prog.commands) help.push(c.helpInformation());
  const mesh = prog.commands.find((c) => c.name() === 'mesh')!.helpInformation().replace(/\s+/g, ' ');
  t.match(mesh, checkList(','), 'mesh --checks names every check');
  t.ok(help.length > 3);
});

t.test('shapes: codes are unique, listen follows transport, WireGuard is padded to a handshake, VXLAN is framed', async (t) => {
  const codes = new Set(checkIds().map((id) => CATALOGUE[id].code));
  t.equal(codes.size, checkIds().length);
  for (const id of CHECK_IDS) t.equal(checkFromCode(CATALOGUE[id].code), id);
  t.same(CHECK_IDS.map((id) => CATALOGUE[id].listen), ['tcp-syn', 'ipip', 'udp', 'udp', 'tcp-syn', 'tcp-syn', 'tcp-syn', 'ipip']);
  t.same(probeShape('vxlan'), { framing: 'vxlan', size: null, df: true });
  t.same(probeShape('wireguard'), { framing: 'bare', size: 176, df: true });
  t.same(probeShape('vxlan', { size: 1450, df: true }), { framing: 'vxlan', size: 1450, df: true }, 'a request overrides size and DF');
  t.same(CATALOGUE.ipip.families, ['ipv4']);
  t.same(CATALOGUE.wireguard.defaultPortByFamily, { ipv6: 51821 });
  t.same(witnessPorts([['bgp', 179], ['vxlan', 4789], ['wireguard', 51820], ['nope', 1]]), { tcp: [179], udp: [4789, 51820] });
});

const key = deriveSessionKey(Buffer.alloc(32, 7), Buffer.alloc(8, 1));
const payload = (check: CheckId, port: number | null = CATALOGUE[check].defaultPort) =>
  encodeProbePayload({ key, sessionId: Buffer.alloc(8, 1), src: '198.18.1.2', dst: '198.18.2.2', transport: CATALOGUE[check].transport, port, check, idx: 3, attempt: 0, sendTimeMs: 1 });
const dg = (p: Buffer, transport: 'udp' | 'ipip' = 'udp') => ({ src: '198.18.1.2', dst: '198.18.2.2', transport, srcPort: transport === 'udp' ? 61000 : null, dstPort: transport === 'udp' ? 4789 : null, id: 9, payload: p });

t.test('framePacket: framing, exact size, DF bit; the witness finds the payload again', async (t) => {
  const wg = framePacket(probeShape('wireguard'), dg(payload('wireguard')));
  t.equal(wg.length, 176);
  t.equal(decodeUdp(decodeIPv4(wg).payload).payload.length, 148, 'a WireGuard handshake initiation\'s size');
  const mtu = framePacket(probeShape('vxlan', { size: 1450 }), dg(payload('vxlan')));
  t.equal(mtu.length, 1450);
  const ip = decodeIPv4(mtu);
  t.equal(ip.dontFragment, true);
  const found = unframe('vxlan', decodeUdp(ip.payload).payload);
  t.ok(found && verifyProbePayload(found, key), 'padded VXLAN probe still verifies');
  t.equal(decodeIPv4(framePacket(probeShape('ipip', { df: false }), dg(payload('ipip'), 'ipip'))).dontFragment, false);
  const ipip = framePacket(probeShape('ipip', { size: 1400 }), dg(payload('ipip'), 'ipip'));
  t.equal(ipip.length, 1400);
  t.ok(verifyProbePayload(unframe('ipip', decodeIPv4(ipip).payload)!, key));
  t.equal(framePacket(probeShape('vxlan', { size: 10 }), dg(payload('vxlan'))).length, framePacket(probeShape('vxlan'), dg(payload('vxlan'))).length, 'a size below the bare packet is no padding');
  t.throws(() => framePacket({ framing: 'vxlan', size: null, df: true }, dg(payload('ipip'), 'ipip')), /cannot be framed/);
});

t.test('registerCheck: a UDP check added at run time is planned, framed and witnessed with no other change', async (t) => {
  t.throws(() => registerCheck({ id: 'bgp' as CheckId, code: 99, transport: 'udp', defaultPort: 1, reach: { kind: 'all-pairs' }, title: 'x', why: 'x' }), /already/);
  t.throws(() => registerCheck({ id: 'x-dup' as CheckId, code: 1, transport: 'udp', defaultPort: 1, reach: { kind: 'all-pairs' }, title: 'x', why: 'x' }), /code 1 is bgp's/);
  t.throws(() => registerCheck({ id: 'x-port' as CheckId, code: 98, transport: 'udp', defaultPort: null, reach: { kind: 'all-pairs' }, title: 'x', why: 'x' }), /only IP-in-IP/);
  const id = 'unit-fake' as CheckId;
  registerCheck({ id, code: 201, transport: 'udp', defaultPort: 40404, reach: { kind: 'all-pairs' }, probe: { size: 300 }, title: 'Fake', why: 'a check made up by the test.' });
  t.ok(checkIds().includes(id));
  t.same(defsOf(loadSchema())['check']!.enum.slice(-1), [id], 'reports with it validate');
  t.equal(CATALOGUE[id].traffic(null), 'Fake (UDP 40404)');
  t.same(witnessPorts([[id, 40404]]), { tcp: [], udp: [40404] });
  const pkt = framePacket(probeShape(id), { ...dg(payload(id)), dstPort: 40404 });
  t.equal(pkt.length, 300);
  const idBytes = Buffer.alloc(8, 1);
  // The destination's session expects the new check's flow at #3 (its code travels in the session-open body).
  const inbound = unpackInbound(packInbound([{ idx: 3, src: '198.18.1.2', check: id, transport: 'udp', port: 40404 }]));
  t.equal(inbound.get(3)?.check, id, 'the inbound table carries a run-time check by its code');
  const session = new Session('0101010101010101', idBytes, key, new Set(['198.18.1.2']), { [id]: 40404 }, inbound, 60_000, Date.now());
  const ctx = { self: '198.18.2.2', outgoing: false, active: [session], byId: (b: Buffer) => (b.equals(idBytes) ? session : undefined), nowMs: Date.now() };
  const seen = classifyProbe(pkt, ctx);
  t.equal(seen?.kind, 'probe');
  const flow = seen?.kind === 'probe' ? seen.sighting.flow : null;
  t.equal(flow?.check, id, 'the witness names the new check from its code');
  t.equal(flow?.idx, 3);
  // The per-flow proof holds for it too: the same genuine payload re-sent to another port proves nothing.
  const elsewhere = framePacket(probeShape(id), { ...dg(payload(id)), dstPort: 40405 });
  t.equal(classifyProbe(elsewhere, ctx)?.kind, 'forged', 're-sent to another port, it is counted as forged');
});

t.test('registerCheck: a TCP check added at run time gets the 48-bit per-flow tag, checked against its flow', async (t) => {
  const id = 'unit-fake-tcp' as CheckId;
  registerCheck({ id, code: 202, transport: 'tcp', defaultPort: 40406, reach: { kind: 'all-pairs' }, title: 'Fake TCP', why: 'a check made up by the test.' });
  const idBytes = Buffer.alloc(8, 1);
  const flow = { src: '198.18.1.2', dst: '198.18.2.2', transport: 'tcp' as const, port: 40406, check: id, idx: 7 };
  const tag = tcpProbeTag(key, flow);
  t.not(tag.seq, tcpProbeTag(key, { ...flow, check: 'bgp' }).seq, 'the check is part of the tag');
  const inbound = unpackInbound(packInbound([{ idx: 7, src: flow.src, check: id, transport: 'tcp', port: 40406 }]));
  const session = new Session('0101010101010101', idBytes, key, new Set([flow.src]), { [id]: 40406 }, inbound, 60_000, Date.now());
  const ctx = { self: flow.dst, outgoing: false, active: [session], byId: () => session, nowMs: Date.now() };
  const syn = (dstPort: number) => encodeIPv4({ src: flow.src, dst: flow.dst, protocol: 6, payload: encodeProbeSyn({ srcAddr: flow.src, dstAddr: flow.dst, srcPort: PROBE_TCP_SPORT_LO, dstPort, tag }) });
  const seen = classifyProbe(syn(40406), ctx);
  t.equal(seen?.kind === 'probe' ? seen.sighting.flow.check : null, id, 'witnessed as the new check');
  t.equal(classifyProbe(syn(40407), ctx), null, 'the same tag at another port is no flow this node expects');
  const wrong = encodeIPv4({ src: flow.src, dst: flow.dst, protocol: 6, payload: encodeProbeSyn({ srcAddr: flow.src, dstAddr: flow.dst, srcPort: PROBE_TCP_SPORT_LO, dstPort: 40406, tag: { seq: tag.seq, tsVal: (tag.tsVal ^ 1) >>> 0 } }) });
  t.equal(classifyProbe(wrong, ctx)?.kind, 'forged', 'one bit off in the timestamp half: forged');
});
