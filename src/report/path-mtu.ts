// The mtu check's per-pair figures for the renderers: the flows whose path MTU is below the sender's
// host MTU, as "node1→node2 1400 (host 1500)" items. Pure.
import type { FlowResult } from '../types.js';

export interface PathMtuItem {
  from: string;
  to: string;
  pathMtu: number;
  hostMtu: number;
}

/** Results with a measured path MTU below the host's, in report order. */
export function pathMtuBelowHost(results: Iterable<FlowResult>): PathMtuItem[] {
  const out: PathMtuItem[] = [];
  for (const r of results) {
    if (typeof r.pathMtu !== 'number' || typeof r.hostMtu !== 'number' || r.pathMtu >= r.hostMtu) continue;
    out.push({ from: r.from, to: r.to, pathMtu: r.pathMtu, hostMtu: r.hostMtu });
  }
  return out;
}

/** "node1→node2 1400, node2→node1 1404 (host MTU 1500)". */
export function pathMtuLine(items: readonly PathMtuItem[]): string {
  const hosts = [...new Set(items.map((i) => i.hostMtu))];
  const pairs = items.map((i) => `${i.from}→${i.to} ${i.pathMtu}${hosts.length > 1 ? ` (host ${i.hostMtu})` : ''}`).join(', ');
  return `path MTU below the host's: ${pairs}${hosts.length === 1 ? ` (host MTU ${hosts[0]})` : ''}`;
}
