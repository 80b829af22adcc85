// The JSON report (DESIGN §5): rendering, and reading one back with clear errors for every bad input.
import { readFileSync } from 'node:fs';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { checkIds } from '../checks/catalogue.js';
import type { Report } from '../types.js';
import { EXIT, UserError } from '../errors.js';

export const SCHEMA_VERSION = 1;
export const TOOL_NAME = 'calico-nettest';

export class ReportError extends UserError {
  readonly code = 'EREPORT' as const;
  constructor(message: string) {
    super(message, EXIT.usage);
    this.name = 'ReportError';
  }
}

export function renderJson(report: Report): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

/** Above this many results a report is written as a stream: one string would pass V8's limit (~512 M chars). */
export const STREAM_RESULTS_OVER = 50_000;

/**
 * The same JSON document as renderJson, in pieces of about `chunkChars` (small, so each dies young), with each result compact on one
 * line: memory stays flat however large the mesh (7 million results make a gigabyte of JSON).
 */
export function* jsonChunks(report: Report, chunkChars = 1 << 16): Generator<string> {
  const { results, ...head } = report;
  const headText = JSON.stringify(head, null, 2);
  // `{ ...head }` then `"results": [...]` as the last member.
  let buf = `${headText.length > 2 ? `${headText.slice(0, -2)},\n` : '{\n'}  "results": [`;
  for (let i = 0; i < results.length; i++) {
    buf += `${i ? ',' : ''}\n    ${JSON.stringify(results[i])}`;
    if (buf.length >= chunkChars) {
      yield buf;
      buf = '';
    }
  }
  yield `${buf}${results.length ? '\n  ' : ''}]\n}\n`;
}

