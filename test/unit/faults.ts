import t from 'tap';
import { defaultPorts } from '../../src/checks/catalogue.js';
import {
  expectedOutcome,
  FAULT_GRAMMAR,
  faultChecks,
  faultClearArgv,
  FaultError,
  faultRules,
  parseFault,
  validateFaultNodes,
  type Fault,
  type FaultContext,
} from '../../src/lab/faults.js';
import { describeTopology } from '../../src/lab/topology.js';
import { CHECK_IDS, type CheckId, type Transport } from '../../src/types.js';

const topo = describeTopology('cnt-abc123', 3);
const ctx: FaultContext = { router: topo.router, nodes: topo.nodes, ports: { ...defaultPorts(), vxlan: 8472 } };
const comment = (spec: string) => ['-m', 'comment', '--comment', `cnt-fault:${spec}`];

t.test('parse every example', async (t) => {
  t.same(parseFault('drop:ipip@node2:in'), { action: 'drop', check: 'ipip', where: { kind: 'in', node: 'node2' }, spec: 'drop:ipip@node2:in' });
  t.same(parseFault('reject:typha@node1:in'), { action: 'reject', check: 'typha', where: { kind: 'in', node: 'node1' }, spec: 'reject:typha@node1:in' });
  t.same(parseFault('drop:vxlan@path:node1>node3').where, { kind: 'path', from: 'node1', to: 'node3' });
  t.same(parseFault('drop:bgp@node2:out').where, { kind: 'out', node: 'node2' });
  t.same(parseFault('reject:bgp@path:node2>node1'), { action: 'reject', check: 'bgp', where: { kind: 'path', from: 'node2', to: 'node1' }, spec: 'reject:bgp@path:node2>node1' });
  t.same(parseFault('drop:bgp@node3:return').where, { kind: 'return', node: 'node3' });
  t.same(parseFault(' DROP:All@node-x.y_1:IN ').check, 'all', 'trimmed, case-insensitive keywords');
  t.equal(parseFault(' drop:all@node2:in ').spec, 'drop:all@node2:in');
  for (const line of FAULT_GRAMMAR.split('\n').filter((l) => /^\s+(drop|reject):/.test(l))) {
    t.doesNotThrow(() => parseFault(line), `grammar example ${line.trim()} parses`);
  }
});

t.test('malformed specs say what is wrong and show the grammar', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['drop:bgp', /missing '@'/],
    ['dropbgp@node1:in', /missing ':' between the action and the check/],
    ['block:bgp@node1:in', /unknown action 'block'; use drop or reject/],
    ['rejct:bgp@node1:in', /unknown action 'rejct' \(did you mean 'reject'\?\)/],
    ['drop:bpg@node1:in', /unknown check 'bpg' \(did you mean 'bgp'\?\)/],
    ['drop:flannel@node1:in', /unknown check 'flannel'/],
    ['drop:bgp@node1', /should be NODE:in, NODE:out, NODE:return or path:NODE>NODE/],
    ['drop:bgp@node1:inn', /unknown place 'inn' \(did you mean 'in'\?\)/],
    ['drop:bgp@node1:sideways', /unknown place 'sideways'; use in, out or return/],
    ['drop:bgp@:in', /'' is not a node name/],
    ['drop:bgp@path:node1', /path needs a direction/],
    ['drop:bgp@path:in', /path needs a direction/],
    ['drop:bgp@path:node1>node1', /path from node1 to itself/],
    ['drop:bgp@path:node1>node2>node3', /path takes one direction/],
    ['drop:bgp@path:>node2', /'' is not a node name/],
    ['drop:bgp@path:node1>no de', /'no de' is not a node name/],
    ['drop:bgp@node1:in@x', /more than one '@'/],
    ['drop:vxlan@node1:return', /vxlan is not TCP: its probes get no reply/],
    ['drop:ipip@node1:return', /ipip is not TCP/],
    ['', /missing '@'/],
  ];
  for (const [spec, re] of cases) {
    t.throws(() => parseFault(spec), { code: 'EFAULT', name: 'FaultError' }, spec);
    try {
      parseFault(spec);
    } catch (err) {
      t.type(err, FaultError);
      const msg = (err as Error).message;
      t.match(msg, new RegExp(`^bad fault '${spec.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}': `));
      t.match(msg, re, spec);
      t.ok(msg.includes(FAULT_GRAMMAR), 'message carries the grammar');
    }
  }
  t.match(FAULT_GRAMMAR, /ACTION:CHECK@WHERE/);
  t.match(FAULT_GRAMMAR, /drop:bgp@node3:return/);
});

