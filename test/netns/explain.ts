// --explain for real: rules of every shape in a two-node lab (iptables-nft in INPUT, in a user chain, in
// OUTPUT, a REJECT with tcp-reset, a native nftables table, an iptables-legacy rule, a chain policy DROP,
// a reply dropped in OUTPUT); each flow's rule.text must name the rule that does it, and afterwards (also
// after a SIGKILL of a responder with tracing armed, and its restart) the rulesets are exactly as before.
import t from 'tap';
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { LAUNCHER } from '../../src/lab/lab.js';
import { inNs, run } from '../../src/lab/sys.js';
import { withoutCounters } from '../../src/explain/ruleset.js';
import type { ExplainArmResponse } from '../../src/explain/types.js';
import type { FlowResult } from '../../src/types.js';
import { labReport, needsRoot, withLab } from '../helpers/lab.js';
import { exited, waitFor } from '../helpers/wait.js';

const LOG_ALL = '/proc/sys/net/netfilter/nf_log_all_netns';

async function rulesets(ns: string): Promise<string> {
  const out = await Promise.all(
    [['iptables-nft-save'], ['iptables-legacy-save'], ['nft', 'list', 'ruleset']].map(async (argv) => (await run(inNs(ns, argv))).stdout),
  );
  return out.map(withoutCounters).join('\n----\n');
}

async function sh(ns: string, lines: string[]): Promise<void> {
  for (const l of lines) await run(inNs(ns, l.split(' ').map((w) => w.replaceAll('\u00a0', ' '))));
}

/** The rules of the test: what each flow's rule must be. (\u00a0 keeps a comment one argument.) */
async function installRules(node1: string, node2: string): Promise<void> {
  await sh(node2, [
    'iptables-nft -A INPUT -p tcp --dport 179 -m comment --comment no\u00a0bgp\u00a0from\u00a0peers -j DROP',
    'iptables-nft -N CNT-USER',
    'iptables-nft -A INPUT -j CNT-USER',
    'iptables-nft -A CNT-USER -p udp --dport 4789 -j DROP',
    'iptables-nft -A INPUT -p tcp --dport 5473 -j REJECT --reject-with tcp-reset',
    'iptables-nft -A OUTPUT -p tcp --dport 2379 -j DROP',
    'iptables-legacy -A INPUT -p 4 -j DROP',
  ]);
  await run(inNs(node2, ['nft', '-f', '-']), {
    input: 'table inet hostfw {\n chain input {\n  type filter hook input priority 10; policy accept;\n  udp dport 51820 counter drop comment "no wg"\n }\n}\n',
  });
  await sh(node1, [
    'iptables-nft -A INPUT ! -p tcp -j ACCEPT',
    'iptables-nft -A INPUT -p tcp ! --dport 6443 -j ACCEPT',
    'iptables-nft -P INPUT DROP',
    'iptables-nft -A OUTPUT -p tcp --sport 179 -j DROP',
  ]);
}

const key = (r: FlowResult) => `${r.check} ${r.from}->${r.to}`;

