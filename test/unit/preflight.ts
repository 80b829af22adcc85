import t from 'tap';
import fc from 'fast-check';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { cidrsOverlap, evaluateHost, nmPatternCovers, nmUnmanagedPatterns, type Finding, type PreflightContext } from '../../src/preflight/findings.js';
import { parseFirewalldZone, parseProcRoute, readHostFacts } from '../../src/preflight/host.js';

const CTX: PreflightContext = { node: 'n1', checks: ['bgp', 'ipip', 'vxlan', 'typha'] };

/** A host root with sane defaults, overridden by `files` (path → content, null deletes). */
async function hostRoot(t: Tap.Test, files: Record<string, string | null> = {}): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'preflight-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const base: Record<string, string | null> = {
    'proc/sys/kernel/osrelease': '6.1.0-18-amd64\n',
    'proc/sys/net/ipv4/conf/all/rp_filter': '1\n',
    'proc/sys/net/ipv4/ip_forward': '1\n',
    'proc/sys/net/netfilter/nf_conntrack_count': '10\n',
    'proc/sys/net/netfilter/nf_conntrack_max': '262144\n',
    'proc/1/comm': 'systemd\n',
    'sys/class/net/lo/operstate': 'unknown\n',
    'sys/class/net/lo/flags': '0x9\n',
    'sys/class/net/eth0/operstate': 'up\n',
    'proc/net/route': 'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\neth0\t00000000\t010212C6\t0003\t0\t0\t0\t00000000\t0\t0\t0\neth0\t000212C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n',
    ...files,
  };
  for (const [p, c] of Object.entries(base)) {
    if (c === null) continue;
    await mkdir(dirname(join(root, p)), { recursive: true });
    await writeFile(join(root, p), c);
  }
  return root;
}
declare namespace Tap { type Test = import('tap').Test; }

const ids = (fs: Finding[]) => fs.map((f) => f.id).sort();
async function findings(t: Tap.Test, files: Record<string, string | null>, ctx: Partial<PreflightContext> = {}) {
  return evaluateHost(await readHostFacts(await hostRoot(t, files)), { ...CTX, ...ctx });
}

t.test('a clean host has no findings', async (t) => {
  t.same(await findings(t, {}), []);
});

t.test('every finding has the contract shape and names the node', async (t) => {
  const fs = await findings(t, { 'proc/sys/net/ipv4/conf/all/rp_filter': '2', 'proc/sys/net/ipv4/ip_forward': '0', 'proc/sys/kernel/osrelease': '2.6.32-754.el6' });
  t.same(ids(fs), ['ip-forward-disabled', 'kernel-too-old', 'rp-filter-loose']);
  for (const f of fs) {
    t.equal(f.node, 'n1');
    t.equal(f.severity, 'error');
    for (const k of ['detail', 'breaks', 'fix'] as const) t.ok(f[k].length > 10, `${f.id}.${k}`);
  }
  t.match(fs.find((f) => f.id === 'rp-filter-loose')!.fix, /IgnoreLooseRPF|IGNORELOOSERPF/);
});

t.test('kernel version boundary: 3.10 passes, 3.9 does not', async (t) => {
  t.same(ids(await findings(t, { 'proc/sys/kernel/osrelease': '3.10.0-1160.el7.x86_64' })), []);
  t.same(ids(await findings(t, { 'proc/sys/kernel/osrelease': '3.9.11' })), ['kernel-too-old']);
  t.same(ids(await findings(t, { 'proc/sys/kernel/osrelease': null })), [], 'unknown kernel is no finding');
});

t.test('rp_filter 0 and 1 are fine; only loose (2) is a finding', async (t) => {
  for (const v of ['0', '1']) t.same(ids(await findings(t, { 'proc/sys/net/ipv4/conf/all/rp_filter': v })), []);
});

