// Choosing a renderer, and writing a report file so a reader never sees half of it.
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Report } from '../types.js';
import { diagnose } from './diagnosis.js';
import { renderHtml } from './html.js';
import { jsonChunks, renderJson, STREAM_RESULTS_OVER } from './json.js';
import { renderJunit } from './junit.js';
import { renderTable, type TableOptions } from './table.js';

export { summarize } from './common.js';

export type ReportFormat = 'table' | 'json' | 'junit' | 'html';
export const REPORT_FORMATS: readonly ReportFormat[] = ['table', 'json', 'junit', 'html'];

/** The report with its diagnosis filled in when the producer did not attach one. */
export function withDiagnosis(report: Report): Report {
  if (report.diagnosis) return report;
  return { ...report, diagnosis: diagnose(report) };
}

export function renderReport(report: Report, format: ReportFormat, opts: { color: boolean } & Omit<TableOptions, 'color'>): string {
  const r = withDiagnosis(report);
  switch (format) {
    case 'table':
      return renderTable(r, opts);
    case 'json':
      return renderJson(r);
    case 'junit':
      return renderJunit(r);
    case 'html':
      return renderHtml(r);
    default:
      throw new TypeError(`unknown report format ${JSON.stringify(format)} (expected ${REPORT_FORMATS.join(', ')})`);
  }
}

/** The report in pieces: JSON is streamed when large; the other formats are one piece. */
export function reportChunks(report: Report, format: ReportFormat, opts: { color: boolean } & Omit<TableOptions, 'color'>): Iterable<string> {
  if (format === 'json' && report.results.length > STREAM_RESULTS_OVER) return jsonChunks(withDiagnosis(report));
  return [renderReport(report, format, opts)];
}

/** Write pieces to a stream, waiting for it to drain (stdout to a slow pipe must not buffer a gigabyte). */
export async function writeChunks(stream: NodeJS.WritableStream, chunks: Iterable<string>): Promise<void> {
  for (const c of chunks) {
    if (!stream.write(c)) await new Promise<void>((resolve) => stream.once('drain', resolve));
  }
}

/** Write `data` to `path` atomically: a temp file in the same directory, fsync, rename. */
export async function writeFileAtomic(path: string, data: string | Uint8Array | Iterable<string>): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(tmp, 'wx', 0o644);
    if (typeof data === 'string' || data instanceof Uint8Array) await fh.writeFile(data);
    else for (const piece of data) await fh.write(piece);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
  } catch (err) {
    if (fh) await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}