t.test('every rule shape is named by --explain (on by default for pair); the rulesets are untouched', { skip: needsRoot }, async (t) => {
  const before = (await readFile(LOG_ALL, 'utf8')).trim();
  await writeFile(LOG_ALL, '1'); // legacy TRACE records of a non-initial namespace reach the kernel log only so
  t.teardown(() => writeFile(LOG_ALL, before));
  const lab = await withLab(t, { nodes: 2 });
  const [n1, n2] = [lab.nodes[0]!, lab.nodes[1]!];
  await installRules(n1.ns, n2.ns);
  const snap = [await rulesets(n1.ns), await rulesets(n2.ns)];

  const { run: cli, report } = await labReport(lab, ['pair', 'node1', 'node2']);
  t.equal(cli.code, 1, cli.stderr);
  const by = new Map(report.results.map((r) => [key(r), r]));
  const want: Array<[string, string, string, RegExp, Partial<NonNullable<FlowResult['rule']>>]> = [
    ['bgp node1->node2', 'ingress-blocked', 'iptables-nft', /^-A INPUT -p tcp -m tcp --dport 179 -m comment --comment "no bgp from peers" -j DROP$/, { chain: 'INPUT', position: 1 }],
    ['vxlan node1->node2', 'ingress-blocked', 'iptables-nft', /^-A CNT-USER -p udp -m udp --dport 4789 -j DROP$/, { chain: 'CNT-USER', position: 1 }],
    ['typha node1->node2', 'rejected', 'iptables-nft', /^-A INPUT -p tcp -m tcp --dport 5473 -j REJECT --reject-with tcp-reset$/, { verdict: 'reject', position: 3 }],
    ['wireguard node1->node2', 'ingress-blocked', 'nftables', /^udp dport 51820 counter drop comment "no wg"$/, { table: 'hostfw', family: 'inet' }],
    ['ipip node1->node2', 'ingress-blocked', 'iptables-legacy', /^-A INPUT -p (ipencap|4) -j DROP$/, { chain: 'INPUT', position: 1 }],
    ['etcd node2->node1', 'egress-blocked', 'iptables-nft', /^-A OUTPUT -p tcp -m tcp --dport 2379 -j DROP$/, { chain: 'OUTPUT' }],
    ['apiserver node2->node1', 'ingress-blocked', 'iptables-nft', /^policy DROP of chain INPUT$/, { policy: true }],
    ['bgp node2->node1', 'return-blocked', 'iptables-nft', /^-A OUTPUT -p tcp -m tcp --sport 179 -j DROP$/, { chain: 'OUTPUT' }],
  ];
  for (const [k, cause, backend, text, more] of want) {
    const r = by.get(k);
    t.equal(r?.cause, cause, `${k}: ${cause} (${r?.detail})`);
    t.equal(r?.rule?.backend, backend, `${k}: ${backend} (${r?.explainNote ?? ''})`);
    t.match(r?.rule?.text, text, `${k}: the right rule`);
    t.equal(r?.rule?.method, 'trace', `${k}: traced, not guessed`);
    t.match(r?.rule, more);
  }
  t.match(by.get('ipip node1->node2')?.rule?.splitBackend, { legacyRules: 1, iptables: 'nft' }, 'node2 has rules in both backends: said');
  t.same(report.results.filter((r) => r.verdict === 'pass').map((r) => r.rule).filter(Boolean), [], 'passing flows carry no rule');
  t.equal(report.explain?.named, want.length);
  const advice = (report.diagnosis ?? []).map((d) => d.advice).join('\n');
  t.match(advice, /`iptables -I INPUT 1 -s 198\.18\.1\.2 -p tcp --dport 179 -j ACCEPT`/, 'the diagnosis says how to allow it, in iptables terms');
  t.match(advice, /`nft insert rule inet hostfw input position \d+ ip saddr 198\.18\.1\.2 udp dport 51820 accept`/, 'and in nft terms for a native table');
  t.match(advice, /`iptables-legacy -I INPUT 1 -s 198\.18\.1\.2 -p 4 -j ACCEPT`/, 'and with the legacy binary for a legacy rule');
  t.same([await rulesets(n1.ns), await rulesets(n2.ns)], snap, 'rulesets exactly as before (counters aside)');

  // Without the kernel log of this namespace, the legacy rule is found by its counter: likely, and it says why.
  await writeFile(LOG_ALL, '0');
  const again = await labReport(lab, ['pair', 'node1', 'node2', '--checks', 'ipip']);
  const ipip = again.report.results.find((r) => key(r) === 'ipip node1->node2');
  t.match(ipip?.rule, { backend: 'iptables-legacy', method: 'counters', likely: true, text: /-A INPUT -p (ipencap|4) -j DROP/ });
  t.match(ipip?.rule?.traceUnavailable, /nf_log_all_netns/);
  t.same([await rulesets(n1.ns), await rulesets(n2.ns)], snap, 'still exactly as before');

  const off = await labReport(lab, ['pair', 'node1', 'node2', '--checks', 'bgp', '--no-explain']);
  t.same(off.report.results.map((r) => r.rule).filter(Boolean), [], '--no-explain: no rules');
  t.equal(off.report.explain, undefined);
});