t.test('validateFaultNodes', async (t) => {
  const names = topo.nodes.map((n) => n.name);
  t.doesNotThrow(() => validateFaultNodes(parseFault('drop:bgp@path:node1>node3'), names));
  t.throws(() => validateFaultNodes(parseFault('drop:bgp@node4:in'), names), { code: 'EFAULT', message: /unknown node 'node4' \(did you mean 'node1'\?\); lab nodes: node1, node2, node3/ });
  t.throws(() => validateFaultNodes(parseFault('drop:bgp@path:node1>nod3'), names), { message: /unknown node 'nod3' \(did you mean 'node3'\?\)/ });
});

t.test('rules for each kind', async (t) => {
  const rules = (spec: string) => faultRules(parseFault(spec), ctx);
  t.same(rules('drop:ipip@node2:in'), [
    { ns: 'cnt-abc123-n2', argv: ['iptables', '-A', 'INPUT', '-i', 'eth0', '-p', '4', ...comment('drop:ipip@node2:in'), '-j', 'DROP'] },
  ]);
  t.same(rules('reject:typha@node1:in'), [
    { ns: 'cnt-abc123-n1', argv: ['iptables', '-A', 'INPUT', '-i', 'eth0', '-p', 'tcp', '--dport', '5473', ...comment('reject:typha@node1:in'), '-j', 'REJECT', '--reject-with', 'tcp-reset'] },
  ]);
  t.same(rules('drop:vxlan@path:node1>node3'), [
    { ns: 'cnt-abc123-r', argv: ['iptables', '-A', 'FORWARD', '-i', 'n1', '-o', 'n3', '-p', 'udp', '--dport', '8472', ...comment('drop:vxlan@path:node1>node3'), '-j', 'DROP'] },
  ], 'uses the lab port, not the default');
  t.same(rules('drop:bgp@node2:out'), [
    { ns: 'cnt-abc123-n2', argv: ['iptables', '-A', 'OUTPUT', '-o', 'eth0', '-p', 'tcp', '--dport', '179', ...comment('drop:bgp@node2:out'), '-j', 'DROP'] },
  ]);
  t.same(rules('reject:bgp@path:node2>node1'), [
    { ns: 'cnt-abc123-r', argv: ['iptables', '-A', 'FORWARD', '-i', 'n2', '-o', 'n1', '-p', 'tcp', '--dport', '179', ...comment('reject:bgp@path:node2>node1'), '-j', 'REJECT', '--reject-with', 'tcp-reset'] },
  ]);
  t.same(rules('drop:bgp@node3:return'), [
    { ns: 'cnt-abc123-n3', argv: ['iptables', '-A', 'OUTPUT', '-o', 'eth0', '-p', 'tcp', '--sport', '179', ...comment('drop:bgp@node3:return'), '-j', 'DROP'] },
  ]);
  const target = (spec: string) => rules(spec)[0]!.argv.slice(-4);
  t.same(target('reject:vxlan@node1:in'), ['-j', 'REJECT', '--reject-with', 'icmp-port-unreachable']);
  t.same(target('reject:wireguard@node1:out'), ['-j', 'REJECT', '--reject-with', 'icmp-port-unreachable']);
  t.same(target('reject:ipip@node1:in'), ['-j', 'REJECT', '--reject-with', 'icmp-proto-unreachable']);
  t.same(target('reject:ipip@path:node1>node2'), ['-j', 'REJECT', '--reject-with', 'icmp-admin-prohibited']);
  t.same(target('reject:wireguard@path:node1>node2'), ['-j', 'REJECT', '--reject-with', 'icmp-admin-prohibited']);
  t.same(target('reject:etcd@path:node1>node2'), ['-j', 'REJECT', '--reject-with', 'tcp-reset']);

  const all = rules('drop:all@node1:in');
  t.equal(all.length, CHECK_IDS.length - 1, 'all: one rule per check (mtu probes travel as IP-in-IP: its rule)');
  t.same(all.map((r) => r.argv.slice(5, 9).join(' ')), [
    '-p tcp --dport 179', '-p 4 -m comment', '-p udp --dport 8472', '-p udp --dport 51820', '-p tcp --dport 5473', '-p tcp --dport 2379', '-p tcp --dport 6443',
  ]);
  t.same(faultChecks(parseFault('drop:all@node1:return')), ['bgp', 'typha', 'etcd', 'apiserver'], 'all at return: TCP checks only');
  t.equal(rules('reject:all@node2:return').length, 4);
  // Two checks on one port make one rule.
  t.equal(faultRules(parseFault('drop:all@node1:in'), { ...ctx, ports: { ...ctx.ports, etcd: 179 } }).length, CHECK_IDS.length - 2);

  t.throws(() => faultRules(parseFault('drop:bgp@node9:in'), ctx), { code: 'EFAULT', message: /unknown node 'node9'/ });
  t.throws(() => faultRules(parseFault('drop:bgp@node1:in'), { ...ctx, ports: { ...ctx.ports, bgp: null } }), { code: 'EFAULT', message: /bgp has no port/ });
});

