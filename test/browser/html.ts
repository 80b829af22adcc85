// Opens the HTML report of a 50-node mesh with known faults in headless Chromium: the DOM must show
// the right cells and counts, and one screenshot is kept in test/artifacts/report.png.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { renderHtml } from '../../src/report/html.js';
import { compareToBaseline } from '../../src/report/diff.js';
import { diagnose } from '../../src/report/diagnosis.js';
import { fail, mesh, unknown } from '../helpers/report-fixtures.js';
import type { FlowResult } from '../../src/types.js';

const CHROMIUM = process.env['CHROMIUM'] ?? '/usr/bin/chromium';
const TIMEOUT_MS = 60_000;

if (!existsSync(CHROMIUM)) {
  t.plan(0, `${CHROMIUM} is not installed (apt-get install chromium), so the report cannot be opened in a browser`);
} else {
  void main();
}

/** Run chromium headless with a fresh profile; resolve its stdout. Killed (whole process group) on timeout. */
async function chromium(args: string[]): Promise<string> {
  const profile = await mkdtemp(join(tmpdir(), 'nettest-chromium-'));
  try {
    return await new Promise<string>((resolvePromise, reject) => {
      const child = spawn(
        CHROMIUM,
        [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
          '--disable-extensions',
          `--user-data-dir=${profile}`,
          ...args,
        ],
        { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: profile } },
      );
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      const timer = setTimeout(() => {
        try {
          if (child.pid) process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
        reject(new Error(`chromium timed out after ${TIMEOUT_MS} ms\n${err.slice(-2000)}`));
      }, TIMEOUT_MS);
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        if (code === 0) resolvePromise(out);
        else reject(new Error(`chromium exited with ${code}\n${err.slice(-2000)}`));
      });
    });
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}

function buildReport() {
  const address = (i: number) => (i <= 25 ? `198.18.1.${i}` : `198.18.2.${i}`);
  const n = (s: string) => Number(s.replace(/\D+/g, ''));
  const faults = (extra: boolean) => (c: string, f: string, to: string): Partial<FlowResult> | undefined => {
    if (f === 'node33' || to === 'node33') return unknown({ detail: 'could not reach the responder at 198.18.2.33:5478 (ECONNREFUSED)' });
    if (c === 'ipip' && to === 'node7') return fail('ingress-blocked', { detail: 'arrived on eth0 of node7, never reached a socket' });
    if (c === 'bgp' && f === 'node12') return fail('egress-blocked', { detail: 'never left node12' });
    if (c === 'vxlan' && n(f) <= 25 && n(to) > 25 && n(to) <= 30) return fail('path-blocked', { detail: 'left, never arrived' });
    if (extra && c === 'bgp' && to === 'node40') return fail('rejected', { rejectedBy: '198.18.2.40', detail: 'reset by 198.18.2.40' });
    if (!extra && c === 'bgp' && to === 'node41') return fail('return-blocked', { detail: 'witnessed, no answer' });
    return undefined;
  };
  const baseline = mesh(50, { address, fault: faults(false) });
  const now = mesh(50, { address, fault: faults(true) });
  const report = compareToBaseline(now, baseline, 'baseline.json');
  report.command = 'verify';
  report.diagnosis = diagnose(report);
  return report;
}

/** Attributes of every heatmap cell in a serialized DOM. */
function cellsOf(dom: string) {
  const dec = (s: string) => s.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  const list: Array<Record<string, string>> = [];
  for (const m of dom.matchAll(/<td class="c ([^"]*)"([^>]*)>/g)) {
    const a: Record<string, string> = { class: m[1]! };
    for (const x of m[2]!.matchAll(/ data-([a-z-]+)="([^"]*)"/g)) a[x[1]!] = dec(x[2]!);
    list.push(a);
  }
  return list;
}

async function main() {
  const report = buildReport();
  const work = await mkdtemp(join(tmpdir(), 'nettest-html-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  const file = join(work, 'report.html');
  await writeFile(file, renderHtml(report));
  const url = pathToFileURL(file).href;

  t.test('the DOM shows the right cells and counts', async (t) => {
    const dom = await chromium(['--dump-dom', url]);
    t.match(dom, /<table class="grid" data-check="bgp">/);
    const cells = cellsOf(dom).filter((c) => c['verdict'] !== 'none');
    t.equal(cells.length, report.results.length, 'one cell per flow');
    const cell = (check: string, from: string, to: string) => cells.find((c) => c['check'] === check && c['from'] === from && c['to'] === to);
    t.match(cell('ipip', 'node3', 'node7'), { verdict: 'fail', cause: 'ingress-blocked', class: /k-ingress-blocked/ });
    t.match(cell('bgp', 'node12', 'node1'), { verdict: 'fail', cause: 'egress-blocked' });
    t.match(cell('vxlan', 'node1', 'node26'), { verdict: 'fail', cause: 'path-blocked' });
    t.match(cell('vxlan', 'node26', 'node1'), { verdict: 'pass', cause: '' });
    t.match(cell('bgp', 'node1', 'node33'), { verdict: 'unknown', cause: 'responder-unreachable' });
    t.match(cell('bgp', 'node2', 'node40'), { verdict: 'fail', cause: 'rejected', change: 'regressed', class: /regressed/ });
    t.match(cell('bgp', 'node2', 'node41'), { verdict: 'pass', change: 'fixed', class: /fixed/ });
    const count = (v: string, cause?: string) => cells.filter((c) => c['verdict'] === v && (cause === undefined || c['cause'] === cause)).length;
    t.equal(count('fail', 'ingress-blocked'), 48, 'ipip to node7 from every node but node33');
    t.equal(count('fail', 'path-blocked'), 25 * 5 - 0, 'vxlan 198.18.1.0/24 -> node26..30');
    t.equal(count('unknown'), 3 * 2 * 49);
    const s = report.results.reduce((a, r) => ((a[r.verdict] = (a[r.verdict] ?? 0) + 1), a), {} as Record<string, number>);
    t.match(dom, new RegExp(`<b data-count="fail">${s['fail']}</b>`));
    t.match(dom, new RegExp(`<b data-count="unknown">${s['unknown']}</b>`));
    t.match(dom, new RegExp(`<b data-count="total">${report.results.length}</b>`));
    t.match(dom, /<b data-change-count="regressed">47<\/b>/, "bgp to node40 from all but node12 (egress) and node33");
    t.match(dom, /node7's own firewall drops IP-in-IP/);
    // the script ran: titles became data-tip attributes
    t.match(dom, /<td class="c k-pass[^>]* data-tip="/);
  });

  t.test('screenshot', async (t) => {
    const dir = resolve('test/artifacts');
    await mkdir(dir, { recursive: true });
    const png = join(dir, 'report.png');
    await chromium(['--hide-scrollbars', `--screenshot=${png}`, '--window-size=1600,1200', url]);
    t.ok((await stat(png)).size > 10_000, 'screenshot written');
  });
}
