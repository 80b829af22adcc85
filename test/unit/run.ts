// runPlan end to end through its connection factory (no network): fake responders (ControlConnection) that
// witness exactly what their session's inbound table names, plus loopback HTTP responders behind the real
// ControlClient where the signatures matter (an impostor, a forged stream line) or the Ctrl-C deadlines do.
import t, { type Test } from 'tap';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defaultPorts } from '../../src/checks/catalogue.js';
import { HEADER_INSTANCE, HEADER_NONCE, HEADER_SIGNATURE, responseSignature, signLine } from '../../src/control/auth.js';
import { unpackInbound, type OpenSessionRequest, type ProbeRequestBody, type ProbeStreamLine, type WitnessRow } from '../../src/control/protocol.js';
import { ControlClient, ControlError, type ControlConnection } from '../../src/coordinator/client.js';
import type { Inventory, InventoryNode } from '../../src/coordinator/inventory.js';
import { planMesh } from '../../src/coordinator/plan.js';
import { INTERRUPT_BUDGET_MS, runPlan, type RunOptions } from '../../src/coordinator/run.js';
import type { FlowResult, Report, SourceOutcome } from '../../src/types.js';
import { waitFor } from '../helpers/wait.js';

const secret = Buffer.from('a-shared-secret-long-enough');

const inventory = (n: number): Inventory => ({
  file: 'inv.yaml',
  nodes: Array.from({ length: n }, (_, i) => ({ name: `node${i + 1}`, address: `198.18.${i + 1}.2`, roles: [], control: { host: `198.18.${i + 1}.2`, port: 5478 } })),
  endpoints: [],
  checks: null,
  ports: defaultPorts(),
});

const outcomeFor = (p: ProbeRequestBody['probes'][number]): SourceOutcome => ({
  idx: p.idx,
  toAddress: p.to,
  check: p.check,
  reply: p.transport === 'tcp' ? 'synack' : null,
  replyFrom: p.transport === 'tcp' ? p.to : null,
  icmp: null,
  sendError: null,
  left: true,
  leftOn: 'eth0',
  rttMs: 0.4,
  attempts: 1,
  srcPort: null,
});

interface Behaviour {
  /** openSession fails with this error (the node cannot be reached). */
  openError?: ControlError;
  /** Stream only this many outcomes, then end without the closing line. */
  stopAfter?: number;
  /** After this many outcomes, fail the stream with this error (EDEADLINE: the responder went silent). */
  failAfter?: { n: number; err: ControlError };
  /** Called before each outcome is streamed (a test aborts here). */
  beforeOutcome?: (n: number) => void;
  /** What its session open says of its kernel's connection tracking (absent: an older responder says nothing). */
  conntrack?: boolean | null;
}

/** Fake responders: every probe arrives; a destination witnesses it only if its session's inbound table names that flow. */
class FakeMesh {
  readonly calls: string[] = [];
  readonly opened = new Map<string, OpenSessionRequest>();
  readonly witnessDeadlines: Array<number | undefined> = [];
  /** Every probe request, by the node it went to. */
  readonly probeBodies = new Map<string, ProbeRequestBody[]>();
  private readonly witnessed = new Map<string, WitnessRow[]>();
  private readonly byAddress: Map<string, InventoryNode>;
  constructor(
    inv: Inventory,
    private readonly behaviour: Record<string, Behaviour> = {},
    /** Nodes reached through another connection (a real ControlClient). */
    private readonly others: Record<string, (node: InventoryNode) => ControlConnection> = {},
  ) {
    this.byAddress = new Map(inv.nodes.map((n) => [n.address, n]));
  }

  private arrive(from: InventoryNode, p: ProbeRequestBody['probes'][number]): void {
    const to = this.byAddress.get(p.to)!;
    const session = this.opened.get(to.name);
    if (!session) return; // no session there: nothing witnesses it
    const flow = unpackInbound(session.inbound).get(p.idx);
    if (!flow || flow.src !== from.address || flow.check !== p.check || flow.port !== p.port) return; // not a flow it may witness
    const rows = this.witnessed.get(to.name) ?? [];
    rows.push([p.idx, 1, 'eth0', 1, from.address, 1, flow.src, flow.check, flow.port]);
    this.witnessed.set(to.name, rows);
  }

