// Shared vocabulary of the report renderers: traffic names, ports, cause codes, summaries, ordering.
import { CATALOGUE, checkIds, defaultPorts } from '../checks/catalogue.js';
import { type Cause, type CheckId, type FlowResult, type Report, type Summary } from '../types.js';

/** Default port of each check (DESIGN §1), from the catalogue; ipip has none. */
export const DEFAULT_PORTS: Record<CheckId, number | null> = defaultPorts();

/** The port a check used: the result's own, else the report's override, else the default. */
export function portOf(check: CheckId, ports?: Report['ports'], result?: Pick<FlowResult, 'port'>): number | null {
  if (CATALOGUE[check]?.defaultPort === null) return null;
  if (result && typeof result.port === 'number') return result.port;
  const p = ports?.[check];
  if (typeof p === 'number') return p;
  return DEFAULT_PORTS[check] ?? null;
}

/** "BGP (TCP 179)", "IP-in-IP (IP protocol 4)". */
export function trafficName(check: CheckId, port: number | null): string {
  return CATALOGUE[check]?.traffic(port) ?? String(check);
}

/** Source rows and destination columns of one check's matrix, in node order, plus one sample result. */
export function matrixAxes(flows: Iterable<FlowResult>, names: readonly string[]): { rows: string[]; cols: string[]; sample: FlowResult | undefined } {
  const froms = new Set<string>();
  const tos = new Set<string>();
  let sample: FlowResult | undefined;
  for (const r of flows) {
    froms.add(r.from);
    tos.add(r.to);
    sample ??= r;
  }
  return { rows: names.filter((n) => froms.has(n)), cols: names.filter((n) => tos.has(n)), sample };
}

/** How a firewall rule would match the traffic: "tcp dport 179", "IP protocol 4 (ipencap)". */
export function ruleMatch(check: CheckId, port: number | null): string {
  const def = CATALOGUE[check];
  return def ? def.match(port) : 'IP protocol 4 (ipencap)';
}

/** One-letter cause codes of the text matrix. */
export const CAUSE_CODES: Record<Cause, string> = {
  'egress-blocked': 'E',
  'path-blocked': 'P',
  'ingress-blocked': 'I',
  blocked: 'B',
  rejected: 'R',
  'return-blocked': 'T',
  'responder-unreachable': '?',
  'not-probed': '?',
  'receive-error': '?',
  'no-route': 'N',
  'mtu-blackhole': 'M',
  'mtu-limited': 'm',
  'rp-filter': 'F',
  'kernel-drop': 'K',
  misrouted: 'W',
  lossy: 'L',
  'host-unreachable': 'H',
  overloaded: '?',
};

export function causeCode(r: Pick<FlowResult, 'verdict' | 'cause'>): string {
  if (r.verdict === 'pass') return '✓';
  if (r.verdict === 'unknown') return '?';
  return (r.cause && (CAUSE_CODES as Record<string, string | undefined>)[r.cause]) || '✗';
}

export function summarize(results: readonly Pick<FlowResult, 'verdict'>[]): Summary {
  let pass = 0;
  let fail = 0;
  let unknown = 0;
  for (const r of results) {
    if (r.verdict === 'pass') pass++;
    else if (r.verdict === 'fail') fail++;
    else unknown++;
  }
  return { pass, fail, unknown };
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Checks in catalogue order: the plan's list when present, then any others the results hold. */
export function checksOf(report: Pick<Report, 'results'> & Partial<Pick<Report, 'checks'>>): CheckId[] {
  const seen = new Set<CheckId>();
  for (const r of report.results) seen.add(r.check);
  const out: CheckId[] = [];
  for (const c of report.checks ?? []) if (!out.includes(c)) out.push(c);
  for (const c of checkIds()) if (seen.has(c) && !out.includes(c)) out.push(c);
  for (const c of seen) if (!out.includes(c)) out.push(c);
  return out;
}

/** Node names in inventory order, then names that only appear in results (apiserver endpoints). */
export function nodeNamesOf(report: Pick<Report, 'nodes' | 'results'>): string[] {
  const names: string[] = [];
  const seen = new Set<string>();
  for (const n of report.nodes) {
    if (!seen.has(n.name)) {
      seen.add(n.name);
      names.push(n.name);
    }
  }
  for (const r of report.results) {
    if (!seen.has(r.from)) {
      seen.add(r.from);
      names.push(r.from);
    }
    if (!seen.has(r.to)) {
      seen.add(r.to);
      names.push(r.to);
    }
  }
  return names;
}

export function flowKey(r: Pick<FlowResult, 'check' | 'from' | 'to'>): string {
  return `${r.check}\u0000${r.from}\u0000${r.to}`;
}

export function formatRtt(ms: number | null | undefined): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '-';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  return `${Math.round(ms)} ms`;
}

/** "node1, node2, node3 and 4 more". */
export function listNames(names: readonly string[], max = 3): string {
  if (names.length <= max) {
    if (names.length <= 1) return names.join('');
    return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
  }
  return `${names.slice(0, max).join(', ')} and ${names.length - max} more`;
}
