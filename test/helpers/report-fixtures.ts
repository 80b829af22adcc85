// Synthetic reports for the report tests: a full mesh with faults injected per flow.
import type { CheckId, FlowResult, Report, ReportNode } from '../../src/types.js';
import { summarize } from '../../src/report/common.js';

export type Fault = (check: CheckId, from: string, to: string) => Partial<FlowResult> | undefined;

export interface MeshOptions {
  checks?: CheckId[];
  /** Address of node i (1-based); default 198.18.i.1, one /24 per node. */
  address?: (i: number) => string;
  fault?: Fault;
  name?: (i: number) => string;
}

export function mesh(n: number, opts: MeshOptions = {}): Report {
  const checks = opts.checks ?? ['bgp', 'ipip', 'vxlan'];
  const address = opts.address ?? ((i: number) => `198.18.${i}.1`);
  const name = opts.name ?? ((i: number) => `node${i}`);
  const nodes: ReportNode[] = [];
  for (let i = 1; i <= n; i++) nodes.push({ name: name(i), address: address(i) });
  const results: FlowResult[] = [];
  for (const check of checks) {
    for (const a of nodes) {
      for (const b of nodes) {
        if (a === b) continue;
        const base: FlowResult = {
          check,
          from: a.name,
          to: b.name,
          verdict: 'pass',
          cause: null,
          rejectedBy: null,
          detail: check === 'bgp' ? 'handshake answered (SYN-ACK)' : 'witnessed at the socket layer',
          rttMs: 0.4,
          attempts: 1,
          observedSource: a.address,
          toAddress: b.address,
          port: check === 'ipip' ? null : check === 'bgp' ? 179 : 4789,
        };
        const f = opts.fault?.(check, a.name, b.name);
        results.push(f ? { ...base, rttMs: null, attempts: 3, detail: `${f.cause ?? f.verdict} ${a.name} -> ${b.name}`, ...f } : base);
      }
    }
  }
  return {
    schemaVersion: 1,
    tool: { name: 'calico-nettest', version: '0.1.0' },
    startedAt: '2025-01-01T00:00:00.000Z',
    finishedAt: '2025-01-01T00:00:05.000Z',
    command: 'mesh',
    nodes,
    results,
    summary: summarize(results),
    checks,
  };
}

export const fail = (cause: FlowResult['cause'], extra: Partial<FlowResult> = {}): Partial<FlowResult> => ({
  verdict: 'fail',
  cause,
  ...extra,
});
export const unknown = (extra: Partial<FlowResult> = {}): Partial<FlowResult> => ({
  verdict: 'unknown',
  cause: 'responder-unreachable',
  ...extra,
});

