// preflight --local for real: run inside namespaces whose sysctls and iptables differ, on this kernel.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/lab/sys.js';
import { validatePreflight, type PreflightResult } from '../../src/preflight/result.js';
import { needsRoot, runIn } from '../helpers/lab.js';
import { kernelCan } from '../helpers/kernel.js';

const BIN = fileURLToPath(new URL('../../bin/calico-nettest', import.meta.url));

async function ns(t: Tap.Test, setup: string[][]): Promise<string> {
  const name = `cnt-pft-${randomBytes(3).toString('hex')}`;
  await run(['ip', 'netns', 'add', name]);
  t.teardown(() => run(['ip', 'netns', 'delete', name], { allowFail: true }));
  // a clean node: forwarding on, strict RPF, an up interface Felix's MTU pattern matches
  const base = [['sysctl', '-qw', 'net.ipv4.ip_forward=1'], ['sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=1'], ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p'], ['ip', 'link', 'set', 'eth0', 'up'], ['ip', 'link', 'set', 'eth0p', 'up']];
  for (const argv of [...base, ...setup]) await run(['ip', 'netns', 'exec', name, ...argv]);
  return name;
}
declare namespace Tap { type Test = import('tap').Test; }

async function preflight(name: string, extra: string[] = []) {
  const r = await runIn(['ip', 'netns', 'exec', name, process.execPath, BIN, 'preflight', '--local', '--checks', 'bgp,ipip,vxlan', '--node', name, '--format', 'json', ...extra]);
  let result: PreflightResult;
  try {
    result = JSON.parse(r.stdout) as PreflightResult;
  } catch {
    throw new Error(`no JSON (exit ${r.code}): ${r.stderr}`);
  }
  return { code: r.code, result };
}

t.test('preflight --local inside namespaces: rp_filter=2, ip_forward=0, both iptables backends, a clean node', { skip: needsRoot }, async (t) => {
  const ipip = await kernelCan(['ipip']);
  const vxlan = await kernelCan(['vxlan', 'id', '7', 'dstport', '4789']);
  const wireguard = await kernelCan(['wireguard']);
  const kernel = (r: PreflightResult) => r.findings.filter((f) => f.id === 'kernel-module-missing' && /^kernel lacks (ipip|vxlan|wireguard):/.test(f.detail));
  const expectKernel = (t: Tap.Test, r: PreflightResult) => {
    const got = kernel(r).map((f) => `${/lacks (\w+)/.exec(f.detail)![1]}:${f.severity}`).sort();
    const want = [...(ipip ? [] : ['ipip:error']), ...(vxlan ? [] : ['vxlan:error']), ...(wireguard ? [] : ['wireguard:warning'])].sort();
    t.same(got, want, `kernel findings match what trying says (ipip ${ipip}, vxlan ${vxlan}, wireguard ${wireguard})`);
  };
  const others = (r: PreflightResult) => r.findings.filter((f) => f.id !== 'kernel-module-missing').map((f) => f.id).sort();

  const clean = await ns(t, []);
  const c = await preflight(clean);
  t.same(validatePreflight(c.result), [], 'JSON matches schema/preflight.schema.json');
  t.same(others(c.result), [], 'clean node: nothing but what the kernel lacks');
  expectKernel(t, c.result);
  t.equal(c.code, ipip && vxlan ? 0 : 1, 'exit 1 exactly when a needed kernel feature is missing');
  t.ok(c.result.findings.every((f) => f.node === clean));

  const loose = await preflight(await ns(t, [['sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=2']]));
  t.same(others(loose.result), ['rp-filter-loose']);
  t.equal(loose.code, 1);
  expectKernel(t, loose.result);

  const noFwd = await preflight(await ns(t, [['sysctl', '-qw', 'net.ipv4.ip_forward=0']]));
  t.same(others(noFwd.result), ['ip-forward-disabled']);
  t.equal(noFwd.code, 1);

  const both = await preflight(await ns(t, [['iptables-legacy', '-A', 'INPUT', '-p', 'tcp', '--dport', '179', '-j', 'ACCEPT'], ['iptables-nft', '-A', 'INPUT', '-p', 'udp', '--dport', '4789', '-j', 'DROP']]));
  t.same(others(both.result), ['iptables-backend-mismatch']);
  t.match(both.result.findings.find((f) => f.id === 'iptables-backend-mismatch')!.detail, /1 in legacy .* 1 in nft/);
  t.same(validatePreflight(both.result), []);

  const noIface = await preflight(await ns(t, [['ip', 'link', 'del', 'eth0']]));
  t.same(others(noIface.result), ['mtu-iface-unmatched']);

  // the scratch namespaces preflight made are gone
  // (Other preflights, e.g. a lab's responders in a parallel test, make their own for a second: one that
  // is still there after 15 s was left behind.)
  const scratch = async () => (await run(['ip', 'netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!).filter((l) => l.startsWith('cnt-pf-'));
  const seen = await scratch();
  for (let i = 0; i < 150 && (await scratch()).some((n) => seen.includes(n)); i++) await new Promise((r) => setTimeout(r, 100));
  t.same((await scratch()).filter((n) => seen.includes(n)), [], 'no scratch namespace left behind');
});

t.test('preflight usage errors exit 2 with a message', async (t) => {
  const noLocal = await runIn([process.execPath, BIN, 'preflight']);
  t.equal(noLocal.code, 2);
  t.match(noLocal.stderr, /needs --local/);
  const badCheck = await runIn([process.execPath, BIN, 'preflight', '--local', '--checks', 'vxaln']);
  t.equal(badCheck.code, 2);
  t.match(badCheck.stderr, /did you mean 'vxlan'/);
  const badFmt = await runIn([process.execPath, BIN, 'preflight', '--local', '--format', 'xml']);
  t.equal(badFmt.code, 2);
  const help = await runIn([process.execPath, BIN, 'preflight', '--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /Examples:[\s\S]*Exit status: 0 no errors/);
});

t.test('vxlan-checksum-offload: a real vxlan.calico with tx checksum offload on, then off (ethtool -K)', { skip: needsRoot }, async (t) => {
  if (!(await kernelCan(['vxlan', 'id', '7', 'dstport', '4789']))) {
    t.comment('this kernel has no vxlan: no vxlan.calico to look at');
    return;
  }
  if ((await run(['sh', '-c', 'command -v ethtool'], { allowFail: true })).code !== 0) {
    t.fail('ethtool is not installed (.ci/run installs it)');
    return;
  }
  const name = await ns(t, [['ip', 'link', 'add', 'vxlan.calico', 'type', 'vxlan', 'id', '4096', 'dstport', '4789', 'dev', 'eth0'], ['ip', 'link', 'set', 'vxlan.calico', 'up']]);
  // What the kernel itself says about the device's features, read independently of the tool.
  const features = (await run(['ip', 'netns', 'exec', name, 'ethtool', '-k', 'vxlan.calico'])).stdout;
  const on = /^\s*tx-checksum-ip-generic: on/m.test(features);
  const offload = (r: PreflightResult) => r.findings.filter((f) => f.id === 'vxlan-checksum-offload');
  const before = await preflight(name);
  t.same(validatePreflight(before.result), []);
  t.equal(offload(before.result).length, on ? 1 : 0, `one finding exactly when ethtool says tx-checksum-ip-generic is on (${on})`);
  if (on) {
    const f = offload(before.result)[0]!;
    t.equal(f.severity, 'warning', 'a warning: whether this kernel has the bug cannot be read from the host');
    t.match(f.detail, /vxlan\.calico has tx checksum offload on \(tx-checksum-ip-generic/);
    t.match(f.fix, /ethtool -K vxlan\.calico tx-checksum-ip-generic off/);
    t.match(f.breaks, /TCP over VXLAN/);
  }
  await run(['ip', 'netns', 'exec', name, 'ethtool', '-K', 'vxlan.calico', 'tx-checksum-ip-generic', 'off']);
  const after = await preflight(name);
  t.same(offload(after.result), [], 'offload off: no finding');
  // Another VXLAN device (not Calico's) is not Calico's business.
  const other = await preflight(await ns(t, [['ip', 'link', 'add', 'vxlan.other', 'type', 'vxlan', 'id', '4097', 'dstport', '4790', 'dev', 'eth0']]));
  t.same(offload(other.result), []);
});
