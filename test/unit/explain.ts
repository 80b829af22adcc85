// --explain's pure parts: the ruleset parsers (real nft / iptables-save output), the trace table script,
// trace-line and kernel-log parsing, mapping a trace to the rule the user wrote, counter deltas, advice,
// which flows are blamed on a host, and the explain call's validation. Random and truncated text never throws.
import t from 'tap';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { iptablesContent, parseIptablesSave, parseNftRuleset, withoutCounters } from '../../src/explain/ruleset.js';
import {
  isOwnTable,
  legacyMatches,
  parseLegacyTrace,
  parseNftTraceLine,
  probeMatch,
  responderTag,
  tableName,
  TraceFollower,
  traceTableScript,
} from '../../src/explain/trace.js';
import { firewalldZone, ruleFromCounters, ruleFromLegacyTrace, ruleFromNftTrace, splitBackend, type HostRulesets } from '../../src/explain/resolve.js';
import { allowCommand, annotateDiagnosis, quoteRule } from '../../src/explain/advice.js';
import { blamedFlows } from '../../src/explain/coordinator.js';
import { namesFlow } from '../../src/explain/host.js';
import { parseExplainRequest } from '../../src/explain/route.js';
import { BadRequest } from '../../src/control/protocol.js';
import type { RuleFact, TraceSpec } from '../../src/explain/types.js';
import type { FlowResult } from '../../src/types.js';

const fixture = (f: string) => readFileSync(new URL(`../fixtures/explain/${f}`, import.meta.url), 'utf8');
const NFT = fixture('nft-list-ruleset.txt');
const IPT_NFT = fixture('iptables-nft-save.txt');
const IPT_LEGACY = fixture('iptables-legacy-save.txt');
const TABLE = 'calico-nettest-c613fa02-abcdef0123456789';

const hostRulesets = (): HostRulesets => ({ nft: parseNftRuleset(NFT), iptNft: parseIptablesSave(IPT_NFT), iptLegacy: parseIptablesSave(IPT_LEGACY), iptables: 'nft' });

t.test('nft -a list ruleset: tables, chains, rules in order with handles, counters, sets and quoted braces skipped', async (t) => {
  const tables = parseNftRuleset(NFT);
  t.same(tables.map((x) => `${x.family} ${x.name}`), ['ip filter', 'inet hostfw']);
  const input = tables[0]!.chains.find((c) => c.name === 'INPUT')!;
  t.match(input, { hook: 'input', priority: 'filter', policy: 'accept' });
  t.same(input.rules.map((r) => [r.position, r.handle, r.packets]), [[1, 6, 1], [2, 3, 1], [3, 4, 567]]);
  t.equal(input.rules[1]!.text, 'tcp dport 179 counter drop', 'counters are state, not what was written');
  const hostfw = tables[1]!.chains;
  t.same(hostfw.map((c) => c.name), ['input'], 'a set is not a chain');
  t.equal(hostfw[0]!.priority, 'filter + 10');
  t.same(hostfw[0]!.rules.map((r) => r.text), ['tcp dport 6443 counter reject with icmpx admin-prohibited comment "no api { brace"', 'ip saddr @peers udp dport { 51820, 51821 } drop']);
  t.same(hostfw[0]!.rules.map((r) => r.handle), [3, 5]);
});

t.test('iptables-save -c: chains, policies and counters, rules by position with targets', async (t) => {
  const [filter] = parseIptablesSave(IPT_NFT);
  t.equal(filter!.name, 'filter');
  const input = filter!.chains.find((c) => c.name === 'INPUT')!;
  t.match(input, { policy: 'ACCEPT', policyPackets: 0 });
  t.same(input.rules.map((r) => [r.position, r.target, r.packets]), [[1, 'REJECT', 1], [2, 'DROP', 1], [3, 'CALICO-TEST', 567]]);
  t.equal(input.rules[1]!.text, '-A INPUT -p tcp -m tcp --dport 179 -m comment --comment "block bgp" -j DROP');
  t.equal(filter!.chains.find((c) => c.name === 'CALICO-TEST')!.policy, null, 'a user chain has no policy');
  t.equal(iptablesContent(parseIptablesSave(IPT_LEGACY)), 2, 'one rule and a DROP policy');
  t.equal(iptablesContent(parseIptablesSave('*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n')), 0, 'an empty backend is not in use');
  t.notMatch(withoutCounters(IPT_NFT), /\[\d+:\d+\]|Generated/);
  t.equal(withoutCounters('tcp dport 1 counter packets 5 bytes 9 drop'), 'tcp dport 1 counter drop');
});