t.test('NetworkManager: running without unmanaged config is a finding; with the config it is not; not running is not', async (t) => {
  const nm = { 'proc/812/comm': 'NetworkManager\n' };
  const none = await findings(t, nm);
  t.same(ids(none), ['networkmanager-manages-calico']);
  t.match(none[0]!.detail, /cali\*, tunl\*, vxlan\.calico, vxlan-v6\.calico, wireguard\.cali/);
  const good = '[keyfile]\nunmanaged-devices=interface-name:cali*;interface-name:tunl*;interface-name:vxlan.calico;interface-name:vxlan-v6.calico;interface-name:wireguard.cali\n';
  t.same(ids(await findings(t, { ...nm, 'etc/NetworkManager/conf.d/calico.conf': good })), []);
  const partial = await findings(t, { ...nm, 'etc/NetworkManager/conf.d/calico.conf': '[keyfile]\nunmanaged-devices=interface-name:cali*;interface-name:tunl*\n' });
  t.match(partial[0]!.detail, /does not mark vxlan\.calico, vxlan-v6\.calico, wireguard\.cali unmanaged/);
  t.match(partial[0]!.detail, /\/etc\/NetworkManager\/conf\.d\/calico\.conf/);
  // the right key in the wrong section does not count
  t.same(ids(await findings(t, { ...nm, 'etc/NetworkManager/conf.d/calico.conf': good.replace('[keyfile]', '[main]') })), ['networkmanager-manages-calico']);
  t.same(ids(await findings(t, { 'etc/NetworkManager/conf.d/x.conf': '' })), [], 'config alone, NM not running');
  // a broader glob covers a narrower one
  t.same(ids(await findings(t, { ...nm, 'etc/NetworkManager/conf.d/c.conf': '[keyfile]\nunmanaged-devices=interface-name:cal*;interface-name:tunl*;interface-name:vxlan*;interface-name:wireguard.cali\n' })), []);
});

t.test('firewalld: names the required ports its default zone does not open', async (t) => {
  const fw = { 'proc/900/comm': 'firewalld\n', 'etc/firewalld/firewalld.conf': 'DefaultZone=public\n' };
  const zone = '<?xml version="1.0"?>\n<zone><port port="179" protocol="tcp"/><port protocol="udp" port="4789"/></zone>\n';
  const fs = await findings(t, { ...fw, 'etc/firewalld/zones/public.xml': zone });
  t.same(ids(fs), ['firewalld-active']);
  t.equal(fs[0]!.severity, 'warning');
  t.match(fs[0]!.detail, /does not open ipip \(IP protocol 4\), 5473\/tcp \(typha\)$/);
  t.notMatch(fs[0]!.detail, /179|4789/);
  t.match(fs[0]!.fix, /--add-protocol=ipip.*--add-port=5473\/tcp/);
  const open = zone.replace('</zone>', '<port port="5470-5480" protocol="tcp"/><protocol value="ipip"/></zone>');
  const ok = await findings(t, { ...fw, 'etc/firewalld/zones/public.xml': open });
  t.equal(ok[0]!.severity, 'info', 'all open: info only');
  t.same(ids(await findings(t, { 'etc/firewalld/zones/public.xml': zone })), [], 'firewalld not running');
});

t.test('conntrack near full: warning at 90%, error when full', async (t) => {
  t.same(ids(await findings(t, { 'proc/sys/net/netfilter/nf_conntrack_count': '899', 'proc/sys/net/netfilter/nf_conntrack_max': '1000' })), []);
  const w = await findings(t, { 'proc/sys/net/netfilter/nf_conntrack_count': '900', 'proc/sys/net/netfilter/nf_conntrack_max': '1000' });
  t.same([w[0]!.id, w[0]!.severity], ['conntrack-near-full', 'warning']);
  t.match(w[0]!.detail, /900 of 1000 entries \(90%\)/);
  const e = await findings(t, { 'proc/sys/net/netfilter/nf_conntrack_count': '1000', 'proc/sys/net/netfilter/nf_conntrack_max': '1000' });
  t.equal(e[0]!.severity, 'error');
});

