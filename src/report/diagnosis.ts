// Explains failed and unknown flows in the fewest statements: the results are indexed once
// (diagnosis/results.ts), every place that could have dropped each failure is a candidate group
// (diagnosis/candidates.ts), a greedy set cover picks the fewest groups explaining every failure, largest
// first, ties to the more specific place (diagnosis/cover.ts), and each chosen group becomes its kind's
// sentence (diagnosis/sentences.ts). Pure; reads the results' verdicts, causes and facts, never `detail`.
import type { DiagnosisStatement } from '../types.js';
import { buildCandidates, mergeAlike, tieBefore } from './diagnosis/candidates.js';
import { greedyCover } from './diagnosis/cover.js';
import { indexResults, type DiagnoseInput } from './diagnosis/results.js';
import { statement } from './diagnosis/sentences.js';

export type { DiagnoseInput } from './diagnosis/results.js';

export function diagnose(report: DiagnoseInput): DiagnosisStatement[] {
  const x = indexResults(report);
  if (x.fRes.length === 0) return [];
  const candidates = buildCandidates(x);
  const chosen = mergeAlike(greedyCover(candidates.groups, x.fRes.length, tieBefore), x);
  return chosen.map((g) => {
    const st = statement(g, x, candidates);
    MEMBERS.set(st, g.members.map((m) => x.fRes[m]!));
    return st;
  });
}

/** Which results (indices into report.results) each statement explains; kept off the JSON contract. */
const MEMBERS = new WeakMap<DiagnosisStatement, number[]>();

/** The result indices a statement from diagnose() explains; undefined for one read back from JSON. */
export function membersOf(statement: DiagnosisStatement): readonly number[] | undefined {
  return MEMBERS.get(statement);
}