  connect = (node: InventoryNode): ControlConnection => {
    const other = this.others[node.name];
    if (other) return other(node);
    const b = this.behaviour[node.name] ?? {};
    const log = (what: string) => this.calls.push(`${node.name} ${what}`);
    const conn: Partial<ControlConnection> = {
      openSession: async (body: OpenSessionRequest) => {
        log('open');
        if (b.openError) throw b.openError;
        this.opened.set(node.name, body);
        return { id: body.id, capture: true, ...('conntrack' in b ? { conntrack: b.conntrack } : {}) };
      },
      hold: async (_id: string, signal: AbortSignal) => {
        await new Promise((r) => signal.addEventListener('abort', r, { once: true }));
        return null;
      },
      renew: async () => undefined,
      probe: async (_id: string, body: ProbeRequestBody, onLine: (l: ProbeStreamLine) => void, signal?: AbortSignal) => {
        log('probe');
        this.probeBodies.set(node.name, [...(this.probeBodies.get(node.name) ?? []), body]);
        let n = 0;
        for (const p of body.probes) {
          if (b.stopAfter !== undefined && n >= b.stopAfter) return; // the stream just ends
          if (b.failAfter && n >= b.failAfter.n) throw b.failAfter.err;
          b.beforeOutcome?.(n);
          if (signal?.aborted) throw new ControlError(`request to ${node.name} aborted`, null, 'ABORT_ERR');
          await new Promise((r) => setImmediate(r));
          this.arrive(node, p);
          onLine({ outcome: outcomeFor(p) });
          n++;
        }
        onLine({ done: true, capture: true });
      },
      witness: async (_id: string, _signal?: AbortSignal, deadlineMs?: number) => {
        log('witness');
        this.witnessDeadlines.push(deadlineMs);
        return { capture: true, dropped: 0, forged: 0, lost: 0, rows: this.witnessed.get(node.name) ?? [] };
      },
      closeSession: async () => void log('closeSession'),
      close: () => void log('close'),
    };
    return conn as ControlConnection;
  };
}

async function run(inv: Inventory, mesh: FakeMesh, extra: Partial<RunOptions> = {}): Promise<{ report: Report; nodeErrors: string[] }> {
  const nodeErrors: string[] = [];
  const report = await runPlan(inv, planMesh(inv, { checks: ['bgp', 'ipip'] }), {
    secret,
    command: 'mesh',
    graceMs: 0,
    connect: mesh.connect,
    onNodeError: (node, msg) => nodeErrors.push(`${node}: ${msg}`),
    ...extra,
  });
  return { report, nodeErrors };
}

const involves = (r: FlowResult, node: string) => r.from === node || r.to === node;
const line = (r: FlowResult) => `${r.check} ${r.from}>${r.to} ${r.verdict}/${r.cause} ${r.facts?.errorKind ?? ''}`;

t.test('every node reached: one passing result per flow; each session told exactly its inbound flows; sessions closed', async (t) => {
  const inv = inventory(3);
  const mesh = new FakeMesh(inv);
  const progress: number[] = [];
  const { report, nodeErrors } = await run(inv, mesh, { onProgress: (p) => progress.push(p.done) });
  t.equal(report.results.length, 2 * 3 * 2);
  t.same(report.summary, { pass: 12, fail: 0, unknown: 0 }, report.results.map(line).join('\n'));
  t.same(nodeErrors, []);
  t.notOk(report.incomplete);
  t.equal(progress.at(-1), 12, 'progress reaches the total');
  t.same(mesh.opened.get('node1')?.peers.sort(), ['198.18.2.2', '198.18.3.2'], 'each node is told its peers');
  const inbound = [...unpackInbound(mesh.opened.get('node1')!.inbound).values()].map((f) => `${f.check} ${f.src} ${f.port}`).sort();
  t.same(inbound, ['bgp 198.18.2.2 179', 'bgp 198.18.3.2 179', 'ipip 198.18.2.2 null', 'ipip 198.18.3.2 null'], 'and the flows it may witness (2 checks x 2 peers)');
  for (const n of ['node1', 'node2', 'node3']) {
    const mine = mesh.calls.filter((c) => c.startsWith(`${n} `)).map((c) => c.split(' ')[1]);
    t.same(mine, ['open', 'probe', 'witness', 'closeSession', 'close'], `${n}: the session's life in order`);
  }
});

