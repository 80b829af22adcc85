// Explains failed and unknown flows in the fewest statements: the results are indexed once
// (diagnosis/results.ts), every place that could have dropped each failure is a candidate group
// (diagnosis/candidates.ts), a greedy set cover picks the fewest groups explaining every failure, largest
// first, ties to the more specific place (diagnosis/cover.ts), and each chosen group becomes its kind's
// sentence (diagnosis/sentences.ts), quoting the rules --explain named on its flows. Pure; reads the
// results' verdicts, causes and facts, never `detail`. Computed once, from the final results.
import { annotateDiagnosis } from '../explain/advice.js';
import type { DiagnosisStatement, FlowResult } from '../types.js';
import { buildCandidates, mergeAlike, tieBefore } from './diagnosis/candidates.js';
import { greedyCover } from './diagnosis/cover.js';
import { indexResults, type DiagnoseInput, type ResultIndex } from './diagnosis/results.js';
import { statement } from './diagnosis/sentences.js';

export type { DiagnoseInput } from './diagnosis/results.js';

export function diagnose(report: DiagnoseInput): DiagnosisStatement[] {
  const x = indexResults(report);
  if (x.fRes.length === 0) return [];
  const candidates = buildCandidates(x);
  const chosen = mergeAlike(greedyCover(candidates.groups, x.fRes.length, tieBefore), x);
  const statements = chosen.map((g) => statement(g, x, candidates));
  const quoted = withRules(statements, x);
  chosen.forEach((g, i) => MEMBERS.set(quoted[i]!, g.members.map((m) => x.fRes[m]!)));
  return quoted;
}

/** The statements with the rules --explain named on their example flows quoted (unchanged without any). */
function withRules(statements: DiagnosisStatement[], x: ResultIndex): DiagnosisStatement[] {
  const byFlow = new Map<string, FlowResult>();
  for (const ri of x.fRes) {
    const r = x.results[ri]!;
    if (r.rule) byFlow.set(`${r.check}|${r.from}|${r.to}`, r);
  }
  if (byFlow.size === 0) return statements;
  const address = new Map(x.names.map((n, i) => [n, x.addrOf[i]]));
  return annotateDiagnosis(statements, { result: (c, f, t) => byFlow.get(`${c}|${f}|${t}`), addressOf: (n) => address.get(n) || undefined });
}

/** Which results (indices into report.results) each statement explains; kept off the JSON contract. */
const MEMBERS = new WeakMap<DiagnosisStatement, number[]>();

/** The result indices a statement from diagnose() explains; undefined for one read back from JSON. */
export function membersOf(statement: DiagnosisStatement): readonly number[] | undefined {
  return MEMBERS.get(statement);
}

/**
 * A statement diagnosed over a subset of a report's results, as one of the whole report: `extra` fields added,
 * its members mapped through `indexOf` (subset index -> report index), so its links point at the right flows.
 */
export function inReport(statement: DiagnosisStatement, indexOf: readonly number[], extra: Partial<DiagnosisStatement> = {}): DiagnosisStatement {
  const st = { ...statement, ...extra };
  const members = MEMBERS.get(statement);
  if (members) MEMBERS.set(st, members.map((m) => indexOf[m]!));
  return st;
}
