// Ports on a live node: by default the responder holds none (BIRD started after it binds 179 and the
// flow still passes); --hold holds the free TCP ones, says so, and lets go within a second of SIGTERM.
// Also the unauthenticated GET /healthz of the control port (the DaemonSet's probes): "ok" and nothing else.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inNs, which } from '../../src/lab/sys.js';
import { labReport, needsRoot, runIn, withLab } from '../helpers/lab.js';
import { birdProtocols, listeners, startBird, waitFor } from '../helpers/bird.js';

const BIN = fileURLToPath(new URL('../../bin/calico-nettest', import.meta.url));
const noBird = async () => ((await which('bird')) && (await which('ss')) ? false : 'bird or ss is not installed (Debian: bird2, iproute2)');

t.test('by default nothing is held: BIRD started after the responder binds 179, and BGP passes', { skip: needsRoot || (await noBird()) }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cnt-hold-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // The lab's teardown ends every process left in its namespaces (BIRD) by pid.
  const lab = await withLab(t, { nodes: 2, checks: ['bgp', 'typha'] });
  const [n1, n2] = [lab.nodes[0]!, lab.nodes[1]!];
  const log = await readFile(n1.log, 'utf8');
  t.match(log, /bgp: port 179 is free; witnessing it with a raw socket \(not holding it/, 'the responder says it does not hold 179');
  t.notMatch(log, /holding port/, 'and holds nothing');
  t.equal(await listeners(n1.ns, 'tcp', 179), '', 'nothing listens on 179 while the responder runs');

  const bird1 = await startBird(dir, n1.ns, n1.address, [n2.address]);
  const bird2 = await startBird(dir, n2.ns, n2.address, [n1.address]);
  await waitFor('BIRD on 179 in node1', async () => /bird/.test(await listeners(n1.ns, 'tcp', 179)));
  await waitFor('BIRD on 179 in node2', async () => /bird/.test(await listeners(n2.ns, 'tcp', 179)));
  const { report } = await labReport(lab, ['pair', 'node2', 'node1', '--checks', 'bgp']);
  const bgp = report.results.find((r) => r.check === 'bgp' && r.from === 'node2' && r.to === 'node1');
  t.equal(bgp?.verdict, 'pass', `bgp node2 -> node1 passes with BIRD listening: ${bgp?.detail}`);
  t.match(bgp?.detail, /SYN-ACK/, 'answered by BIRD itself');
  await waitFor('the BGP session between the two BIRDs', async () => /Established/.test(await birdProtocols(n1.ns, bird1)), 30_000);
  t.notMatch(await readFile(bird1.log, 'utf8'), /in use/i, 'BIRD never found its port in use');
  t.ok(bird2.pid > 0);
});

t.test('--hold holds the free TCP ports, says so, and releases them within a second of SIGTERM', { skip: needsRoot || (await noBird()) }, async (t) => {
  const lab = await withLab(t, { nodes: 2, checks: ['bgp'] });
  const n2 = lab.nodes[1]!;
  // A second responder in node2 (another control port) that holds bgp's and typha's ports.
  const [cmd, ...args] = inNs(n2.ns, [process.execPath, BIN, 'responder', '--listen', n2.address, '--secret-file', lab.secretFile, '--control-port', '5479', '--checks', 'bgp,typha', '--hold', '--log-format', 'json']);
  const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  await waitFor('the --hold responder to start', async () => out.includes('"controlPort"'), 20_000);
  const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { check?: string; held?: boolean; message: string });
  for (const [check, port] of [['bgp', 179], ['typha', 5473]] as const) {
    const l = lines.find((x) => x.check === check);
    t.equal(l?.held, true, `${check}: "held": true in the log`);
    t.match(l?.message, new RegExp(`holding port ${port} \\(--hold\\).*nothing else on this node can listen on ${port}`), `${check}: the log says it holds ${port} and what that means`);
    t.match(await listeners(n2.ns, 'tcp', port), new RegExp(`pid=${child.pid}\\b|node`), `${port} is held by the responder`);
  }
  const sent = Date.now();
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'exit 0 after SIGTERM');
  t.equal(await listeners(n2.ns, 'tcp', 179), '', '179 is free again');
  t.equal(await listeners(n2.ns, 'tcp', 5473), '', '5473 is free again');
  // When: the responder's own log line, written once the listening sockets are closed (polling ss
  // from here would measure the polling on a loaded machine).
  const stop = out.trim().split('\n').map((l) => JSON.parse(l) as { event: string; time: string; released?: number[] }).find((l) => l.event === 'stop');
  t.same(stop?.released?.sort(), [179, 5473], 'the log says which ports it released');
  const releasedMs = Date.parse(stop!.time) - sent;
  t.ok(releasedMs <= 1000, `released ${releasedMs} ms after SIGTERM (at most 1000)`);
});

t.test('GET /healthz answers "ok" without a signature and says nothing else', { skip: needsRoot }, async (t) => {
  const lab = await withLab(t, { nodes: 2, checks: ['bgp'] });
  const n1 = lab.nodes[0]!;
  const script = `
    const http = require('node:http');
    const ask = (method, path) => new Promise((res, rej) => http.request({ host: '${n1.address}', port: 5478, method, path }, (r) => {
      let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => res({ status: r.statusCode, headers: r.headers, body: b }));
    }).on('error', rej).end());
    (async () => console.log(JSON.stringify({ get: await ask('GET', '/healthz'), head: await ask('HEAD', '/healthz'), post: await ask('POST', '/healthz'), info: await ask('GET', '/v1/info') })))();`;
  const r = await runIn(inNs(lab.router, [process.execPath, '-e', script]), 30_000);
  t.equal(r.code, 0, r.stderr);
  const got = JSON.parse(r.stdout) as Record<string, { status: number; headers: Record<string, string>; body: string }>;
  t.equal(got.get!.status, 200);
  t.equal(got.get!.body, 'ok\n', 'the body is "ok" and nothing else (no version, no address)');
  t.equal(got.head!.status, 200);
  t.equal(got.head!.body, '');
  t.equal(got.post!.status, 401, 'only GET/HEAD pass without a signature');
  t.equal(got.info!.status, 401, 'every other endpoint still needs one');
  const log = await readFile(n1.log, 'utf8');
  t.notMatch(log, /refused (GET|HEAD) \/healthz/, 'probes do not fill the log with refusals');
});
