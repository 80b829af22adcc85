// The image, run exactly as deploy/daemonset.yaml says, in three lab nodes: podman with the manifest's
// args, downward-API address, capabilities, read-only root, no-new-privileges, memory limit and the
// Secret as a volume, all read from the YAML file. BIRD starts on 179 after the responders; a mesh with
// one fault from the router namespace gives every verdict the fault implies, and BIRD stays up.
// The image: $CALICO_NETTEST_IMAGE (CI builds it with deploy/build-image.sh first), else built here.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { CATALOGUE, defaultPorts } from '../../src/checks/catalogue.js';
import { expectedOutcome, faultRules, parseFault } from '../../src/lab/faults.js';
import { inNs, run, which } from '../../src/lab/sys.js';
import { createTopology, describeTopology, destroyTopology, uniquePrefix } from '../../src/lab/topology.js';
import { parseReport } from '../../src/report/json.js';
import { needsRoot, runIn } from '../helpers/lab.js';
import { birdProtocols, listeners, startBird, waitFor, type Bird } from '../helpers/bird.js';
import { hostUlimits, podmanRunArgs, probePort } from '../helpers/podman.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'calico-nettest');
// podman as root here: crun fails (cgroups in hybrid mode), runc works.
const RUNTIME = process.env.CALICO_NETTEST_OCI_RUNTIME ?? 'runc';
const FAULT = 'drop:vxlan@node3:in';
// Building the image here (no $CALICO_NETTEST_IMAGE) takes minutes the first time (debootstrap).
if (!process.env.CALICO_NETTEST_IMAGE) t.setTimeout(900_000);

const missing = async () => {
  for (const [c, pkg] of [['podman', 'podman'], [RUNTIME, RUNTIME], ['bird', 'bird2'], ['birdc', 'bird2'], ['ss', 'iproute2']] as const)
    if (!(await which(c))) return `${c} is not installed (Debian: ${pkg})`;
  return false;
};

const podman = (args: string[], allowFail = false) => run(['podman', ...args], { allowFail, timeoutMs: 120_000 });

