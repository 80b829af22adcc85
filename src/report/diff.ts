// verify: compare a run with its baseline report, flow by flow (DESIGN §5), and decide the exit code.
import type { Change, Report } from '../types.js';
import { flowKey } from './common.js';

/** A copy of `current` with `change` on every result and the top-level `baseline`. */
export function compareToBaseline(current: Report, baseline: Report, baselineFile?: string): Report {
  const before = new Map<string, string>();
  for (const r of baseline.results) before.set(flowKey(r), r.verdict);
  const results = current.results.map((r) => {
    const was = before.get(flowKey(r));
    let change: Change;
    if (was === undefined) change = 'new';
    else if (was === 'pass' && r.verdict !== 'pass') change = 'regressed';
    else if (was !== 'pass' && r.verdict === 'pass') change = 'fixed';
    else change = 'unchanged';
    return { ...r, change };
  });
  const base: NonNullable<Report['baseline']> = { startedAt: baseline.startedAt, summary: { ...baseline.summary } };
  if (baselineFile !== undefined) base.file = baselineFile;
  return { ...current, results, baseline: base };
}

export function changeCounts(report: Pick<Report, 'results'>): Record<Change, number> {
  const counts: Record<Change, number> = { unchanged: 0, regressed: 0, fixed: 0, new: 0 };
  for (const r of report.results) if (r.change !== undefined && r.change in counts) counts[r.change]++;
  return counts;
}

/** 1 when anything regressed; with `strict`, 1 when any flow did not pass (baseline or not). */
export function verifyExitCode(report: Pick<Report, 'results'>, strict: boolean): 0 | 1 {
  for (const r of report.results) {
    if (r.change === 'regressed') return 1;
    if (strict && r.verdict !== 'pass') return 1;
  }
  return 0;
}
