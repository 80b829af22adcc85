// runPlan end to end through its connection factory, with fake responders (no network): a clean mesh, an
// unreachable node, a node that stops streaming halfway, and an interrupted run.
import t from 'tap';
import { defaultPorts } from '../../src/checks/catalogue.js';
import type { ControlConnection } from '../../src/coordinator/client.js';
import { ControlError } from '../../src/coordinator/client.js';
import type { Inventory, InventoryNode } from '../../src/coordinator/inventory.js';
import { planMesh } from '../../src/coordinator/plan.js';
import { runPlan, type RunOptions } from '../../src/coordinator/run.js';
import type { OpenSessionRequest, ProbeRequestBody, ProbeStreamLine, WitnessResponse } from '../../src/control/protocol.js';
import type { Report } from '../../src/types.js';

const inventory = (n: number): Inventory => ({
  file: 'inv.yaml',
  nodes: Array.from({ length: n }, (_, i) => ({ name: `node${i + 1}`, address: `198.18.${i + 1}.2`, roles: [], control: { host: `198.18.${i + 1}.2`, port: 5478 } })),
  endpoints: [],
  checks: null,
  ports: defaultPorts(),
});

interface Behaviour {
  /** openSession fails with this message (the node is unreachable). */
  unreachable?: string;
  /** Stream only this many outcomes, then end without the closing line. */
  stopAfter?: number;
  /** Called before each outcome is streamed (a test aborts here). */
  beforeOutcome?: (n: number) => void;
}

/** A fake network of responders: every probe arrives and is answered; the destination witnesses it. */
class FakeMesh {
  readonly calls: string[] = [];
  readonly opened = new Map<string, OpenSessionRequest>();
  private readonly witnessed = new Map<string, WitnessResponse['rows']>();
  private readonly byAddress: Map<string, InventoryNode>;
  constructor(
    inv: Inventory,
    private readonly behaviour: Record<string, Behaviour> = {},
  ) {
    this.byAddress = new Map(inv.nodes.map((n) => [n.address, n]));
  }

  connect = (node: InventoryNode): ControlConnection => {
    const b = this.behaviour[node.name] ?? {};
    const log = (what: string) => this.calls.push(`${node.name} ${what}`);
    return {
      openSession: async (body: OpenSessionRequest) => {
        log('open');
        if (b.unreachable) throw new ControlError(b.unreachable, null, 'ECONNREFUSED');
        this.opened.set(node.name, body);
        return { id: body.id, capture: true };
      },
      probe: async (_id: string, body: ProbeRequestBody, onLine: (l: ProbeStreamLine) => void, signal?: AbortSignal) => {
        log('probe');
        let n = 0;
        for (const p of body.probes) {
          if (b.stopAfter !== undefined && n >= b.stopAfter) return; // the stream just ends
          b.beforeOutcome?.(n);
          if (signal?.aborted) throw new ControlError(`request to ${node.name} aborted`, null, 'ABORT_ERR');
          await new Promise((r) => setImmediate(r));
          const to = this.byAddress.get(p.to)!;
          const rows = this.witnessed.get(to.name) ?? [];
          rows.push([p.idx, 1, 'eth0', 1, node.address, 1]);
          this.witnessed.set(to.name, rows);
          onLine({
            outcome: { idx: p.idx, toAddress: p.to, check: p.check, reply: p.transport === 'tcp' ? 'synack' : null, replyFrom: p.transport === 'tcp' ? p.to : null, icmp: null, sendError: null, left: true, leftOn: 'eth0', rttMs: 0.4, attempts: 1, srcPort: null },
          });
          n++;
        }
        onLine({ done: true, capture: true });
      },
      witness: async () => {
        log('witness');
        return { capture: true, dropped: 0, rows: this.witnessed.get(node.name) ?? [] };
      },
      closeSession: async () => void log('closeSession'),
      close: () => void log('close'),
    };
  };
}

async function run(inv: Inventory, mesh: FakeMesh, extra: Partial<RunOptions> = {}): Promise<{ report: Report; nodeErrors: string[] }> {
  const nodeErrors: string[] = [];
  const report = await runPlan(inv, planMesh(inv, { checks: ['bgp', 'ipip'] }), {
    secret: Buffer.from('a-shared-secret-long-enough'),
    command: 'mesh',
    graceMs: 0,
    connect: mesh.connect,
    onNodeError: (node, msg) => nodeErrors.push(`${node}: ${msg}`),
    ...extra,
  });
  return { report, nodeErrors };
}