/** VmRSS / VmHWM of a process in MB. */
async function rssMb(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

t.test('the image as daemonset.yaml runs it: BIRD binds 179 after it, a faulted mesh gets every verdict right', { skip: needsRoot || (await missing()) }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cnt-container-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));

  let image = process.env.CALICO_NETTEST_IMAGE;
  if (!image) {
    const tag = `localhost/calico-nettest:test-${randomBytes(3).toString('hex')}`;
    const ulimits = (await hostUlimits()).flatMap((u) => ['--ulimit', u]);
    // Before the build: a build that fails after tagging must not leave its image behind.
    t.teardown(async () => void (await podman(['rmi', '--force', tag], true)));
    const built = await run(['bash', join(ROOT, 'deploy', 'build-image.sh'), '--runtime', RUNTIME, ...ulimits, '--tag', tag], { timeoutMs: 600_000 });
    image = built.stdout.trim().split('\n').pop()!;
    t.equal(image, tag, 'build-image.sh prints the image reference on its last line');
  }
  t.ok((await podman(['image', 'exists', image], true)).code === 0, `image ${image} exists`);

  const [ds] = (await readFile(join(ROOT, 'deploy', 'daemonset.yaml'), 'utf8').then((s) => [parseYaml(s) as Obj])) as Obj[];
  const pod = ds!.spec.template.spec as Obj;
  const container = pod.containers[0] as Obj;

  const topo = describeTopology(uniquePrefix('cnt'), 3);
  const names = topo.nodes.map((n) => `${topo.prefix}-${n.name}`);
  const ids: string[] = [];
  // Teardown in reverse: the containers (and their mounts) first, then the namespaces.
  t.teardown(async () => {
    await destroyTopology(topo);
    const left = await podman(['ps', '-a', '--filter', `name=^${topo.prefix}-`, '--format', '{{.Names}}'], true);
    if (left.stdout.trim()) throw new Error(`containers left behind: ${left.stdout.trim()}`);
  });
  t.teardown(async () => {
    for (const name of names) await podman(['rm', '--force', '--time', '2', name], true);
    const mounts = await readFile('/proc/self/mountinfo', 'utf8');
    const leftMounts = ids.filter((id) => mounts.includes(id));
    if (leftMounts.length) throw new Error(`mounts of containers ${leftMounts.join(', ')} left behind`);
  });
  await createTopology(topo);

  const secret = `${randomBytes(32).toString('base64')}\n`;
  const secretFile = join(dir, 'secret');
  await writeFile(secretFile, secret, { mode: 0o600 });
  const inventory = join(dir, 'inventory.yaml');
  await writeFile(
    inventory,
    toYaml({
      nodes: topo.nodes.map((n, i) => ({ name: n.name, address: n.address, ...(i === 0 ? { roles: ['apiserver', 'etcd'] } : i === 1 ? { roles: ['typha'] } : {}) })),
    }),
  );

  // ---- the responders, as the DaemonSet's pod on each node
  for (const [i, n] of topo.nodes.entries()) {
    const argv = await podmanRunArgs({ pod, netns: n.ns, hostIP: n.address, name: names[i]!, image, secrets: { 'calico-nettest': { secret } }, dir: join(dir, n.name), runtime: RUNTIME, ulimits: await hostUlimits() });
    if (i === 0) t.comment(`podman ${argv.join(' ')}`);
    ids.push((await podman(argv)).stdout.trim());
  }
  for (const name of names) await waitFor(`${name} to start`, async () => (await podman(['logs', name], true)).stdout.includes('"controlPort"'), 30_000);
  const inspect = JSON.parse((await podman(['inspect', ...names])).stdout) as Obj[];
  for (const c of inspect) {
    t.equal(c.HostConfig.ReadonlyRootfs, true, `${c.Name}: read-only root`);
    t.same([...(c.EffectiveCaps ?? [])].sort(), ['CAP_NET_ADMIN', 'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW'], `${c.Name}: only the three capabilities`);
    t.ok((c.HostConfig.SecurityOpt as string[]).includes('no-new-privileges'), `${c.Name}: no-new-privileges`);
  }
  const log1 = (await podman(['logs', names[0]!])).stdout;
  t.match(log1, /"message":"bgp: port 179 is free; witnessing it with a raw socket \(not holding it/, 'the responder holds no port');

  // ---- the readiness probe, as the kubelet sends it (from the node itself)
  const probe = container.readinessProbe.httpGet as Obj;
  const port = probePort(container, probe.port);
  for (const n of topo.nodes) {
    const r = await runIn(inNs(n.ns, [process.execPath, '-e', `fetch('http://${n.address}:${port}${probe.path}').then(async (r) => console.log(r.status, JSON.stringify(await r.text())))`]), 30_000);
    t.equal(r.stdout.trim(), '200 "ok\\n"', `${n.name}: readiness probe ${probe.path} on ${port} answers 200 "ok"`);
  }

  // ---- BIRD on 179 in every node, after the responders
  const birds: Bird[] = [];
  for (const n of topo.nodes) birds.push(await startBird(dir, n.ns, n.address, topo.nodes.filter((p) => p !== n).map((p) => p.address)));
  for (const n of topo.nodes) await waitFor(`BIRD on 179 in ${n.name}`, async () => /bird/.test(await listeners(n.ns, 'tcp', 179)));

  // ---- one fault, then the mesh from the router namespace
  const fault = parseFault(FAULT);
  for (const r of faultRules(fault, { router: topo.router, nodes: topo.nodes, ports: defaultPorts() })) await run(inNs(r.ns, r.argv));
  const mesh = await runIn(inNs(topo.router, [process.execPath, BIN, 'mesh', '--inventory', inventory, '--secret-file', secretFile, '--format', 'json']), 180_000);
  const report = parseReport(mesh.stdout, 'stdout');
  t.equal(mesh.code, 1, 'exit 1: a flow failed');
  t.ok(report.results.length >= 6 * 4, `${report.results.length} flows`);
  let right = 0;
  for (const r of report.results) {
    const e = expectedOutcome([fault], { check: r.check, from: r.from, to: r.to, transport: CATALOGUE[r.check].transport });
    if (r.verdict === e.verdict && r.cause === e.cause) right++;
    else t.fail(`${r.check} ${r.from} -> ${r.to}: got ${r.verdict}/${r.cause}, expected ${e.verdict}/${e.cause} (${r.detail})`);
  }
  t.equal(right, report.results.length, `every one of the ${report.results.length} verdicts is the one ${FAULT} implies`);
  t.ok(report.results.some((r) => r.cause === 'ingress-blocked'), 'the fault was found');
  const bgpToNode1 = report.results.find((r) => r.check === 'bgp' && r.to === 'node1');
  t.match(bgpToNode1?.detail, /SYN-ACK/, 'BGP probes were answered by BIRD itself');

  // ---- BIRD up: listening, its sessions established, nothing unexpected in its log
  for (const [i, n] of topo.nodes.entries()) {
    t.match(await listeners(n.ns, 'tcp', 179), /bird/, `${n.name}: BIRD still listens on 179`);
    await waitFor(`${n.name}: BIRD's BGP sessions`, async () => ((await birdProtocols(n.ns, birds[i]!)).match(/Established/g) ?? []).length === 2, 40_000);
    const text = await readFile(birds[i]!.log, 'utf8');
    t.notMatch(text, /in use|Unexpected connect/i, `${n.name}: BIRD found 179 free and saw no probe connection`);
  }

  // ---- memory, for the DaemonSet's request and limit
  const limitMb = Number(/^(\d+)Mi$/.exec(container.resources.limits.memory as string)?.[1]);
  for (const c of inspect) {
    const m = await rssMb(c.State.Pid as number);
    t.comment(`${c.Name}: RSS ${m.rss.toFixed(1)} MB, peak ${m.hwm.toFixed(1)} MB (request ${container.resources.requests.memory}, limit ${container.resources.limits.memory})`);
    t.ok(m.hwm < limitMb, `${c.Name}: peak RSS ${m.hwm.toFixed(1)} MB under the ${limitMb} Mi limit`);
  }

  // ---- stop as the kubelet does (SIGTERM, grace period): exit 0, well within the grace period
  const grace = pod.terminationGracePeriodSeconds as number;
  const t0 = Date.now();
  await podman(['stop', '--time', String(grace), names[0]!]);
  const stopMs = Date.now() - t0;
  const code = (await podman(['inspect', '--format', '{{.State.ExitCode}}', names[0]!])).stdout.trim();
  t.equal(code, '0', 'exit 0 on SIGTERM');
  t.ok(stopMs < grace * 1000, `stopped in ${stopMs} ms (grace period ${grace} s: not killed)`);
  t.ok(ids.every((id) => /^[0-9a-f]{64}$/.test(id)), 'podman gave container ids');
});
