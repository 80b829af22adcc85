// verify: compare a run with its baseline report, flow by flow (DESIGN §5), and decide the exit code.
import type { Change, DiagnosisStatement, FlowResult, Report } from '../types.js';
import { diagnose, inReport } from './diagnosis.js';
import { flowKey } from './common.js';

/** How many untested baseline flows a report names one by one; the count is always whole. */
export const NOT_TESTED_LIST_CAP = 200;

/** A copy of `current` with `change` on every result and the top-level `baseline`. */
export function compareToBaseline(current: Report, baseline: Report, baselineFile?: string): Report {
  const before = new Map<string, FlowResult>();
  for (const r of baseline.results) before.set(flowKey(r), r);
  const tested = new Set<string>();
  const results = current.results.map((r): FlowResult => {
    const key = flowKey(r);
    tested.add(key);
    const b = before.get(key);
    const was = b?.verdict;
    let change: Change;
    if (was === undefined) change = 'new';
    else if (was === 'pass' && r.verdict !== 'pass') change = 'regressed';
    else if (was !== 'pass' && r.verdict === 'pass') change = 'fixed';
    else change = 'unchanged';
    if (change !== 'fixed' || !b) return { ...r, change };
    return { ...r, change, was: { verdict: b.verdict, cause: b.cause ?? null, rejectedBy: b.rejectedBy ?? null, ...(b.where !== undefined ? { where: b.where } : {}) } };
  });
  const base: NonNullable<Report['baseline']> = { startedAt: baseline.startedAt, summary: { ...baseline.summary } };
  if (baselineFile !== undefined) base.file = baselineFile;
  Object.assign(base, notTested(current, baseline, tested));
  const warnings = baselineWarnings(current, baseline);
  if (warnings.length) base.warnings = warnings;
  return { ...current, results, baseline: base };
}

/**
 * The baseline's flows this run did not test, and why as far as the reports tell: a check this run left out,
 * a node it does not have, or neither (the run was interrupted, or the roles changed).
 */
function notTested(current: Report, baseline: Report, tested: ReadonlySet<string>): Pick<NonNullable<Report['baseline']>, 'notTested' | 'notTestedFlows' | 'notTestedChecks' | 'notTestedNodes'> {
  const runChecks = new Set(current.checks ?? current.results.map((r) => r.check));
  const runNodes = new Set(current.nodes.map((n) => n.name));
  const flows: string[] = [];
  const checks = new Set<string>();
  const nodes = new Set<string>();
  let count = 0;
  for (const r of baseline.results) {
    if (tested.has(flowKey(r))) continue;
    count++;
    if (flows.length < NOT_TESTED_LIST_CAP) flows.push(`${r.check} ${r.from} -> ${r.to}`);
    if (!runChecks.has(r.check)) checks.add(r.check);
    for (const n of [r.from, r.to]) if (!runNodes.has(n)) nodes.add(n);
  }
  return { notTested: count, notTestedFlows: flows, ...(checks.size ? { notTestedChecks: [...checks] } : {}), ...(nodes.size ? { notTestedNodes: [...nodes] } : {}) };
}

/** What makes a baseline a weak thing to compare with: it was cut short, or it is of other nodes. */
export function baselineWarnings(current: Pick<Report, 'nodes'>, baseline: Pick<Report, 'nodes' | 'incomplete'>): string[] {
  const out: string[] = [];
  if (baseline.incomplete) out.push('the baseline is incomplete (its run was interrupted): flows it lacks are compared as new, not as passing before');
  const now = new Map(current.nodes.map((n) => [n.name, n.address]));
  const shared = baseline.nodes.filter((n) => now.has(n.name));
  if (baseline.nodes.length > 0 && shared.length === 0) {
    out.push(`the baseline shares no node with this run (it has ${baseline.nodes.slice(0, 3).map((n) => n.name).join(', ')}${baseline.nodes.length > 3 ? ', …' : ''}): is it of another cluster?`);
  }
  const moved = shared.filter((n) => now.get(n.name) !== n.address);
  if (moved.length > 0) {
    const shown = moved.slice(0, 5).map((n) => `${n.name} ${n.address} -> ${now.get(n.name)}`).join(', ');
    out.push(`${moved.length} node${moved.length === 1 ? '' : 's'} changed address since the baseline (${shown}${moved.length > 5 ? ', …' : ''}): is it of another cluster?`);
  }
  return out;
}

export function changeCounts(report: Pick<Report, 'results'>): Record<Change, number> {
  const counts: Record<Change, number> = { unchanged: 0, regressed: 0, fixed: 0, new: 0 };
  for (const r of report.results) if (r.change !== undefined && r.change in counts) counts[r.change]++;
  return counts;
}

/**
 * 1 when anything regressed; with `strict`, also when any flow did not pass (baseline or not) or a flow of
 * the baseline was not tested.
 */
export function verifyExitCode(report: Pick<Report, 'results' | 'baseline'>, strict: boolean): 0 | 1 {
  if (strict && (report.baseline?.notTested ?? 0) > 0) return 1;
  for (const r of report.results) {
    if (r.change === 'regressed') return 1;
    if (strict && r.verdict !== 'pass') return 1;
  }
  return 0;
}

/**
 * verify's diagnosis: the failures that are new since the baseline (regressed, or not in it) first, then
 * those it already had, marked `known` — an operator after a firewall change reads the first part.
 */
export function diagnoseAgainstBaseline(report: Report): DiagnosisStatement[] {
  // Each part is diagnosed alone; its statements' members are mapped back to indices into report.results.
  const part = (known: boolean) => {
    const idx = report.results.flatMap((r, i) => (r.verdict !== 'pass' && (r.change === 'unchanged') === known ? [i] : []));
    const results = idx.map((i) => report.results[i]!);
    return diagnose({ nodes: report.nodes, results, ports: report.ports }).map((d) => inReport(d, idx, known ? { known: true } : {}));
  };
  return [...part(false), ...part(true)];
}
