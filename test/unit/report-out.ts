// Writing reports where the disk is full, to devices and FIFOs, and to stdout on a full device: a
// complete report or the old file untouched, device nodes never replaced, a clear message and exit 3,
// never a stack trace. Real file systems and devices: a tiny tmpfs mounted in a temp dir, device nodes
// made with mknod in a temp dir (never the machine's own /dev/null or /dev/full).
import t, { type Test } from 'tap';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, openSync, closeSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { renderJson } from '../../src/report/json.js';
import { isSpecialTarget, ReportWriteError, writeChunks, writeReportFile } from '../../src/report/write.js';
import { fail, mesh } from '../helpers/report-fixtures.js';

const exec = promisify(execFile);
const BIN = fileURLToPath(new URL('../../bin/calico-nettest', import.meta.url));
const root = process.getuid?.() === 0 ? false : 'needs root (mounts a tmpfs, makes device nodes with mknod)';

/** A fresh temp dir of the test's own, removed in teardown (after anything mounted in it is unmounted). */
async function tempDir(t: Test, mounted: string[] = []): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cnt-out-'));
  t.teardown(async () => {
    for (const m of mounted) await exec('umount', [m]).catch(() => exec('umount', ['-l', m]));
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

/** A tmpfs of `kb` KiB mounted in a fresh temp dir; unmounted and removed in teardown. */
async function tinyFs(t: Test, kb: number): Promise<string> {
  const mounted: string[] = [];
  const mnt = join(await tempDir(t, mounted), 'mnt');
  await mkdir(mnt);
  await exec('mount', ['-t', 'tmpfs', '-o', `size=${kb}k,mode=0755`, 'cnt-test-tmpfs', mnt]);
  mounted.push(mnt);
  return mnt;
}

/** A character device node (1,3 = null; 1,7 = full) in a temp dir of the test's own. */
async function deviceNode(t: Test, name: string, minor: 3 | 7): Promise<string> {
  const path = join(await tempDir(t), name);
  await exec('mknod', ['-m', '0666', path, 'c', '1', String(minor)]);
  return path;
}

function cli(args: string[], stdio: { stdoutFd?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', stdio.stdoutFd ?? 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    c.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const kill = setTimeout(() => c.kill('SIGKILL'), 60_000);
    c.on('close', (code) => {
      clearTimeout(kill);
      resolve({ code, stdout, stderr });
    });
  });
}

const big = (kb: number) => {
  const piece = `${'x'.repeat(1023)}\n`;
  return Array.from({ length: kb }, () => piece);
};
const noStack = /\n\s+at .*[jt]s:\d+/;

t.test('a full file system: the old report stays as it was, no temp file left, ENOSPC said', { skip: root }, async (t) => {
  const mnt = await tinyFs(t, 64);
  const out = join(mnt, 'report.json');
  await writeFile(out, 'the last good report\n');
  const err = await writeReportFile(out, big(200)).catch((e: unknown) => e);
  t.type(err, ReportWriteError);
  t.match(err, { code: 'EWRITE', errno: 'ENOSPC', exitCode: 3, message: /cannot write the report to .*report\.json: no space left on the device \(ENOSPC\); nothing was replaced/ });
  t.equal(await readFile(out, 'utf8'), 'the last good report\n', 'old report untouched');
  t.same(await readdir(mnt), ['report.json'], 'temp file removed');
  // What fits is written completely.
  await writeReportFile(out, big(20));
  t.equal((await stat(out)).size, 20 * 1024, 'a report that fits is complete');
});

t.test('device nodes are written in place, never replaced: full (1,7) fails, null (1,3) works', { skip: root }, async (t) => {
  const full = await deviceNode(t, 'full', 7);
  const err = await writeReportFile(full, 'report\n').catch((e: unknown) => e);
  t.match(err, { code: 'EWRITE', errno: 'ENOSPC', message: /no space left on the device.*incomplete/ });
  const st = await lstat(full);
  t.ok(st.isCharacterDevice(), 'still a character device');
  t.equal(st.rdev, (1 << 8) | 7, 'still 1,7');
  const nul = await deviceNode(t, 'null', 3);
  await writeReportFile(nul, big(64));
  t.ok((await lstat(nul)).isCharacterDevice(), 'null stays a device');
  t.same((await readdir(join(nul, '..'))).sort(), ['null'], 'no temp file beside it');
});

t.test('a FIFO is written in place; - and /dev/stdout are special; a symlink keeps pointing', async (t) => {
  const dir = t.testdir({ 'target.json': 'old' });
  const fifo = join(dir, 'fifo');
  await exec('mkfifo', [fifo]);
  const got = new Promise<string>((resolve) => {
    let s = '';
    createReadStream(fifo)
      .on('data', (d) => (s += d.toString()))
      .on('end', () => resolve(s));
  });
  await writeReportFile(fifo, ['one ', 'two\n']);
  t.equal(await got, 'one two\n');
  t.ok((await lstat(fifo)).isFIFO(), 'still a FIFO');
  for (const p of ['/dev/stdout', '/dev/stderr', '/dev/fd/1', '/proc/self/fd/1', `/proc/${process.pid}/fd/2`]) t.ok(await isSpecialTarget(p), p);
  t.notOk(await isSpecialTarget(join(dir, 'target.json')));
  t.notOk(await isSpecialTarget(join(dir, 'new.json')));
  const sink = new PassThrough();
  let text = '';
  sink.on('data', (d: Buffer) => (text += d.toString()));
  await writeReportFile('-', ['a', 'b'], sink);
  t.equal(text, 'ab', '- writes to stdout');
  await symlink('target.json', join(dir, 'link.json'));
  await writeReportFile(join(dir, 'link.json'), 'new');
  t.ok((await lstat(join(dir, 'link.json'))).isSymbolicLink(), 'the symlink is kept');
  t.equal(await readFile(join(dir, 'target.json'), 'utf8'), 'new', 'its target replaced');
});

t.test('writeChunks rejects on a stream error instead of waiting for a drain', async (t) => {
  const s = new PassThrough({ highWaterMark: 1 });
  setImmediate(() => s.destroy(Object.assign(new Error('no space'), { code: 'ENOSPC' })));
  await t.rejects(writeChunks(s, ['aaaa', 'bbbb', 'cccc']), { code: 'ENOSPC' });
});

t.test('unwritable places: a missing directory, a read-only directory, a directory', async (t) => {
  const dir = t.testdir({ sub: {} });
  await t.rejects(writeReportFile(join(dir, 'missing', 'r.json'), 'x'), { code: 'EWRITE', errno: 'ENOENT', message: /no such directory/ });
  await t.rejects(writeReportFile(join(dir, 'sub'), 'x'), { code: 'EWRITE' });
  if (process.getuid?.() !== 0) {
    await chmod(join(dir, 'sub'), 0o500);
    await t.rejects(writeReportFile(join(dir, 'sub', 'r.json'), 'x'), { code: 'EWRITE', errno: 'EACCES' });
  }
});

t.test('CLI: report --out to a full disk or a full device exits 3, keeps the old file and the device', { skip: root }, async (t) => {
  const dir = t.testdir({});
  const saved = join(dir, 'saved.json');
  // Large enough not to fit in 64 KiB.
  await writeFile(saved, renderJson(mesh(12, { fault: (c, _f, to) => (c === 'ipip' && to === 'node2' ? fail('ingress-blocked') : undefined) })));
  const mnt = await tinyFs(t, 64);
  const out = join(mnt, 'out.html');
  await writeFile(out, 'old html');
  const r = await cli(['report', saved, '--format', 'html', '--out', out]);
  t.equal(r.code, 3, `exit 3\n${r.stderr}`);
  t.match(r.stderr, /cannot write the report to .*out\.html: no space left on the device \(ENOSPC\)/);
  t.notMatch(r.stderr, noStack, 'no stack trace');
  t.equal(await readFile(out, 'utf8'), 'old html');
  const full = await deviceNode(t, 'full', 7);
  const d = await cli(['report', saved, '--format', 'json', '--out', full]);
  t.equal(d.code, 3);
  t.ok((await lstat(full)).isCharacterDevice(), 'the device node is not replaced by a file');
  const nul = await deviceNode(t, 'null', 3);
  t.equal((await cli(['report', saved, '--format', 'json', '--out', nul])).code, 1, 'to a null device: written, exit 1 (the report has failures)');
  const dash = await cli(['report', saved, '--format', 'json', '--out', '-']);
  t.equal(JSON.parse(dash.stdout).schemaVersion, 1, '--out - is stdout');
});

t.test('CLI: stdout on a full device: a clear message, exit 3, no stack trace', { skip: root }, async (t) => {
  const dir = t.testdir({});
  const saved = join(dir, 'saved.json');
  await writeFile(saved, renderJson(mesh(6)));
  const full = await deviceNode(t, 'full', 7);
  for (const format of ['json', 'table']) {
    const fd = openSync(full, 'w');
    const r = await cli(['report', saved, '--format', format], { stdoutFd: fd }).finally(() => closeSync(fd));
    t.equal(r.code, 3, `${format}: exit 3\n${r.stderr}`);
    t.match(r.stderr, /cannot write to standard output: no space left on the device \(ENOSPC\)/);
    t.notMatch(r.stderr, noStack, 'no stack trace');
  }
});

t.test('CLI: mesh --out on a full disk still prints the table, says why, exits 3, keeps the old file', { skip: root }, async (t) => {
  // 127.0.0.1 control addresses: nothing listens there; no probe traffic is ever sent.
  const dir = t.testdir({ 'secret': `${randomBytes(32).toString('base64')}\n` });
  await chmod(join(dir, 'secret'), 0o600);
  const nodes = Array.from({ length: 30 }, (_, i) => `  - name: node${i + 1}\n    address: 198.18.${i + 1}.2\n    control: 127.0.0.1:1\n`).join('');
  await writeFile(join(dir, 'nodes.yaml'), `nodes:\n${nodes}`);
  const mnt = await tinyFs(t, 32);
  const out = join(mnt, 'mesh.json');
  await writeFile(out, 'last good');
  const r = await cli(['mesh', '-i', join(dir, 'nodes.yaml'), '-s', join(dir, 'secret'), '--checks', 'bgp,ipip,vxlan', '--out', out]);
  t.equal(r.code, 3);
  t.match(r.stdout, /node1/, 'the table is printed');
  t.match(r.stderr, /cannot write the report to .*mesh\.json: no space left on the device/);
  t.notMatch(r.stderr, /report written/);
  t.equal(await readFile(out, 'utf8'), 'last good');
  const q = await cli(['mesh', '-i', join(dir, 'nodes.yaml'), '-s', join(dir, 'secret'), '--checks', 'bgp', '--format', 'json', '--out', out]);
  t.equal(q.code, 3);
  t.match(q.stderr, /summary: 0 passed, 0 failed, 870 unknown \(870 flows\)/, 'a summary line when nothing else reaches stdout');
});