const waitGone = (pid: number, ms: number): Promise<boolean> => waitFor(() => exited(pid), { timeout: ms, what: `pid ${pid} to exit`, every: 50 }).catch(() => false);

t.test('SIGTERM with tracing armed removes the table; a SIGKILL leaves it and the restart removes it', { skip: needsRoot }, async (t) => {
  const lab = await withLab(t, { nodes: 2, checks: ['bgp'] });
  const n2 = lab.nodes[1]!;
  const peer = lab.nodes[0]!.address;
  const snap = await rulesets(n2.ns);
  const tables = async () => (await run(inNs(n2.ns, ['nft', 'list', 'tables']))).stdout;
  // The lab's addresses live in its namespaces: talk to node2 from the router namespace, where the coordinator runs.
  const arm = async (): Promise<ExplainArmResponse> => {
    const id = randomBytes(8).toString('hex');
    const script = `
      import { ControlClient } from ${JSON.stringify(new URL('../../dist/coordinator/client.js', import.meta.url).href)};
      import { loadSecret } from ${JSON.stringify(new URL('../../dist/secret.js', import.meta.url).href)};
      const c = new ControlClient(${JSON.stringify(n2.address)}, 5478, await loadSecret(${JSON.stringify(lab.secretFile)}), ${JSON.stringify(n2.address)});
      await c.openSession({ id: '${id}', peers: ['${peer}'], ports: { bgp: 179 }, ttlMs: 60000, inbound: { from: ['${peer}'], flows: [0, 0, 1, 179] } });
      const a = await c.explain('${id}', { op: 'arm', specs: [{ id: 0, direction: 'in', check: 'bgp', transport: 'tcp', peer: '${peer}', port: 179, idx: 0 }], ttlMs: 60000 });
      console.log(JSON.stringify(a)); c.close();`;
    return JSON.parse((await run(inNs(lab.router, [process.execPath, '--input-type=module', '-e', script]))).stdout) as ExplainArmResponse;
  };
  const restart = async () => {
    const starts = ((await readFile(n2.log, 'utf8')).match(/"controlPort"/g) ?? []).length;
    const fd = openSync(n2.log, 'a');
    const child = spawn('ip', ['netns', 'exec', n2.ns, process.execPath, LAUNCHER, 'responder', '--listen', n2.address, '--secret-file', lab.secretFile, '--log-format', 'json'], {
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    child.unref();
    n2.pid = child.pid ?? null; // the lab's teardown stops this one
    await waitFor(async () => ((await readFile(n2.log, 'utf8')).match(/"controlPort"/g) ?? []).length > starts, { timeout: 20_000, what: 'the restarted responder to start', every: 100 });
  };

  let armed = await arm();
  t.equal(armed.method, 'trace', armed.note ?? '');
  let table = /nft table ip (\S+)/.exec(armed.added ?? '')?.[1];
  t.ok(table, `named what it added: ${armed.added}`);
  t.match(await tables(), table!, 'the trace table is there while armed');
  process.kill(n2.pid!, 'SIGTERM');
  t.ok(await waitGone(n2.pid!, 10_000), 'the responder exits on SIGTERM');
  t.notMatch(await tables(), table!, 'SIGTERM: the table went with it');
  t.equal(await rulesets(n2.ns), snap, 'ruleset exactly as before');
  t.match(await readFile(n2.log, 'utf8'), /removed nft table ip calico-nettest-/, 'it says what it removed');

  await restart();
  armed = await arm();
  table = /nft table ip (\S+)/.exec(armed.added ?? '')?.[1];
  t.ok(table);
  process.kill(n2.pid!, 'SIGKILL');
  t.ok(await waitGone(n2.pid!, 5000));
  t.match(await tables(), table!, 'a SIGKILL leaves it behind');
  await restart();
  t.match(await readFile(n2.log, 'utf8'), /removed leftover trace tables of an earlier run: table ip calico-nettest-/, 'the restart says what it removed');
  t.notMatch(await tables(), table!, 'the restart removed it');
  t.equal(await rulesets(n2.ns), snap, 'ruleset exactly as before');
});