const verdicts = (r: Report) => r.results.map((x) => `${x.check} ${x.from}>${x.to} ${x.verdict}${x.cause ? `/${x.cause}` : ''}`).sort();

t.test('every node reached: one passing result per flow; sessions opened, closed, connections closed', async (t) => {
  const inv = inventory(3);
  const mesh = new FakeMesh(inv);
  const progress: number[] = [];
  const { report, nodeErrors } = await run(inv, mesh, { onProgress: (p) => progress.push(p.done) });
  t.equal(report.results.length, 2 * 3 * 2);
  t.same(report.summary, { pass: 12, fail: 0, unknown: 0 });
  t.same(nodeErrors, []);
  t.notOk(report.incomplete);
  t.equal(progress.at(-1), 12, 'progress reaches the total');
  t.same(mesh.opened.get('node1')?.peers.sort(), ['198.18.2.2', '198.18.3.2'], 'each node is told its peers');
  t.equal(mesh.opened.get('node1')?.expect, 4, 'and how many flows target it (2 checks × 2 peers)');
  for (const n of ['node1', 'node2', 'node3']) {
    const mine = mesh.calls.filter((c) => c.startsWith(`${n} `)).map((c) => c.split(' ')[1]);
    t.same(mine, ['open', 'probe', 'witness', 'closeSession', 'close'], `${n}: the session's life in order`);
  }
});

t.test('an unreachable node: its flows are unknown and say why; the rest is judged', async (t) => {
  const inv = inventory(3);
  const mesh = new FakeMesh(inv, { node2: { unreachable: 'nothing listens on 198.18.2.2:5478 (is the responder running there, on that control port?)' } });
  const { report, nodeErrors } = await run(inv, mesh);
  t.same(nodeErrors, ['node2: nothing listens on 198.18.2.2:5478 (is the responder running there, on that control port?)']);
  for (const r of report.results) {
    // A SYN-ACK from node2 proves the round trip without its witness; IP-in-IP to it needs the witness.
    const involves = r.from === 'node2' || (r.to === 'node2' && r.check === 'ipip');
    t.equal(r.verdict, involves ? 'unknown' : 'pass', `${r.check} ${r.from}>${r.to}`);
    if (involves) t.equal(r.cause, 'responder-unreachable');
    if (r.from === 'node2') t.match(r.detail, /nothing listens on 198\.18\.2\.2:5478/);
  }
  t.same(report.summary, { pass: 6, fail: 0, unknown: 6 });
  t.notOk(mesh.calls.includes('node2 closeSession'), 'no session to close where none opened');
  t.ok(mesh.calls.includes('node2 close'), 'its connection is still closed');
});

t.test('a node that stops streaming: what it sent is judged, the rest unknown, and the node is named', async (t) => {
  const inv = inventory(3);
  const mesh = new FakeMesh(inv, { node1: { stopAfter: 2 } });
  const { report, nodeErrors } = await run(inv, mesh);
  t.same(nodeErrors, ["node1: node1's responder stopped streaming before all probes were done"]);
  const fromNode1 = report.results.filter((r) => r.from === 'node1');
  t.equal(fromNode1.filter((r) => r.verdict === 'pass').length, 2, 'the two outcomes it streamed are judged');
  t.equal(fromNode1.filter((r) => r.verdict === 'unknown').length, 2);
  t.ok(mesh.calls.includes('node1 witness'), 'its witness log is still fetched: flows to node1 keep their verdict');
  t.ok(report.results.filter((r) => r.to === 'node1').every((r) => r.verdict === 'pass'));
  t.same(report.summary, { pass: 10, fail: 0, unknown: 2 });
});

t.test('an interrupted run: an incomplete report of what was probed, sessions still closed', async (t) => {
  const inv = inventory(3);
  const ac = new AbortController();
  const mesh = new FakeMesh(inv, { node3: { beforeOutcome: (n) => n === 1 && ac.abort() } });
  const { report } = await run(inv, mesh, { signal: ac.signal });
  t.equal(report.incomplete, true);
  t.ok(report.results.length < 12, `flows never probed are left out (${report.results.length} of 12)`);
  t.ok(report.results.length >= 1);
  t.ok(report.results.every((r) => r.verdict === 'pass'), 'what was probed and witnessed passes');
  t.same(verdicts(report).filter((v) => v.includes('node3>')).length, 1, 'node3 streamed one outcome before the interrupt');
  for (const n of ['node1', 'node2', 'node3']) t.ok(mesh.calls.includes(`${n} closeSession`), `${n}'s session closed`);
});