t.test('the parsers never throw on random or truncated text', async (t) => {
  const texts = [NFT, IPT_NFT, IPT_LEGACY, fixture('nft-monitor-trace.txt')];
  fc.assert(
    fc.property(fc.constantFrom(...texts), fc.nat(), fc.string(), (text, cut, junk) => {
      const s = text.slice(0, cut % (text.length + 1)) + junk;
      parseNftRuleset(s);
      parseIptablesSave(s);
      for (const l of s.split('\n')) {
        parseNftTraceLine(l);
        parseLegacyTrace(l);
      }
    }),
    { numRuns: 400 },
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 400 }), (s) => {
      parseNftRuleset(s);
      parseIptablesSave(s);
      parseNftTraceLine(s);
      parseLegacyTrace(s);
    }),
  );
  t.pass('no throw');
});

const spec = (over: Partial<TraceSpec>): TraceSpec => ({ id: 0, direction: 'in', check: 'bgp', transport: 'tcp', peer: '198.18.1.2', port: 179, idx: 0, ...over });

t.test('the trace table marks only the session probes: addresses, protocol, port, stamp; before every filter hook', async (t) => {
  t.equal(probeMatch(spec({}), 'abcdef0123456789', 0x00051234), `tcp dport 179 tcp sequence ${0x00051234}`);
  t.equal(probeMatch(spec({ direction: 'return' }), 'abcdef0123456789', 0xffffffff), 'tcp sport 179 tcp ackseq 0', 'the reply acknowledges seq + 1, modulo 2^32');
  t.equal(probeMatch(spec({ check: 'wireguard', transport: 'udp', port: 51820 }), 'abcdef0123456789', 0), 'udp dport 51820 @th,64,32 0x434e5450 @th,240,64 0xabcdef0123456789');
  t.equal(probeMatch(spec({ check: 'vxlan', transport: 'udp', port: 4789 }), 'abcdef0123456789', 0), 'udp dport 4789 @th,464,32 0x434e5450 @th,640,64 0xabcdef0123456789', 'the probe inside the VXLAN frame');
  t.equal(probeMatch(spec({ check: 'ipip', transport: 'ipip', port: null }), 'abcdef0123456789', 0), 'ip protocol 4 @th,224,32 0x434e5450 @th,400,64 0xabcdef0123456789', 'th of protocol 4 is the inner header');
  const script = traceTableScript({
    table: TABLE,
    address: '198.18.2.2',
    sessionId: 'abcdef0123456789',
    specs: [spec({ id: 0 }), spec({ id: 1, direction: 'out', peer: '198.18.3.2', check: 'vxlan', transport: 'udp', port: 4789 })],
    seqOf: () => 42,
    canary: '0011223344556677',
  });
  t.match(script, /chain pre \{\n {4}type filter hook prerouting priority -350; policy accept;\n {4}ip saddr 198\.18\.1\.2 ip daddr 198\.18\.2\.2 tcp dport 179 tcp sequence 42 meta nftrace set 1 comment "cnt:0"\n/);
  t.match(script, /chain out \{\n {4}type filter hook output priority -350;[^\n]*\n {4}ip daddr 127\.0\.0\.1 udp dport 9 @th,64,64 0x0011223344556677[^\n]*"cnt:canary"\n {4}ip saddr 198\.18\.2\.2 ip daddr 198\.18\.3\.2 udp dport 4789/);
  t.notMatch(script, /policy drop|accept\s*$/m, 'it only sets the trace bit: never a verdict of its own');
  t.equal(responderTag('198.18.2.2'), 'c6120202');
  t.equal(tableName('c6120202', 'abcdef0123456789'), 'calico-nettest-c6120202-abcdef0123456789');
  t.ok(isOwnTable('calico-nettest-c6120202-abcdef0123456789', 'c6120202'));
  t.notOk(isOwnTable('calico-nettest-c6120203-abcdef0123456789', 'c6120202'), "another responder's table is not ours to remove");
  t.notOk(isOwnTable('filter', 'c6120202'));
});

t.test('trace lines: rule, policy, packet, unknown handle; the follower takes the first drop after our mark', async (t) => {
  t.match(parseNftTraceLine('trace id 2c36c87e ip filter CALICO-TEST rule udp dport 4789 counter packets 1 bytes 28 drop # handle 5 (verdict drop)'), {
    id: '2c36c87e', family: 'ip', table: 'filter', chain: 'CALICO-TEST', kind: 'rule', handle: 5, verdict: 'drop', text: 'udp dport 4789 counter packets 1 bytes 28 drop',
  });
  t.match(parseNftTraceLine('trace id 1 ip filter INPUT policy drop '), { kind: 'policy', verdict: 'drop' });
  t.match(parseNftTraceLine('trace id 1 ip t out unknown rule handle 5 (verdict continue)'), { kind: 'rule', handle: 5, text: '', verdict: 'continue' });
  t.match(parseNftTraceLine('trace id 1 ip filter INPUT rule counter jump X # handle 4 (verdict jump X)'), { verdict: 'jump X' });
  t.equal(parseNftTraceLine('something else'), null);
  const f = new TraceFollower(TABLE);
  for (const l of fixture('nft-monitor-trace.txt').split('\n')) f.pushLine(l);
  t.ok(f.canarySeen, 'the canary says the monitor listens');
  t.same(f.packets.map((p) => [p.spec, p.drop ? `${p.drop.table}/${p.drop.chain}/${p.drop.handle}` : null]), [[0, 'filter/INPUT/6'], [1, 'filter/CALICO-TEST/5'], [2, 'hostfw/input/5'], [3, null]]);
  const rs = hostRulesets();
  const reject = ruleFromNftTrace(f.packets[0]!.drop!, rs);
  t.match(reject, { backend: 'iptables-nft', table: 'filter', chain: 'INPUT', handle: 6, position: 1, verdict: 'reject', method: 'trace', text: '-A INPUT -p tcp -m tcp --dport 5473 -j REJECT --reject-with tcp-reset' });
  t.match(ruleFromNftTrace(f.packets[1]!.drop!, rs), { backend: 'iptables-nft', chain: 'CALICO-TEST', position: 1, text: '-A CALICO-TEST -p udp -m udp --dport 4789 -j DROP' });
  t.match(ruleFromNftTrace(f.packets[2]!.drop!, rs), { backend: 'nftables', family: 'inet', table: 'hostfw', handle: 5, position: 2, text: 'ip saddr @peers udp dport { 51820, 51821 } drop', verdict: 'drop' });
  t.match(reject.splitBackend, { legacyRules: 2, nftRules: 5, iptables: 'nft' }, 'rules in both backends: the trap is named');
  t.equal(ruleFromNftTrace(f.packets[2]!.drop!, rs).splitBackend, undefined, 'not for a native nftables rule');
  t.match(ruleFromNftTrace({ id: '1', family: 'ip', table: 'filter', chain: 'INPUT', kind: 'policy', text: 'drop', handle: null, verdict: 'drop' }, rs), { text: 'policy ACCEPT of chain INPUT', policy: true }, 'a policy says what iptables-save says');
  t.match(ruleFromNftTrace({ id: '1', family: 'inet', table: 'hostfw', chain: 'input', kind: 'policy', text: 'drop', handle: null, verdict: 'drop' }, rs), { backend: 'nftables', text: 'policy drop of chain input' });
});

t.test('legacy TRACE records: parsed from /dev/kmsg, matched to the spec, mapped to the legacy rule or policy', async (t) => {
  const ev = parseLegacyTrace(fixture('kmsg-trace.txt'))!;
  t.match(ev, { table: 'filter', chain: 'INPUT', kind: 'rule', num: 1, fields: { SRC: '198.19.250.1', DST: '198.19.250.2', PROTO: '4' } });
  const ipip = spec({ check: 'ipip', transport: 'ipip', port: null, peer: '198.19.250.1' });
  t.ok(legacyMatches(ev, ipip, '198.19.250.2', 0));
  t.notOk(legacyMatches(ev, { ...ipip, peer: '198.19.250.9' }, '198.19.250.2', 0), 'another sender');
  t.notOk(legacyMatches(ev, spec({ peer: '198.19.250.1' }), '198.19.250.2', 0), 'another protocol');
  const tcp = parseLegacyTrace('TRACE: filter:INPUT:rule:1 IN=x SRC=1.1.1.1 DST=2.2.2.2 PROTO=TCP SPT=61000 DPT=179 SEQ=42 ACK=0')!;
  t.ok(legacyMatches(tcp, spec({ peer: '1.1.1.1' }), '2.2.2.2', 42));
  t.notOk(legacyMatches(tcp, spec({ peer: '1.1.1.1' }), '2.2.2.2', 43), 'a SYN without our tag is not our probe');
  const reply = parseLegacyTrace('TRACE: filter:OUTPUT:rule:2 SRC=2.2.2.2 DST=1.1.1.1 PROTO=TCP SPT=179 DPT=61000 SEQ=9 ACK=43')!;
  t.ok(legacyMatches(reply, spec({ direction: 'return', peer: '1.1.1.1' }), '2.2.2.2', 42), 'the reply acknowledges our SYN');
  const rs = hostRulesets();
  t.match(ruleFromLegacyTrace(ev, rs), { backend: 'iptables-legacy', position: 1, text: '-A INPUT -p ipencap -m comment --comment "legacy ipip" -j DROP', method: 'trace', splitBackend: { iptables: 'nft' } });
  t.equal(ruleFromLegacyTrace({ ...ev, kind: 'policy', num: 2 }, rs), null, 'INPUT policy ACCEPT: not the verdict');
  t.match(ruleFromLegacyTrace({ ...ev, chain: 'FORWARD', kind: 'policy', num: 1 }, rs), { text: 'policy DROP of chain FORWARD', policy: true });
  t.equal(ruleFromLegacyTrace({ ...ev, num: 9 }, rs), null);
});

t.test('counters: a dropping rule that grew by at least the probes sent is "likely"; a rule naming the flow wins', async (t) => {
  const before = hostRulesets();
  const grow = (text: string, pairs: Array<[RegExp, number]>) => {
    let s = text;
    for (const [re, n] of pairs) s = s.replace(re, (m) => m.replace(/\[\d+:/, `[${n}:`).replace(/packets \d+/, `packets ${n}`));
    return s;
  };
  const after: HostRulesets = {
    ...before,
    iptNft: parseIptablesSave(grow(IPT_NFT, [[/^\[1:40\] -A INPUT -p tcp -m tcp --dport 179.*$/m, 4], [/^\[3:84\] -A CALICO-TEST.*$/m, 9]])),
    iptLegacy: parseIptablesSave(grow(IPT_LEGACY, [[/^\[0:0\] -A INPUT -p ipencap.*$/m, 3]])),
  };
  const r = ruleFromCounters(before, after, 3, 'no nft', namesFlow(spec({ port: 179 })));
  t.match(r, { backend: 'iptables-nft', position: 2, method: 'counters', likely: true, traceUnavailable: 'no nft', text: /--dport 179/ });
  t.match(ruleFromCounters(before, after, 3, 'x', namesFlow(spec({ check: 'ipip', transport: 'ipip', port: null }))), { backend: 'iptables-legacy', text: /ipencap/ });
  t.match(ruleFromCounters(before, after, 5, 'x', namesFlow(spec({ port: 179 }))), { chain: 'CALICO-TEST', text: /--dport 4789/ }, 'only a rule that grew by the probes sent qualifies, naming or not');
  t.equal(ruleFromCounters(before, after, 10, 'x'), null, 'nothing grew by 10');
  t.equal(ruleFromCounters(before, before, 1, 'x'), null);
});

t.test('firewalld zones, split backends', async (t) => {
  t.equal(firewalldZone('firewalld', 'filter_IN_public_allow'), 'public');
  t.equal(firewalldZone('firewalld', 'filter_IN_internal'), 'internal');
  t.equal(firewalldZone('firewalld', 'filter_INPUT'), undefined);
  t.equal(firewalldZone('filter', 'IN_public_deny'), 'public', "firewalld's iptables backend");
  t.equal(firewalldZone('filter', 'INPUT'), undefined);
  t.equal(firewalldZone('hostfw', 'filter_IN_public'), undefined, 'only in firewalld tables');
  t.equal(splitBackend({ ...hostRulesets(), iptLegacy: parseIptablesSave('*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n') }), undefined, 'an empty legacy backend is no trap');
});

const rule = (over: Partial<RuleFact>): RuleFact => ({ backend: 'iptables-nft', family: 'ip', table: 'filter', chain: 'INPUT', position: 3, text: '-A INPUT -p tcp -m tcp --dport 179 -j DROP', verdict: 'drop', method: 'trace', ...over });

t.test('how to allow it, in the terms of the rule', async (t) => {
  const f = { direction: 'in' as const, transport: 'tcp' as const, port: 179, peer: '198.18.1.2' };
  t.equal(allowCommand(rule({}), f), 'iptables -I INPUT 3 -s 198.18.1.2 -p tcp --dport 179 -j ACCEPT', 'before the dropping rule');
  t.equal(allowCommand(rule({ policy: true, position: undefined }), f), 'iptables -A INPUT -s 198.18.1.2 -p tcp --dport 179 -j ACCEPT', 'a policy: append');
  t.equal(allowCommand(rule({ backend: 'iptables-legacy' }), f), 'iptables-legacy -I INPUT 3 -s 198.18.1.2 -p tcp --dport 179 -j ACCEPT');
  t.equal(allowCommand(rule({ backend: 'iptables-legacy', splitBackend: { legacyRules: 1, nftRules: 1, iptables: 'legacy' } }), f), 'iptables -I INPUT 3 -s 198.18.1.2 -p tcp --dport 179 -j ACCEPT', 'where iptables is legacy, plain iptables');
  t.equal(allowCommand(rule({ splitBackend: { legacyRules: 1, nftRules: 1, iptables: 'legacy' } }), f), 'iptables-nft -I INPUT 3 -s 198.18.1.2 -p tcp --dport 179 -j ACCEPT');
  t.equal(allowCommand(rule({ table: 'raw', chain: 'PREROUTING', position: 1 }), f), 'iptables -t raw -I PREROUTING 1 -s 198.18.1.2 -p tcp --dport 179 -j ACCEPT');
  t.equal(allowCommand(rule({ chain: 'OUTPUT' }), { ...f, direction: 'return' }), 'iptables -I OUTPUT 3 -d 198.18.1.2 -p tcp --sport 179 -j ACCEPT', 'replies: by source port');
  t.equal(allowCommand(rule({ chain: 'OUTPUT' }), { direction: 'out', transport: 'ipip', port: null, peer: '198.18.2.2' }), 'iptables -I OUTPUT 3 -d 198.18.2.2 -p 4 -j ACCEPT');
  const nft = rule({ backend: 'nftables', family: 'inet', table: 'hostfw', chain: 'input', handle: 7, text: 'udp dport 51820 drop' });
  t.equal(allowCommand(nft, { ...f, transport: 'udp', port: 51820 }), 'nft insert rule inet hostfw input position 7 ip saddr 198.18.1.2 udp dport 51820 accept');
  t.equal(allowCommand({ ...nft, policy: true, handle: undefined }, { ...f, transport: 'ipip', port: null }), 'nft add rule inet hostfw input ip saddr 198.18.1.2 meta l4proto 4 accept');
  t.equal(allowCommand({ ...nft, table: 'firewalld', chain: 'filter_IN_public', firewalldZone: 'public' }, f), 'firewall-cmd --permanent --zone=public --add-port=179/tcp && firewall-cmd --reload');
  t.equal(quoteRule(nft), '`udp dport 51820 drop` (nftables, table inet hostfw, chain input, rule 3, handle 7)');
  t.equal(quoteRule(rule({})), '`-A INPUT -p tcp -m tcp --dport 179 -j DROP` (iptables-nft, table filter, chain INPUT, rule 3)');
});

const result = (over: Partial<FlowResult>): FlowResult => ({
  check: 'bgp', from: 'n1', to: 'n2', verdict: 'fail', cause: 'ingress-blocked', rejectedBy: null, detail: '', rttMs: null, attempts: 3, observedSource: null, toAddress: '198.18.2.2', port: 179, ...over,
});

t.test('blamed flows: host-side causes only; a reject from a router is not a host rule', async (t) => {
  const addr = new Map([['n1', '198.18.1.2'], ['n2', '198.18.2.2']]);
  const rs = [
    result({}),
    result({ cause: 'egress-blocked' }),
    result({ cause: 'return-blocked' }),
    result({ cause: 'rejected', rejectedBy: '198.18.2.2' }),
    result({ cause: 'rejected', rejectedBy: '198.18.3.1' }),
    result({ cause: 'path-blocked' }),
    result({ verdict: 'pass', cause: null }),
    result({ cause: 'ingress-blocked', sourceOnly: true }),
    result({ cause: 'rejected', rejectedBy: '198.18.2.2', where: 'path' }),
    result({ to: 'elsewhere', cause: 'ingress-blocked' }),
  ];
  t.same(blamedFlows(rs, addr).map((b) => [b.result, b.host, b.direction]), [[0, 'n2', 'in'], [1, 'n1', 'out'], [2, 'n2', 'return'], [3, 'n2', 'in']]);
  t.same(blamedFlows([result({ verdict: 'pass', cause: null })], addr), [], 'a clean run: nothing to explain');
});

t.test('the diagnosis quotes each distinct rule once, with the command to allow it', async (t) => {
  const r = result({ rule: rule({ position: 1 }) });
  const st = [{ text: 'x', where: 'destination', flows: 2, advice: 'Look.', examples: [{ check: 'bgp' as const, from: 'n1', to: 'n2' }, { check: 'bgp' as const, from: 'n1', to: 'n2' }] }];
  const [out] = annotateDiagnosis(st, { result: () => r, addressOf: (n) => (n === 'n1' ? '198.18.1.2' : '198.18.2.2') });
  t.equal((out!.advice.match(/On n2 the rule/g) ?? []).length, 1);
  t.match(out!.advice, /^Look\. On n2 the rule that took the verdict is `-A INPUT -p tcp -m tcp --dport 179 -j DROP` .*To allow it: `iptables -I INPUT 1 -s 198\.18\.1\.2 -p tcp --dport 179 -j ACCEPT`\.$/);
  const [likely] = annotateDiagnosis(st, { result: () => result({ rule: rule({ method: 'counters', likely: true, traceUnavailable: 'nft is not installed' }) }), addressOf: () => '198.18.1.2' });
  t.match(likely!.advice, /Likely \(its packet counter grew by the probes sent; tracing was not used: nft is not installed\)/);
  const [split] = annotateDiagnosis(st, { result: () => result({ rule: rule({ backend: 'iptables-legacy', splitBackend: { legacyRules: 2, nftRules: 40, iptables: 'nft' } }) }), addressOf: () => '198.18.1.2' });
  t.match(split!.advice, /n2 has iptables rules in both backends, legacy \(2\) and nft \(40\) \(`iptables` there is iptables-nft\): the dropping rule is in iptables-legacy/);
  t.same(annotateDiagnosis(st, { result: () => result({}), addressOf: () => undefined }), st, 'no rule: unchanged');
});

t.test('the explain call validates its body', async (t) => {
  const good = { op: 'arm', specs: [spec({ peer: '198.18.1.2' })], ttlMs: 60_000 };
  t.match(parseExplainRequest(good), { op: 'arm', ttlMs: 60_000 });
  t.match(parseExplainRequest({ op: 'collect', sent: { '0': 3 }, waitMs: 400 }), { op: 'collect', sent: { '0': 3 } });
  const bad: unknown[] = [
    null,
    [],
    { op: 'x' },
    { ...good, specs: [] },
    { ...good, specs: [spec({}), spec({})] },
    { ...good, specs: [{ ...spec({}), peer: 'node2; rm -rf' }] },
    { ...good, specs: [{ ...spec({}), port: null }] },
    { ...good, specs: [{ ...spec({ check: 'vxlan', transport: 'udp', port: 4789 }), direction: 'return' }] },
    { ...good, specs: [{ ...spec({}), check: 'ssh' }] },
    { ...good, ttlMs: 10 },
    { ...good, method: 'guess' },
    { op: 'collect', sent: { x: 1 }, waitMs: 1 },
    { op: 'collect', sent: {}, waitMs: 99_999 },
  ];
  const refused = (v: unknown) => {
    try {
      parseExplainRequest(v);
      return false;
    } catch (err) {
      return err instanceof BadRequest;
    }
  };
  for (const b of bad) t.ok(refused(b), `refused with 400: ${JSON.stringify(b)}`);
  fc.assert(fc.property(fc.anything(), (v) => {
    try {
      parseExplainRequest(v);
    } catch (err) {
      if (!(err instanceof BadRequest)) throw err;
    }
  }));
});

t.test('explainReport: nothing blamed contacts no one; a responder that cannot be reached says so per flow; tracing is capped per host', async (t) => {
  const { explainReport, MAX_TRACED_PER_HOST } = await import('../../src/explain/coordinator.js');
  const inv = {
    file: 'x',
    nodes: [
      { name: 'n1', address: '198.18.1.2', roles: [], control: { host: '127.0.0.1', port: 1 } },
      { name: 'n2', address: '198.18.2.2', roles: [], control: { host: '127.0.0.1', port: 1 } },
    ],
    endpoints: [],
    checks: null,
    ports: { bgp: 179, ipip: null, vxlan: 4789, wireguard: 51820, typha: 5473, etcd: 2379, apiserver: 6443, mtu: null },
  };
  const base = { schemaVersion: 1 as const, tool: { name: 'calico-nettest' as const, version: '0' }, startedAt: '', finishedAt: '', nodes: [], summary: { pass: 0, fail: 0, unknown: 0 } };
  const clean = { ...base, results: [result({ verdict: 'pass', cause: null })] };
  t.equal(await explainReport(clean, inv, { secret: Buffer.alloc(32) }), clean, 'the same report, untouched');
  t.equal(clean.results[0]!.explainNote, undefined);
  const many = { ...base, results: Array.from({ length: MAX_TRACED_PER_HOST + 2 }, () => result({})) };
  const out = await explainReport(many, inv, { secret: Buffer.alloc(32) });
  t.match(out.results[0]!.explainNote, /could not open an explain session on n2/);
  t.match(out.results[MAX_TRACED_PER_HOST + 1]!.explainNote, /not traced: only the first 256 flows blamed on n2/);
  t.match(out.explain, { flows: MAX_TRACED_PER_HOST, named: 0 });
  t.equal(out.results.filter((r) => r.rule).length, 0, 'no rule is made up');
});