t.test('an unreachable node: only its flows are unknown, with the kind of failure as data', async (t) => {
  const inv = inventory(3);
  const msg = 'nothing listens on 198.18.2.2:5478 (is the responder running there, on that control port?)';
  const mesh = new FakeMesh(inv, { node2: { openError: new ControlError(msg, null, 'ECONNREFUSED') } });
  const { report, nodeErrors } = await run(inv, mesh);
  t.same(nodeErrors, [`node2: ${msg}`]);
  for (const r of report.results) {
    // A SYN-ACK from node2 proves the round trip without its witness; IP-in-IP to it needs the witness.
    const unknown = r.from === 'node2' || (r.to === 'node2' && r.check === 'ipip');
    t.equal(r.verdict, unknown ? 'unknown' : 'pass', line(r));
    if (!unknown) continue;
    t.equal(r.cause, 'responder-unreachable');
    t.equal(r.facts?.errorKind, 'refused');
    t.equal(r.facts?.responder, 'node2');
    t.equal(r.facts?.control, '198.18.2.2:5478');
  }
  t.same(report.summary, { pass: 6, fail: 0, unknown: 6 });
  t.notOk(mesh.calls.includes('node2 closeSession'), 'no session to close where none opened');
  t.ok(mesh.calls.includes('node2 close'), 'its connection is still closed');
});

t.test('a node whose stream ends early: what it sent is judged, the rest of its flows unknown (stopped-streaming)', async (t) => {
  const inv = inventory(3);
  const mesh = new FakeMesh(inv, { node1: { stopAfter: 2 } });
  const { report, nodeErrors } = await run(inv, mesh);
  t.same(nodeErrors, ["node1: node1's responder stopped streaming before all probes were done"]);
  const fromNode1 = report.results.filter((r) => r.from === 'node1');
  t.equal(fromNode1.filter((r) => r.verdict === 'pass').length, 2, 'the two outcomes it streamed are judged');
  const unknown = fromNode1.filter((r) => r.verdict === 'unknown');
  t.equal(unknown.length, 2);
  t.ok(unknown.every((r) => r.facts?.errorKind === 'stopped-streaming'), unknown.map(line).join('\n'));
  t.ok(mesh.calls.includes('node1 witness'), 'its witness log is still fetched: flows to node1 keep their verdict');
  t.ok(report.results.filter((r) => r.from !== 'node1').every((r) => r.verdict === 'pass'), report.results.map(line).join('\n'));
  t.same(report.summary, { pass: 10, fail: 0, unknown: 2 });
});

t.test('a node that goes silent mid-stream: its flows both ways unknown (stopped), asked nothing more, the rest judged', async (t) => {
  const inv = inventory(3);
  const silent = new ControlError('responder stopped answering: 198.18.1.2:5478 said nothing for 5 s (stopped, frozen or overloaded?)', null, 'EDEADLINE');
  const mesh = new FakeMesh(inv, { node1: { failAfter: { n: 1, err: silent } } });
  const { report, nodeErrors } = await run(inv, mesh);
  t.same(nodeErrors, [`node1: ${silent.message}`]);
  t.notOk(mesh.calls.includes('node1 witness'), 'a silent responder is not asked for its witness log');
  t.notOk(mesh.calls.includes('node1 closeSession'), 'nor to close (its lease ends the session)');
  for (const r of report.results) {
    // node1's one streamed outcome stands; flows to node1 without a SYN-ACK need its witness.
    const unknown = (r.from === 'node1' && !(r.to === 'node2' && r.check === 'bgp')) || (r.to === 'node1' && r.check === 'ipip');
    t.equal(r.verdict, unknown ? 'unknown' : 'pass', line(r));
    if (unknown) t.equal(r.facts?.errorKind, 'stopped', line(r));
  }
  t.ok(report.results.filter((r) => !involves(r, 'node1')).every((r) => r.verdict === 'pass'), 'flows not involving node1 are untouched');
});

