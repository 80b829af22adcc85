// Real services holding the real ports: BIRD on 179, etcd on 2379, a kernel VXLAN device on UDP 4789.
// The responder cannot bind them, says who holds them, and still proves each flow by witnessing it.
import t from 'tap';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inNs, run, start, which } from '../../src/lab/sys.js';
import type { LabState } from '../../src/lab/lab.js';
import { labReport, needsRoot, withLab } from '../helpers/lab.js';
import { waitFor as waitUntil } from '../helpers/wait.js';

const waitFor = (what: string, fn: () => Promise<boolean>, ms = 20_000) => waitUntil(fn, { timeout: ms, what, every: 100 });

const listening = async (ns: string, proto: 'tcp' | 'udp', port: number) => {
  const { stdout } = await run(inNs(ns, ['ss', '-Hn', proto === 'tcp' ? '-tl' : '-ul', `sport = :${port}`]), { allowFail: true });
  return stdout.trim().length > 0;
};

const missing = async () => {
  for (const c of ['bird', 'etcd', 'ss']) if (!(await which(c))) return `${c} is not installed (Debian: bird2, etcd-server, iproute2)`;
  return false;
};

t.test('BIRD, etcd and a kernel VXLAN device hold the ports; every flow still passes', { skip: needsRoot || (await missing()) }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cnt-services-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const birdLog = join(dir, 'bird.log');
  const startServices = async (lab: LabState) => {
    const n1 = lab.nodes[0]!;
    const n2 = lab.nodes[1]!;
    await writeFile(
      join(dir, 'bird.conf'),
      `log "${birdLog}" all;\nrouter id ${n1.address};\nprotocol device {}\nprotocol bgp peer2 {\n  local ${n1.address} as 64512;\n  neighbor ${n2.address} as 64512;\n  ipv4 { import none; export none; };\n}\n`,
    );
    const out = openSync(join(dir, 'services.log'), 'a');
    try {
      start(inNs(n1.ns, ['bird', '-f', '-c', join(dir, 'bird.conf'), '-s', join(dir, 'bird.ctl')]), { stdio: ['ignore', out, out], detached: true }).unref();
      start(
        inNs(n1.ns, [
          'etcd', '--name', 'n1', '--data-dir', join(dir, 'etcd'),
          '--listen-client-urls', `http://${n1.address}:2379`, '--advertise-client-urls', `http://${n1.address}:2379`,
          '--listen-peer-urls', 'http://127.0.0.1:2380', '--initial-advertise-peer-urls', 'http://127.0.0.1:2380',
          '--initial-cluster', 'n1=http://127.0.0.1:2380',
        ]),
        { stdio: ['ignore', out, out], detached: true },
      ).unref();
    } finally {
      closeSync(out);
    }
    await run(inNs(n1.ns, ['ip', 'link', 'add', 'vxlan.calico', 'type', 'vxlan', 'id', '4096', 'dstport', '4789', 'dev', 'eth0', 'local', n1.address]));
    await run(inNs(n1.ns, ['ip', 'link', 'set', 'vxlan.calico', 'up']));
    await waitFor('BIRD on 179', () => listening(n1.ns, 'tcp', 179));
    await waitFor('etcd on 2379', () => listening(n1.ns, 'tcp', 2379));
    await waitFor('the VXLAN device on 4789', () => listening(n1.ns, 'udp', 4789));
  };
  // The lab's teardown ends every process left in its namespaces (BIRD, etcd) by pid.
  const lab = await withLab(t, { nodes: 2, beforeResponders: startServices });
  const log = await readFile(lab.nodes[0]!.log, 'utf8');
  t.match(log, /port 179 is held by bird \(pid \d+\)/, 'the responder says BIRD holds 179');
  t.match(log, /port 2379 is held by etcd \(pid \d+\)/, 'the responder says etcd holds 2379');
  t.match(log, /port 4789 is held by the kernel/, 'the responder says the kernel holds 4789');

  const open = await labReport(lab, ['pair', 'node2', 'node1', '--checks', 'bgp,etcd,vxlan']);
  const toNode1 = open.report.results.filter((r) => r.to === 'node1');
  t.same(toNode1.map((r) => r.check).sort(), ['bgp', 'etcd', 'vxlan']);
  for (const r of toNode1) t.equal(r.verdict, 'pass', `${r.check} node2 -> node1 passes while ${r.check === 'vxlan' ? 'the kernel' : 'a real service'} holds the port: ${r.detail}`);

  // BIRD saw no connection at all: the probe was half-open.
  const birdText = await readFile(birdLog, 'utf8').catch(() => '');
  t.match(birdText, /peer2|Started|BGP/i, 'BIRD is logging (so the next assertion can fail)');
  t.notMatch(birdText, /Unexpected connect/, 'BIRD logged no unexpected connection');

  for (const argv of [
    ['iptables', '-A', 'INPUT', '-i', 'eth0', '-p', 'tcp', '--dport', '179', '-j', 'DROP'],
    ['iptables', '-A', 'INPUT', '-i', 'eth0', '-p', 'tcp', '--dport', '2379', '-j', 'DROP'],
    ['iptables', '-A', 'INPUT', '-i', 'eth0', '-p', 'udp', '--dport', '4789', '-j', 'DROP'],
  ])
    await run(inNs(lab.nodes[0]!.ns, argv));
  const blocked = await labReport(lab, ['pair', 'node2', 'node1', '--checks', 'bgp,etcd,vxlan']);
  t.equal(blocked.run.code, 1);
  for (const r of blocked.report.results.filter((x) => x.to === 'node1')) t.equal(r.cause, 'ingress-blocked', `${r.check} node2 -> node1 ingress-blocked`);
});
