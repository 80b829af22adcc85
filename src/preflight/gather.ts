// Preflight on every node through its responder (POST /v1/preflight): the findings of all of them, and a
// `preflight-unavailable` finding for each node that could not be asked, saying why (never silence).
import pMap from 'p-map';
import { ControlClient, ControlError } from '../coordinator/client.js';
import type { Inventory, InventoryNode } from '../coordinator/inventory.js';
import type { CheckId, Report } from '../types.js';
import type { Finding } from './findings.js';
import { sortFindings } from './local.js';
import { parsePreflightResponse, type PreflightRequest } from './route.js';

/** What gathering needs of one responder (tests give a fake). */
export interface PreflightConnection {
  preflight(body: PreflightRequest, signal?: AbortSignal): Promise<unknown>;
  close(): void;
}

export interface GatherOptions {
  secret: Buffer;
  checks: readonly CheckId[];
  podCIDR?: string;
  serviceCIDR?: string;
  /** Responders asked at once. */
  parallel?: number;
  signal?: AbortSignal;
  /** Nodes not to ask, and why (a mesh already found their responder unreachable). */
  skip?: ReadonlyMap<string, string>;
  timeoutMs?: number;
  connect?: (node: InventoryNode, secret: Buffer, timeoutMs: number) => PreflightConnection;
  /** After each node: how many are done. */
  onProgress?: (done: number, total: number) => void;
}

export interface Gathered {
  findings: Finding[];
  /** Nodes whose responder answered with findings. */
  reached: string[];
  /** Nodes that could not be asked (each has a preflight-unavailable finding). */
  unavailable: string[];
}

/** The finding for a node whose preflight is not known: an error, since nothing was checked there. */
export function unavailableFinding(node: InventoryNode, why: string, kind: 'unreachable' | 'old' | 'bad-answer' | 'skipped'): Finding {
  const control = `${node.control.host}:${node.control.port}`;
  const fix = {
    unreachable: `start \`calico-nettest responder\` on ${node.name} (control ${control}) and check the secret; or run \`sudo calico-nettest preflight --local\` on the node itself`,
    old: `upgrade the responder on ${node.name} to this calico-nettest version; or run \`sudo calico-nettest preflight --local\` on the node itself`,
    'bad-answer': `check what listens on ${control}; run \`sudo calico-nettest preflight --local\` on the node itself`,
    skipped: `make ${node.name}'s responder reachable (see the flows), or run \`sudo calico-nettest preflight --local\` on the node itself`,
  }[kind];
  return { node: node.name, id: 'preflight-unavailable', severity: 'error', detail: `${node.name}'s host requirements were not checked: ${why}`, breaks: 'nothing known: every requirement on this node is unchecked', fix };
}

export async function gatherPreflight(nodes: readonly InventoryNode[], o: GatherOptions): Promise<Gathered> {
  const connect = o.connect ?? ((n, secret, timeoutMs) => new ControlClient(n.control.host, n.control.port, secret, n.address, timeoutMs));
  const out: Gathered = { findings: [], reached: [], unavailable: [] };
  let done = 0;
  await pMap(
    nodes,
    async (node) => {
      const skipped = o.skip?.get(node.name);
      const result = skipped !== undefined ? unavailableFinding(node, `not asked: ${skipped}`, 'skipped') : await askOne(node, o, connect);
      if (Array.isArray(result)) {
        out.findings.push(...result);
        out.reached.push(node.name);
      } else {
        out.findings.push(result);
        out.unavailable.push(node.name);
      }
      o.onProgress?.(++done, nodes.length);
    },
    { concurrency: o.parallel ?? 32 },
  );
  return out;
}

async function askOne(node: InventoryNode, o: GatherOptions, connect: NonNullable<GatherOptions['connect']>): Promise<Finding[] | Finding> {
  const client = connect(node, o.secret, o.timeoutMs ?? 60_000);
  try {
    const body: PreflightRequest = { node: node.name, checks: [...o.checks], addresses: [node.address] };
    if (o.podCIDR) body.podCIDR = o.podCIDR;
    if (o.serviceCIDR) body.serviceCIDR = o.serviceCIDR;
    const answer = parsePreflightResponse(await client.preflight(body, o.signal), node.name);
    if ('problem' in answer) return unavailableFinding(node, `its responder's answer is not believed: ${answer.problem}`, 'bad-answer');
    return answer.findings;
  } catch (err) {
    if (err instanceof ControlError && err.status === 404) return unavailableFinding(node, 'its responder has no preflight call (an older calico-nettest?)', 'old');
    return unavailableFinding(node, (err as Error).message, 'unreachable');
  } finally {
    client.close();
  }
}

/**
 * mesh: each involved node's findings into `report.findings` (sorted), for the run's checks and the
 * inventory's ranges. When `signal` aborts (Ctrl-C: cli/interruptible.ts) the report comes back without
 * findings.
 */
export async function addPreflight(
  report: Report,
  inv: Inventory,
  o: { secret: Buffer; skip?: ReadonlyMap<string, string>; parallel?: number; log: (line: string) => void; connect?: GatherOptions['connect']; signal?: AbortSignal },
): Promise<Report> {
  const names = new Set(report.nodes.map((n) => n.name));
  const nodes = inv.nodes.filter((n) => names.has(n.name));
  if (nodes.length === 0) return report;
  o.log(`preflight: asking ${nodes.length} responder${nodes.length === 1 ? '' : 's'} for their host findings (--no-preflight skips this)`);
  const g = await gatherPreflight(nodes, { secret: o.secret, checks: report.checks ?? inv.checks ?? [], podCIDR: inv.podCIDR, serviceCIDR: inv.serviceCIDR, skip: o.skip, parallel: o.parallel, signal: o.signal, connect: o.connect });
  if (o.signal?.aborted) return report;
  return { ...report, findings: sortFindings(g.findings) };
}