t.test('a node whose responder says probing failed: its unprobed flows are unknown (probe-failed)', async (t) => {
  const inv = inventory(2);
  const mesh = new FakeMesh(inv);
  const connect = mesh.connect;
  mesh.connect = (node) => {
    const c = connect(node);
    if (node.name !== 'node2') return c;
    return { ...c, probe: async (_id, _body, onLine) => onLine({ error: 'cannot open raw socket: EPERM' }) };
  };
  const { report } = await run(inv, mesh);
  const from2 = report.results.filter((r) => r.from === 'node2');
  t.ok(from2.length === 2 && from2.every((r) => r.verdict === 'unknown' && r.facts?.errorKind === 'probe-failed'), from2.map(line).join('\n'));
  t.match(from2[0]?.detail, /probing failed on node2: cannot open raw socket: EPERM/);
  t.ok(report.results.filter((r) => r.from === 'node1').every((r) => r.verdict === 'pass'), "its witness log still counts: flows to node2 are judged");
  t.ok(mesh.calls.includes('node2 witness'));
});

// ---- loopback responders behind the real ControlClient ------------------------------------------------

const INSTANCE = 'feedfacefeedfacefeedfacefeedface';

type Forgery = 'none' | 'unsigned' | 'wrong-secret' | 'other-instance' | 'other-nonce' | 'other-address' | 'forged-line';

interface LoopbackResponder {
  port: number;
  requests: string[];
  /** The probes asked of it, in order. */
  probed: ProbeRequestBody['probes'];
  holdsOpen: () => number;
  connect: (node: InventoryNode) => ControlConnection;
}

/**
 * A minimal responder on 127.0.0.1 speaking protocol v2 for `address`; `forgery` says how its answers are
 * wrong. `hang` makes the witness log and session close never answer (the Ctrl-C deadlines must end them).
 */