t.test('faultClearArgv deletes exactly what was added', async (t) => {
  for (const spec of ['drop:ipip@node2:in', 'reject:bgp@path:node2>node1', 'drop:all@node1:out']) {
    const f = parseFault(spec);
    const add = faultRules(f, ctx);
    const del = faultClearArgv(f, ctx);
    t.equal(del.length, add.length);
    del.forEach((d, i) => {
      t.equal(d.ns, add[i]!.ns);
      t.same(d.argv, ['iptables', '-D', ...add[i]!.argv.slice(2)], spec);
    });
  }
});

t.test('expectedOutcome table', async (t) => {
  const f = (...specs: string[]): Fault[] => specs.map(parseFault);
  const flow = (check: CheckId, from: string, to: string) => ({ check, from, to, transport: transportOf(check) });
  const cases: Array<[string[], ReturnType<typeof flow>, string | null]> = [
    [[], flow('bgp', 'node1', 'node2'), null],
    [['drop:ipip@node2:in'], flow('ipip', 'node1', 'node2'), 'ingress-blocked'],
    [['drop:ipip@node2:in'], flow('ipip', 'node2', 'node1'), null],
    [['drop:ipip@node2:in'], flow('bgp', 'node1', 'node2'), null],
    [['reject:typha@node1:in'], flow('typha', 'node2', 'node1'), 'rejected'],
    [['drop:vxlan@path:node1>node3'], flow('vxlan', 'node1', 'node3'), 'path-blocked'],
    [['drop:vxlan@path:node1>node3'], flow('vxlan', 'node3', 'node1'), null],
    [['drop:vxlan@path:node1>node3'], flow('vxlan', 'node1', 'node2'), null],
    [['drop:bgp@node2:out'], flow('bgp', 'node2', 'node3'), 'egress-blocked'],
    [['drop:bgp@node2:out'], flow('bgp', 'node3', 'node2'), null],
    [['reject:bgp@node2:out'], flow('bgp', 'node2', 'node1'), 'egress-blocked'],
    [['reject:bgp@path:node2>node1'], flow('bgp', 'node2', 'node1'), 'rejected'],
    [['drop:bgp@node3:return'], flow('bgp', 'node1', 'node3'), 'return-blocked'],
    [['drop:bgp@node3:return'], flow('bgp', 'node3', 'node1'), null],
    [['reject:bgp@node3:return'], flow('bgp', 'node1', 'node3'), 'return-blocked'],
    [['drop:all@node3:return'], flow('vxlan', 'node1', 'node3'), null],
    [['drop:all@node3:return'], flow('etcd', 'node1', 'node3'), 'return-blocked'],
    [['drop:all@node2:in'], flow('wireguard', 'node1', 'node2'), 'ingress-blocked'],
    // The checksum-neutral IP-in-IP probe makes Linux's REJECT answer with ICMP (packets/ipip.ts checksumNeutral).
    [['reject:ipip@node2:in'], flow('ipip', 'node1', 'node2'), 'rejected'],
    [['reject:ipip@path:node1>node2'], flow('ipip', 'node1', 'node2'), 'rejected'],
    [['reject:vxlan@node2:in'], flow('vxlan', 'node1', 'node2'), 'rejected'],
    // Earliest hop wins: out, then path, then in, then return.
    [['drop:bgp@node2:in', 'drop:bgp@node1:out'], flow('bgp', 'node1', 'node2'), 'egress-blocked'],
    [['drop:bgp@node2:in', 'drop:bgp@path:node1>node2'], flow('bgp', 'node1', 'node2'), 'path-blocked'],
    [['reject:bgp@node2:in', 'drop:bgp@path:node1>node2'], flow('bgp', 'node1', 'node2'), 'path-blocked'],
    [['drop:bgp@node2:return', 'reject:bgp@node2:in'], flow('bgp', 'node1', 'node2'), 'rejected'],
    [['drop:bgp@node2:return', 'reject:bgp@path:node1>node2', 'drop:all@node1:out'], flow('bgp', 'node1', 'node2'), 'egress-blocked'],
  ];
  for (const [specs, fl, cause] of cases) {
    t.same(expectedOutcome(f(...specs), fl), { verdict: cause ? 'fail' : 'pass', cause }, `${specs.join(' + ') || 'no faults'}: ${fl.check} ${fl.from}>${fl.to}`);
  }
});

