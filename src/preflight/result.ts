// A preflight result: its JSON (validated by schema/preflight.schema.json) and its table.
import { readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import pc from 'picocolors';
import { countSeverities, findingsLines, renderPreflightHtml } from '../report/findings.js';
import type { CheckId } from '../types.js';
import type { Finding } from './findings.js';
import { sortFindings } from './local.js';

export interface PreflightResult {
  schemaVersion: 1;
  command: 'preflight';
  checks: CheckId[];
  /** Added: the nodes checked (--inventory: every node asked, whether it answered or not). */
  nodes?: string[];
  findings: Finding[];
  summary: { error: number; warning: number; info: number };
}

export function makeResult(checks: CheckId[], findings: Finding[], nodes?: string[]): PreflightResult {
  const sorted = sortFindings(findings);
  return { schemaVersion: 1, command: 'preflight', checks, ...(nodes ? { nodes } : {}), findings: sorted, summary: countSeverities(sorted) };
}

let validator: ValidateFunction | undefined;
/** Schema violations as "/findings/0/severity: must be equal to one of the allowed values" (empty when valid). */
export function validatePreflight(obj: unknown): string[] {
  if (!validator) {
    const schema = JSON.parse(readFileSync(new URL('../../schema/preflight.schema.json', import.meta.url), 'utf8')) as Record<string, unknown>;
    validator = new Ajv2020({ allErrors: true, strict: true }).compile(schema);
  }
  if (validator(obj)) return [];
  return (validator.errors ?? []).map((e) => `${e.instancePath || '/'}: ${e.message ?? 'invalid'}`);
}

export function renderPreflightTable(r: PreflightResult, opts: { color?: boolean } = {}): string {
  const lines = r.findings.length === 0 ? [`preflight: no findings${r.nodes ? ` on ${r.nodes.length} node${r.nodes.length === 1 ? '' : 's'}` : ''}.`] : findingsLines(r.findings, pc.createColors(opts.color ?? false), { heading: false, maxNodes: 12 });
  lines.push(`\n${r.summary.error} error(s), ${r.summary.warning} warning(s), ${r.summary.info} info; checks: ${r.checks.join(',')}`);
  return lines.join('\n') + '\n';
}

export type PreflightFormat = 'table' | 'json' | 'html';

export function renderPreflight(r: PreflightResult, format: PreflightFormat, opts: { color?: boolean } = {}): string {
  if (format === 'json') return JSON.stringify(r, null, 2) + '\n';
  if (format === 'html') return renderPreflightHtml({ ...r, nodes: r.nodes });
  return renderPreflightTable(r, opts);
}