async function loopback(t: Test, address: string, forgery: Forgery, opts: { hang?: boolean; onProbe?: () => void } = {}): Promise<LoopbackResponder> {
  const requests: string[] = [];
  const probed: ProbeRequestBody['probes'] = [];
  let holds = 0;
  const signFor = (req: IncomingMessage, status: number, body: string): Record<string, string> => {
    const nonce = String(req.headers[HEADER_NONCE] ?? '');
    const parts = { address, instance: INSTANCE, nonce, status, body };
    if (forgery === 'unsigned') return { [HEADER_INSTANCE]: INSTANCE };
    if (forgery === 'wrong-secret') return { [HEADER_INSTANCE]: INSTANCE, [HEADER_SIGNATURE]: responseSignature(Buffer.from('not-the-shared-secret-at-all'), parts) };
    if (forgery === 'other-instance') return { [HEADER_INSTANCE]: INSTANCE, [HEADER_SIGNATURE]: responseSignature(secret, { ...parts, instance: 'beefbeefbeefbeefbeefbeefbeefbeef' }) };
    if (forgery === 'other-nonce') return { [HEADER_INSTANCE]: INSTANCE, [HEADER_SIGNATURE]: responseSignature(secret, { ...parts, nonce: '00'.repeat(16) }) };
    if (forgery === 'other-address') return { [HEADER_INSTANCE]: INSTANCE, [HEADER_SIGNATURE]: responseSignature(secret, { ...parts, address: '198.18.9.2' }) };
    return { [HEADER_INSTANCE]: INSTANCE, [HEADER_SIGNATURE]: responseSignature(secret, parts) };
  };
  const reply = (req: IncomingMessage, res: ServerResponse, status: number, value: unknown) => {
    const body = JSON.stringify(value);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...signFor(req, status, body) });
    res.end(body);
  };
  const stream = (req: IncomingMessage, res: ServerResponse) => {
    const nonce = String(req.headers[HEADER_NONCE] ?? '');
    res.writeHead(200, { 'content-type': 'application/x-ndjson', [HEADER_INSTANCE]: INSTANCE });
    let n = 0;
    const send = (l: unknown, signed = true) => {
      const text = JSON.stringify(l);
      res.write(`${signed ? signLine(secret, { address, instance: INSTANCE, nonce, n, line: text }) : `${'0'.repeat(64)} ${text}`}\n`);
      n++;
    };
    const beat = setInterval(() => send({ alive: Date.now() }), 200);
    res.on('close', () => clearInterval(beat));
    return send;
  };
  const server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (text += c));
    req.on('end', () => {
      const route = `${req.method} ${(req.url ?? '').replace(/[0-9a-f]{16}/, ':id')}`;
      requests.push(route);
      if (route === 'GET /v1/info') return reply(req, res, 200, { tool: 'calico-nettest', version: 'test', address, instance: INSTANCE, capture: true, captureError: null, ports: [], sessions: 0, timeMs: Date.now() });
      if (route === 'POST /v1/sessions') return reply(req, res, 200, { id: (JSON.parse(text) as { id: string }).id, capture: true });
      if (route === 'GET /v1/sessions/:id/hold') {
        holds++;
        res.on('close', () => holds--);
        return void stream(req, res);
      }
      if (route === 'POST /v1/sessions/:id/renew') return reply(req, res, 200, {});
      if (route === 'POST /v1/sessions/:id/probe') {
        const body = JSON.parse(text) as ProbeRequestBody;
        probed.push(...body.probes);
        const send = stream(req, res);
        // The first outcome genuinely signed; then a forged line (or, with `hang`, heartbeats until aborted).
        send({ outcome: outcomeFor(body.probes[0]!) });
        opts.onProbe?.();
        if (forgery === 'forged-line') send({ outcome: outcomeFor(body.probes[1]!) }, false);
        else if (!opts.hang) {
          for (const p of body.probes.slice(1)) send({ outcome: outcomeFor(p) });
          send({ done: true, capture: true });
          res.end();
        }
        return;
      }
      if (opts.hang) return; // witness log, session close: never answered
      if (route === 'GET /v1/sessions/:id/witness') return reply(req, res, 200, { capture: true, dropped: 0, forged: 0, lost: 0, rows: [] });
      if (route === 'DELETE /v1/sessions/:id') return reply(req, res, 200, {});
      reply(req, res, 404, { error: 'no such route' });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  t.teardown(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { port, requests, probed, holdsOpen: () => holds, connect: (node) => new ControlClient('127.0.0.1', port, secret, node.address, 5000) };
}

t.test('a responder whose answers are not signed by ours (an impostor, a replay, another node, another run): refused, only its flows unknown (unsigned)', async (t) => {
  for (const forgery of ['unsigned', 'wrong-secret', 'other-instance', 'other-nonce', 'other-address'] as const) {
    const inv = inventory(3);
    const impostor = await loopback(t, '198.18.3.2', forgery);
    const mesh = new FakeMesh(inv, {}, { node3: impostor.connect });
    const { report, nodeErrors } = await run(inv, mesh);
    t.equal(nodeErrors.length, 1, `${forgery}: one node error`);
    t.match(nodeErrors[0], /^node3: 127\.0\.0\.1:\d+ answered 200 without our responder's signature/, forgery);
    t.same(impostor.requests, ['GET /v1/info'], `${forgery}: nothing more is asked of it after its first answer`);
    for (const r of report.results) {
      const unknown = r.from === 'node3' || (r.to === 'node3' && r.check === 'ipip');
      t.equal(r.verdict, unknown ? 'unknown' : 'pass', `${forgery}: ${line(r)}`);
      if (unknown) t.equal(r.facts?.errorKind, 'unsigned', `${forgery}: ${line(r)}`);
    }
  }
});

t.test('a forged line in a genuine stream: the stream is refused from there, its signed outcome stands (unsigned)', async (t) => {
  const inv = inventory(3);
  const node3 = await loopback(t, '198.18.3.2', 'forged-line');
  const mesh = new FakeMesh(inv, {}, { node3: node3.connect });
  const { report, nodeErrors } = await run(inv, mesh);
  t.match(nodeErrors, [/^node3: 127\.0\.0\.1:\d+ streamed a line without our responder's signature/]);
  const first = node3.probed[0]!;
  const from3 = report.results.filter((r) => r.from === 'node3');
  const isFirst = (r: FlowResult) => r.check === first.check && inv.nodes.find((n) => n.name === r.to)?.address === first.to;
  t.equal(from3.filter((r) => r.facts?.tries !== undefined).length, 1, 'one outcome is taken from node3');
  t.ok(from3.filter(isFirst).every((r) => r.facts?.tries === 1), 'the first, signed one');
  t.ok(from3.filter((r) => !isFirst(r)).every((r) => r.verdict === 'unknown' && r.facts?.errorKind === 'unsigned'), from3.map(line).join('\n'));
  t.ok(report.results.filter((r) => !involves(r, 'node3')).every((r) => r.verdict === 'pass'), 'flows not involving node3 are untouched');
});

t.test('interrupted: an incomplete report of what was probed, sessions still closed, witnessed on the short budget', async (t) => {
  const inv = inventory(3);
  const ac = new AbortController();
  const mesh = new FakeMesh(inv, { node3: { beforeOutcome: (n) => n === 1 && ac.abort() } });
  const { report } = await run(inv, mesh, { signal: ac.signal, graceMs: 60_000 });
  t.equal(report.incomplete, true);
  t.ok(report.results.length >= 1 && report.results.length < 12, `flows never probed are left out (${report.results.length} of 12)`);
  t.ok(report.results.every((r) => r.verdict === 'pass'), 'what was probed and witnessed passes');
  t.equal(report.results.filter((r) => r.from === 'node3').length, 1, 'node3 streamed one outcome before the interrupt');
  t.same(mesh.witnessDeadlines, [INTERRUPT_BUDGET_MS, INTERRUPT_BUDGET_MS, INTERRUPT_BUDGET_MS], 'every witness log asked for on the interrupt budget');
  for (const n of ['node1', 'node2', 'node3']) t.ok(mesh.calls.includes(`${n} closeSession`), `${n}'s session closed`);
});

t.test('interrupted while a responder hangs: the run still ends promptly, keeping what was streamed', async (t) => {
  const inv = inventory(2);
  const ac = new AbortController();
  const node2 = await loopback(t, '198.18.2.2', 'none', { hang: true, onProbe: () => setTimeout(() => ac.abort(), 100) });
  const mesh = new FakeMesh(inv, { node1: { beforeOutcome: () => undefined } }, { node2: node2.connect });
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), 20_000)));
  // node1's fake stream is done at once; node2 streams one outcome, then only heartbeats until Ctrl-C.
  const done = await Promise.race([run(inv, mesh, { signal: ac.signal }), late]);
  clearTimeout(timer);
  if (done === 'late') return t.fail('the run did not end within 20 s of a Ctrl-C (the witness log and close of a hung responder must be cut short)');
  const elapsed = performance.now() - started;
  t.ok(elapsed < 15_000, `ended ${Math.round(elapsed)} ms after the start (the hung witness log and close were cut at ${INTERRUPT_BUDGET_MS} ms)`);
  t.equal(done.report.incomplete, true);
  t.ok(done.report.results.some((r) => r.from === 'node2'), "node2's streamed outcome is kept");
  t.ok(node2.requests.includes('GET /v1/sessions/:id/witness'), 'its witness log was asked for');
  t.ok(node2.requests.includes('GET /v1/sessions/:id/hold'), 'it was held');
  await waitFor(() => node2.holdsOpen() === 0, { timeout: 10_000, what: "node2's hold to be let go (which ends the session there; a responder silent past a deadline is asked nothing more)" });
});

t.test('a signal already aborted when the run starts: nothing is probed, the report is incomplete', async (t) => {
  const inv = inventory(2);
  const mesh = new FakeMesh(inv);
  const { report } = await run(inv, mesh, { signal: AbortSignal.abort() });
  t.equal(report.incomplete, true, 'an interrupt is an interrupt, however early (exit 130, not a report of unknowns)');
  t.same(report.results, []);
});

t.test('IP-in-IP is ordered (one direction after the other) only for pairs where a kernel tracks connections or cannot say', async (t) => {
  const inv = inventory(3);
  const marked = (mesh: FakeMesh) =>
    [...mesh.probeBodies].flatMap(([node, bodies]) => bodies.flatMap((b) => b.probes.filter((p) => (p as { afterClear?: boolean }).afterClear).map((p) => `${p.check} ${node}>${inv.nodes.find((n) => n.address === p.to)!.name}`))).sort();
  const none = new FakeMesh(inv, { node1: { conntrack: false }, node2: { conntrack: false }, node3: { conntrack: false } });
  const a = await run(inv, none);
  t.same(marked(none), [], 'no kernel tracks: every probe at once');
  t.equal(a.report.summary.pass, a.report.results.length);
  const one = new FakeMesh(inv, { node1: { conntrack: false }, node2: { conntrack: true }, node3: { conntrack: false } });
  await run(inv, one);
  t.same(marked(one), ['ipip node2>node1', 'ipip node3>node2'], "node2 tracks: its pairs' second direction waits; node1<>node3 does not");
  const old = new FakeMesh(inv, { node1: { conntrack: false }, node2: { conntrack: null } });
  await run(inv, old);
  t.same(marked(old), ['ipip node2>node1', 'ipip node3>node1', 'ipip node3>node2'], 'cannot tell (null, or an older responder saying nothing): ordered');
});