function transportOf(c: CheckId): Transport {
  return c === 'ipip' ? 'ipip' : c === 'vxlan' || c === 'wireguard' ? 'udp' : 'tcp';
}

t.test('mtu faults: parse, rules, clearing, ground truth', async (t) => {
  const bh = parseFault('mtu:1400@node2');
  t.same(bh, { action: 'mtu', check: 'mtu', where: { kind: 'link', node: 'node2' }, spec: 'mtu:1400@node2', mtu: 1400, icmp: false });
  const sig = parseFault(' MTU:1400@node2:ICMP ');
  t.equal(sig.icmp, true);
  t.equal(sig.mtu, 1400);
  for (const badSpec of ['mtu:1500@node2', 'mtu:100@node2', 'mtu:abc@node2', 'mtu:1400@node2:loud', 'mtu:1400', 'mtu:1400@no de']) {
    t.throws(() => parseFault(badSpec), FaultError, badSpec);
  }
  t.match(FAULT_GRAMMAR, /mtu:BYTES@NODE\[:icmp\]/);
  const n2 = topo.nodes[1]!;
  t.same(faultRules(bh, ctx), [
    { ns: topo.router, argv: ['ip', 'link', 'set', 'dev', n2.routerIf, 'mtu', '1400'] },
    { ns: topo.router, argv: ['iptables', '-A', 'OUTPUT', '-p', 'icmp', '--icmp-type', 'fragmentation-needed', ...comment('mtu:1400@node2'), '-j', 'DROP'] },
  ]);
  t.same(faultRules(sig, ctx), [{ ns: topo.router, argv: ['ip', 'link', 'set', 'dev', n2.routerIf, 'mtu', '1400'] }], 'with :icmp the router speaks');
  t.same(faultClearArgv(bh, ctx), [
    { ns: topo.router, argv: ['ip', 'link', 'set', 'dev', n2.routerIf, 'mtu', '1500'] },
    { ns: topo.router, argv: ['iptables', '-D', 'OUTPUT', '-p', 'icmp', '--icmp-type', 'fragmentation-needed', ...comment('mtu:1400@node2'), '-j', 'DROP'] },
  ]);
  t.throws(() => validateFaultNodes(parseFault('mtu:1400@node9'), ['node1', 'node2']), FaultError);
  const e = (f: Fault[], check: CheckId, from: string, to: string, transport: Transport = 'ipip') => expectedOutcome(f, { check, from, to, transport });
  t.same(e([bh], 'mtu', 'node1', 'node2'), { verdict: 'fail', cause: 'mtu-blackhole' });
  t.same(e([bh], 'mtu', 'node2', 'node1'), { verdict: 'fail', cause: 'mtu-blackhole' });
  t.same(e([sig], 'mtu', 'node1', 'node2'), { verdict: 'fail', cause: 'mtu-limited' });
  t.same(e([sig], 'mtu', 'node2', 'node1'), { verdict: 'fail', cause: 'mtu-blackhole' }, 'the veth drop from the node says nothing');
  t.same(e([bh], 'mtu', 'node1', 'node3'), { verdict: 'pass', cause: null });
  t.same(e([bh], 'ipip', 'node1', 'node2'), { verdict: 'pass', cause: null }, 'small probes pass');
  t.same(e([parseFault('drop:all@node2:in')], 'mtu', 'node1', 'node2'), { verdict: 'fail', cause: 'ingress-blocked' });
});

t.test('mtu flows: a rule for their framing catches them first; the link fault ranks last', async (t) => {
  const f = [parseFault('drop:ipip@node2:in'), parseFault('mtu:1400@node3')];
  t.same(expectedOutcome(f, { check: 'mtu', from: 'node3', to: 'node2', transport: 'ipip' }), { verdict: 'fail', cause: 'ingress-blocked' });
  t.same(expectedOutcome(f, { check: 'mtu', from: 'node3', to: 'node1', transport: 'ipip' }), { verdict: 'fail', cause: 'mtu-blackhole' });
  t.same(expectedOutcome([parseFault('drop:vxlan@node2:in')], { check: 'mtu', from: 'node1', to: 'node2', transport: 'ipip' }), { verdict: 'pass', cause: null });
});
