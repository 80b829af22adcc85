// Choosing a renderer, and writing a report file so a reader never sees half of it.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, realpath, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { EXIT, UserError } from '../errors.js';
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

/**
 * Write pieces to a stream, waiting for it to drain (stdout to a slow pipe must not buffer a gigabyte).
 * A stream error (EPIPE, ENOSPC on a file or device behind stdout) rejects instead of hanging on a drain
 * that never comes.
 */
export async function writeChunks(stream: NodeJS.WritableStream, chunks: Iterable<string>): Promise<void> {
  let failed: Error | undefined;
  const onError = (err: Error) => (failed ??= err);
  stream.on('error', onError);
  try {
    for (const c of chunks) {
      if (failed) throw failed;
      if (!stream.write(c)) {
        await new Promise<void>((resolve, reject) => {
          const drained = () => {
            stream.off('error', errored);
            resolve();
          };
          const errored = (err: Error) => {
            stream.off('drain', drained);
            reject(err);
          };
          stream.once('drain', drained);
          stream.once('error', errored);
        });
      }
    }
    if (failed) throw failed;
  } finally {
    stream.off('error', onError);
  }
}

/** Our own descriptors under another name: writing them in place is the only right way. */
const OWN_FD_PATH = /^\/(?:dev\/(?:stdout|stderr|fd\/\d+)|proc\/(?:self|thread-self|\d+)\/fd\/\d+)$/;

/** A report that could not be written: says where, why and what is left (exit 3, DESIGN §5). */
export class ReportWriteError extends UserError {
  readonly code = 'EWRITE' as const;
  constructor(
    message: string,
    readonly errno?: string,
  ) {
    super(message, EXIT.cannotRun);
    this.name = 'ReportWriteError';
  }
}

const WHY: Readonly<Record<string, string>> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EIO: 'input/output error',
  EFBIG: 'the file is too large for this file system',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOENT: 'no such directory',
  ENOTDIR: 'a part of the path is not a directory',
  EISDIR: 'it is a directory',
  EPIPE: 'the reader went away',
};

/** A write error's errno in words ("no space left on the device"), or undefined when not one of ours. */
export function whyWriteFailed(code: string | undefined): string | undefined {
  return code ? WHY[code] : undefined;
}

function writeError(path: string, err: unknown, inPlace: boolean): ReportWriteError {
  const code = (err as NodeJS.ErrnoException)?.code;
  const why = (code && WHY[code]) ?? (err as Error)?.message ?? String(err);
  const left = inPlace ? 'what was written so far is incomplete' : 'nothing was replaced: an existing file there is untouched';
  return new ReportWriteError(`cannot write the report to ${path}: ${why}${code && WHY[code] ? ` (${code})` : ''}; ${left}`, code);
}

type Handle = Awaited<ReturnType<typeof open>>;

/** Write every byte or throw: a short write is retried from where it stopped, never taken as done. */
async function writeAll(fh: Handle, data: string | Uint8Array | Iterable<string>): Promise<void> {
  const pieces: Iterable<string | Uint8Array> = typeof data === 'string' || data instanceof Uint8Array ? [data] : data;
  for (const piece of pieces) {
    const buf = typeof piece === 'string' ? Buffer.from(piece, 'utf8') : piece;
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await fh.write(buf, off, buf.length - off);
      if (bytesWritten <= 0) throw Object.assign(new Error('write(2) wrote nothing'), { code: 'EIO' });
      off += bytesWritten;
    }
  }
}

/** Whether `path` must be written in place: our own descriptors, devices, FIFOs, sockets. */
export async function isSpecialTarget(path: string): Promise<boolean> {
  if (OWN_FD_PATH.test(path)) return true;
  try {
    return !(await stat(path)).isFile();
  } catch {
    return false; // does not exist (yet): a regular file will be made
  }
}

/**
 * Write a report where the user asked: `-` is stdout; our own descriptors (/dev/stdout), devices and
 * FIFOs are written in place (a rename would replace the device node with a file); anything else
 * atomically (temp file, every byte checked, fsync, rename) so the old file survives any failure.
 * Throws ReportWriteError.
 */
export async function writeReportFile(path: string, data: string | Uint8Array | Iterable<string>, stdout: NodeJS.WritableStream = process.stdout): Promise<void> {
  if (path === '-') {
    try {
      await writeChunks(stdout, typeof data === 'string' ? [data] : data instanceof Uint8Array ? [Buffer.from(data).toString('utf8')] : data);
    } catch (err) {
      throw writeError('standard output', err, true);
    }
    return;
  }
  if (await isSpecialTarget(path)) {
    let fh: Handle | undefined;
    try {
      // No O_CREAT, no O_TRUNC: a device or FIFO is used as it is; our own stdout redirected to a file
      // with >> is appended to, not truncated.
      fh = await open(path, constants.O_WRONLY | (OWN_FD_PATH.test(path) ? constants.O_APPEND : 0));
      await writeAll(fh, data);
      await fh.close();
      fh = undefined;
    } catch (err) {
      await fh?.close().catch(() => undefined);
      throw writeError(path, err, true);
    }
    return;
  }
  try {
    await writeFileAtomic(path, data);
  } catch (err) {
    throw writeError(path, err, false);
  }
}

/**
 * Write `data` to `path` atomically: a temp file in the same directory, every byte checked, fsync,
 * rename, fsync of the directory. A symlink is followed (the link stays, its target is replaced).
 * On failure the temp file is removed and `path` is as it was.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array | Iterable<string>): Promise<void> {
  const real = await realpath(path).catch(() => path);
  const dir = dirname(real);
  const tmp = join(dir, `.${basename(real)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fh: Handle | undefined;
  try {
    fh = await open(tmp, 'wx', 0o644);
    await writeAll(fh, data);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, real);
  } catch (err) {
    if (fh) await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  // The rename itself is durable only once the directory is synced; a failure here loses nothing.
  const d = await open(dir, constants.O_RDONLY).catch(() => undefined);
  await d?.sync().catch(() => undefined);
  await d?.close().catch(() => undefined);
}