t.test('mtu-iface-unmatched: no up interface matching Felix\'s pattern', async (t) => {
  const bond = { 'sys/class/net/eth0/operstate': null, 'sys/class/net/bond0/operstate': 'up\n' };
  const fs = await findings(t, bond);
  t.same(ids(fs), ['mtu-iface-unmatched']);
  t.match(fs[0]!.detail, /up: bond0\)/);
  t.same(ids(await findings(t, { ...bond, 'sys/class/net/enp3s0/operstate': 'up\n' })), []);
  t.same(ids(await findings(t, { ...bond, 'sys/class/net/enp3s0/operstate': 'down\n' })), ['mtu-iface-unmatched'], 'a down match does not count');
  t.same(ids(await findings(t, { ...bond, 'sys/class/net/ens5/operstate': 'unknown\n', 'sys/class/net/ens5/flags': '0x1003\n' })), [], 'unknown operstate with IFF_UP counts as up');
  t.same(ids(await findings(t, { ...bond, 'sys/class/net/enx0a1b2c3d4e5f/operstate': 'up\n' })), [], 'enx… (USB, by MAC) matches');
  t.same(ids(await findings(t, { ...bond, 'sys/class/net/enq0/operstate': 'up\n', 'sys/class/net/veth0/operstate': 'up\n' })), ['mtu-iface-unmatched'], 'en + a letter outside [Pcopsvx] does not');
});

t.test('pod-cidr-overlap: service range, node address, node route', async (t) => {
  t.same(ids(await findings(t, {}, { podCIDR: '192.168.0.0/16', serviceCIDR: '10.96.0.0/12' })), []);
  const svc = await findings(t, {}, { podCIDR: '10.96.0.0/16', serviceCIDR: '10.96.0.0/12' });
  t.match(svc[0]!.detail, /overlaps the service range 10\.96\.0\.0\/12/);
  const route = await findings(t, {}, { podCIDR: '198.18.0.0/15' });
  t.match(route[0]!.detail, /the route 198\.18\.2\.0\/24 dev eth0/);
  t.notMatch(route[0]!.detail, /0\.0\.0\.0\/0/, 'the default route overlaps everything and is not a finding');
  const f = await readHostFacts(await hostRoot(t));
  const addr = evaluateHost({ ...f, addresses: ['172.16.5.4'] }, { ...CTX, podCIDR: '172.16.0.0/12' });
  t.match(addr[0]!.detail, /the node address 172\.16\.5\.4/);
  t.equal(addr[0]!.severity, 'error');
});

t.test('parsers', async (t) => {
  t.same(parseProcRoute('Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\neth0\t000212C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\n'), [{ dest: '198.18.2.0/24', dev: 'eth0' }]);
  t.same(parseFirewalldZone('z', '<port port="1-3" protocol="udp"/>').ports.map((p) => p.port), [1, 2, 3]);
  t.same(nmUnmanagedPatterns([{ text: '[keyfile]\nunmanaged-devices=interface-name:cali*,mac:00:11:22:33:44:55;interface-name:=tunl0\n' }]), ['cali*', 'tunl0']);
  t.ok(nmPatternCovers('*', 'cali*'));
  t.notOk(nmPatternCovers('calico*', 'cali*'), 'a narrower glob does not cover cali*');
  t.notOk(cidrsOverlap('10.0.0.0/8', '11.0.0.0/8'));
  t.ok(cidrsOverlap('10.1.2.3', '10.0.0.0/8'));
});

t.test('property: parsers never throw on random text; overlap is symmetric', async (t) => {
  fc.assert(fc.property(fc.string(), (s) => { parseProcRoute(s); parseFirewalldZone('z', s); nmUnmanagedPatterns([{ text: s }]); }));
  const cidr = fc.tuple(fc.nat(0xffffffff), fc.integer({ min: 0, max: 32 })).map(([ip, b]) => `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}/${b}`);
  fc.assert(fc.property(cidr, cidr, (a, b) => cidrsOverlap(a, b) === cidrsOverlap(b, a)));
  fc.assert(fc.property(cidr, (a) => cidrsOverlap(a, a) && cidrsOverlap(a, '0.0.0.0/0')));
  t.pass('properties held');
});