/** Parse and validate a report; every problem is a ReportError whose message starts with `source`. */
export function parseReport(text: string, source: string): Report {
  if (typeof text !== 'string') throw new ReportError(`${source}: not JSON (no text)`);
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new ReportError(`${source}: not JSON (${describeSyntaxError(body)})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ReportError(`${source}: not a calico-nettest report (expected a JSON object, found ${kindOf(value)})`);
  }
  const obj = value as Record<string, unknown>;
  const tool = obj['tool'];
  const name = tool !== null && typeof tool === 'object' ? (tool as Record<string, unknown>)['name'] : undefined;
  if (name !== TOOL_NAME) {
    const why = name === undefined ? 'it has no tool.name' : `its tool.name is ${JSON.stringify(name)}`;
    throw new ReportError(`${source}: not a calico-nettest report (${why})`);
  }
  const v = obj['schemaVersion'];
  if (typeof v !== 'number') {
    throw new ReportError(`${source}: not a valid calico-nettest report: schemaVersion is ${v === undefined ? 'missing' : JSON.stringify(v)}, expected ${SCHEMA_VERSION}`);
  }
  if (v > SCHEMA_VERSION) {
    throw new ReportError(`${source}: schemaVersion ${v} is newer than this calico-nettest understands (${SCHEMA_VERSION}); upgrade calico-nettest to read it`);
  }
  if (v !== SCHEMA_VERSION) {
    throw new ReportError(`${source}: schemaVersion ${v} is not supported (this calico-nettest understands ${SCHEMA_VERSION})`);
  }
  const errors = validateReport(obj);
  if (errors.length > 0) {
    const more = errors.length > 3 ? `; and ${errors.length - 3} more` : '';
    throw new ReportError(`${source}: not a valid calico-nettest report: ${errors.slice(0, 3).join('; ')}${more}`);
  }
  return obj as unknown as Report;
}

let validator: ValidateFunction | undefined;

/** The report's JSON Schema as shipped in the package (works from src/ and dist/). */
export function loadSchemaFile(): Record<string, unknown> {
  const url = new URL('../../schema/report.schema.json', import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')) as Record<string, unknown>;
}

/** The report's JSON Schema, its check enum from the catalogue (test/unit/catalogue-shape.ts keeps the file equal to it). */
export function loadSchema(): Record<string, unknown> {
  const schema = loadSchemaFile();
  const defs = schema['$defs'] as Record<string, Record<string, unknown>>;
  defs['check'] = { ...defs['check'], enum: [...checkIds()] };
  return schema;
}

/** Schema violations as "/results/3/verdict: must be one of pass, fail, unknown" (empty when valid). */
export function validateReport(obj: unknown): string[] {
  if (!validator) {
    const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
    validator = ajv.compile(loadSchema());
  }
  if (validator(obj)) return [];
  return dedupe((validator.errors ?? []).map(formatError));
}

function formatError(e: ErrorObject): string {
  const path = e.instancePath === '' ? '/' : e.instancePath;
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return `${path}: missing required property "${String(params['missingProperty'])}"`;
    case 'enum':
      return `${path}: must be one of ${(params['allowedValues'] as unknown[]).map((x) => JSON.stringify(x)).join(', ')}`;
    case 'const':
      return `${path}: must be ${JSON.stringify(params['allowedValue'])}`;
    default:
      return `${path}: ${e.message ?? e.keyword}`;
  }
}

function dedupe(list: string[]): string[] {
  return [...new Set(list)];
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'number') return 'a number';
  if (typeof v === 'boolean') return 'a boolean';
  return typeof v;
}

/**
 * Where and why text is not JSON. JSON.parse's messages differ between Node versions and do not
 * always give a position, so a small scanner finds the first offending character itself.
 */
export function describeSyntaxError(text: string): string {
  if (text.trim() === '') return 'the file is empty';
  const r = scanJson(text);
  if (r === null) return 'JSON.parse rejected it';
  if (r.eof) {
    const end = lineCol(text, Math.max(0, text.trimEnd().length - 1));
    return `truncated? it ends at line ${end.line}, column ${end.col}`;
  }
  const at = lineCol(text, r.pos);
  const ch = text.charCodeAt(r.pos);
  const shown =
    ch < 0x20 || ch === 0x7f || ch === 0xfffd || (ch >= 0xd800 && ch <= 0xdfff)
      ? `byte 0x${ch.toString(16).padStart(2, '0')}${ch === 0xfffd ? ' (not UTF-8)' : ''}`
      : JSON.stringify(text[r.pos]);
  const binary = ch === 0 || ch === 0xfffd ? ' — binary data?' : '';
  return `unexpected ${shown} at line ${at.line}, column ${at.col}${binary}`;
}

function lineCol(text: string, pos: number): { line: number; col: number } {
  let line = 1;
  let last = -1;
  for (let i = 0; i < pos && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      last = i;
    }
  }
  return { line, col: pos - last };
}

/** First syntax error of `text` as JSON: its offset, and whether it is the end of the text. Null if valid. */
export function scanJson(text: string): { pos: number; eof: boolean } | null {
  let i = 0;
  const n = text.length;
  class Stop {
    constructor(readonly pos: number) {}
  }
  const fail = (pos: number): never => {
    throw new Stop(pos);
  };
  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };
  const literal = (word: string) => {
    for (let k = 0; k < word.length; k++) {
      if (i >= n) fail(i);
      if (text[i] !== word[k]) fail(i);
      i++;
    }
  };
  const string = () => {
    i++; // opening quote
    for (;;) {
      if (i >= n) fail(i);
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c < 0x20) fail(i);
      if (c === 0x5c) {
        i++;
        if (i >= n) fail(i);
        const e = text[i]!;
        if (e === 'u') {
          for (let k = 1; k <= 4; k++) {
            if (i + k >= n) fail(i + k);
            if (!/[0-9a-fA-F]/.test(text[i + k]!)) fail(i + k);
          }
          i += 5;
        } else if ('"\\/bfnrt'.includes(e)) i++;
        else fail(i);
      } else i++;
    }
  };
  const digits = (): number => {
    const s = i;
    while (i < n && text.charCodeAt(i) >= 0x30 && text.charCodeAt(i) <= 0x39) i++;
    return i - s;
  };
  const number = () => {
    if (text[i] === '-') i++;
    if (i >= n) fail(i);
    if (text[i] === '0') i++;
    else if (digits() === 0) fail(i);
    if (text[i] === '.') {
      i++;
      if (digits() === 0) fail(i);
    }
    if (text[i] === 'e' || text[i] === 'E') {
      i++;
      if (text[i] === '+' || text[i] === '-') i++;
      if (digits() === 0) fail(i);
    }
  };
  // Iterative over containers so that deeply nested input cannot overflow the stack.
  const stack: string[] = [];
  const value = () => {
    ws();
    if (i >= n) fail(i);
    const c = text[i]!;
    if (c === '{' || c === '[') {
      stack.push(c);
      i++;
      ws();
      if (i >= n) fail(i);
      if (text[i] === (c === '{' ? '}' : ']')) {
        stack.pop();
        i++;
        return false;
      }
      if (c === '{') key();
      return true; // opened a container
    }
    if (c === '"') string();
    else if (c === 't') literal('true');
    else if (c === 'f') literal('false');
    else if (c === 'n') literal('null');
    else if (c === '-' || (c >= '0' && c <= '9')) number();
    else fail(i);
    return false;
  };
  const key = () => {
    ws();
    if (i >= n) fail(i);
    if (text[i] !== '"') fail(i);
    string();
    ws();
    if (i >= n) fail(i);
    if (text[i] !== ':') fail(i);
    i++;
  };
  try {
    let opened = value();
    for (;;) {
      if (opened) {
        opened = value();
        continue;
      }
      if (stack.length === 0) break;
      ws();
      if (i >= n) fail(i);
      const top = stack[stack.length - 1]!;
      const close = top === '{' ? '}' : ']';
      if (text[i] === ',') {
        i++;
        if (top === '{') key();
        opened = value();
      } else if (text[i] === close) {
        stack.pop();
        i++;
      } else fail(i);
    }
    ws();
    if (i < n) fail(i);
    return null;
  } catch (e) {
    if (e instanceof Stop) return { pos: e.pos, eof: e.pos >= n };
    throw e;
  }
}
