// A preflight result: its JSON (validated by schema/preflight.schema.json) and its table.
import { readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import type { CheckId } from '../types.js';
import type { Finding } from './findings.js';
import { sortFindings } from './local.js';

export interface PreflightResult {
  schemaVersion: 1;
  command: 'preflight';
  checks: CheckId[];
  findings: Finding[];
  summary: { error: number; warning: number; info: number };
}

export function makeResult(checks: CheckId[], findings: Finding[]): PreflightResult {
  const sorted = sortFindings(findings);
  const count = (s: Finding['severity']) => sorted.filter((f) => f.severity === s).length;
  return { schemaVersion: 1, command: 'preflight', checks, findings: sorted, summary: { error: count('error'), warning: count('warning'), info: count('info') } };
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

export function renderPreflightTable(r: PreflightResult): string {
  const lines: string[] = [];
  if (r.findings.length === 0) lines.push('preflight: no findings.');
  for (const f of r.findings) {
    lines.push(`${f.severity.toUpperCase().padEnd(7)} ${f.node}  ${f.id}`);
    lines.push(`        ${f.detail}`);
    lines.push(`        breaks: ${f.breaks}`);
    lines.push(...f.fix.split('\n').map((l, i) => `        ${i === 0 ? 'fix:    ' : '        '}${l}`));
  }
  lines.push(`\n${r.summary.error} error(s), ${r.summary.warning} warning(s), ${r.summary.info} info; checks: ${r.checks.join(',')}`);
  return lines.join('\n') + '\n';
}