t.test('kernel-module-missing: tried beats config; error only for what the checks need; config fallback; /sys/module', async (t) => {
  const { kernelModuleFindings, readKernelConfig, stateFromConfig } = await import('../../src/preflight/kernel.js');
  const { gzipSync } = await import('node:zlib');
  const full = ['NET_IPIP', 'VXLAN', 'WIREGUARD', 'IP_SET', 'NF_TABLES', 'IP_NF_IPTABLES', 'IP6_NF_IPTABLES', 'IP_NF_TARGET_REJECT', 'IP_NF_MATCH_RPFILTER', 'NETFILTER_XT_SET', 'NF_CT_NETLINK', 'NETFILTER_XT_MATCH_ADDRTYPE', 'NETFILTER_XT_MATCH_CONNTRACK', 'NETFILTER_XT_MATCH_IPVS', 'NETFILTER_XT_MARK', 'NETFILTER_XT_MATCH_MULTIPORT', 'NETFILTER_XT_MATCH_U32', 'NETFILTER_XT_MATCH_BPF', 'IP_SCTP', 'VFIO_PCI'];
  const cfgText = full.filter((s) => s !== 'NET_IPIP' && s !== 'WIREGUARD').map((s) => `CONFIG_${s}=y`).join('\n') + '\n# CONFIG_NET_IPIP is not set\n';
  const root = await hostRoot(t);
  await writeFile(join(root, 'proc/config.gz'), gzipSync(cfgText));
  const cfg = await readKernelConfig(root, null);
  t.equal(stateFromConfig(cfg, 'CONFIG_VXLAN'), 'present');
  t.equal(stateFromConfig(cfg, 'CONFIG_NET_IPIP'), 'missing');
  t.equal(stateFromConfig(null, 'CONFIG_VXLAN'), 'unknown');
  const ctx = { node: 'n', checks: ['ipip', 'bgp'] as const };
  const byConfig = kernelModuleFindings({ tried: null, config: cfg, sysModules: [] }, { ...ctx, checks: [...ctx.checks] });
  t.same(byConfig.map((f) => [/lacks (\S+):/.exec(f.detail)![1], f.severity]), [['ipip', 'error'], ['wireguard', 'warning']]);
  t.match(byConfig[0]!.fix, /VXLAN encapsulation instead/);
  t.match(byConfig[1]!.detail, /the wireguard check is not in this run/);
  t.same(kernelModuleFindings({ tried: null, config: cfg, sysModules: ['wireguard'] }, { node: 'n', checks: [] }).map((f) => /lacks (\S+):/.exec(f.detail)![1]), ['ipip'], '/sys/module/wireguard counts as present');
  const tried = new Map([['ipip', { state: 'present' as const, how: 'worked' }], ['vxlan', { state: 'missing' as const, how: '`ip link add` failed' }]]);
  const byTry = kernelModuleFindings({ tried, config: cfg, sysModules: [] }, { node: 'n', checks: ['vxlan'] });
  t.same(byTry.map((f) => [/lacks (\S+):/.exec(f.detail)![1], f.severity]), [['vxlan', 'error'], ['wireguard', 'warning']], 'a working try beats the config; a failed one is decisive');
  t.match(byTry[0]!.detail, /failed; CONFIG_VXLAN=y/);
  t.same(kernelModuleFindings({ tried: null, config: null, sysModules: [] }, { node: 'n', checks: ['ipip'] }), [], 'nothing known: no finding (not a guess)');
});

t.test('iptables-backend-mismatch only when both backends hold rules', async (t) => {
  const { iptablesBackendFindings } = await import('../../src/preflight/kernel.js');
  const c = { node: 'n', checks: [] };
  t.same(iptablesBackendFindings({ legacy: 0, nft: 5 }, c), []);
  t.same(iptablesBackendFindings({ legacy: null, nft: 5 }, c), []);
  t.equal(iptablesBackendFindings({ legacy: 2, nft: 5 }, c)[0]!.id, 'iptables-backend-mismatch');
});

t.test('result JSON is schema-valid; the schema rejects a bad severity; table shows every finding', async (t) => {
  const { makeResult, validatePreflight, renderPreflightTable } = await import('../../src/preflight/result.js');
  const fs = await findings(t, { 'proc/sys/net/ipv4/ip_forward': '0', 'proc/812/comm': 'NetworkManager' });
  const r = makeResult(['bgp'], fs);
  t.same(validatePreflight(JSON.parse(JSON.stringify(r))), []);
  t.same(r.summary, { error: 1, warning: 1, info: 0 });
  t.equal(r.findings[0]!.severity, 'error', 'errors first');
  const bad = JSON.parse(JSON.stringify(r));
  bad.findings[0].severity = 'fatal';
  t.match(validatePreflight(bad).join('\n'), /\/findings\/0\/severity/);
  const table = renderPreflightTable(r);
  t.match(table, /✗ ERROR +ip-forward-disabled +n1/);
  t.match(table, /unmanaged-devices=interface-name:cali\*/);
  t.match(table, /1 error\(s\), 1 warning\(s\)/);
});
