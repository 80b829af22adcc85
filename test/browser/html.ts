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
import { compareToBaseline, diagnoseAgainstBaseline } from '../../src/report/diff.js';
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
  report.diagnosis = diagnoseAgainstBaseline(report); // as verify writes it: new failures first, then known ones
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

  /** Rows of a flows table in a serialized DOM: their data attributes and whether they are hidden. */
  const rowsOf = (html: string) =>
    [...html.matchAll(/<tr class="k-row-[^"]*"([^>]*)>/g)].map((m) => {
      const a: Record<string, string> = {};
      for (const x of m[1]!.matchAll(/ data-([a-z-]+)="([^"]*)"/g)) a[x[1]!] = x[2]!;
      return { a, hidden: / hidden(=""|\s|$)/.test(m[1]!) };
    });

  t.test('filter by check and cause from the URL hash', async (t) => {
    const dom = await chromium(['--dump-dom', `${url}#check=ipip&cause=ingress-blocked`]);
    const cells = cellsOf(dom).filter((c) => c['verdict'] !== 'none');
    const lit = cells.filter((c) => !/\bdim\b/.test(c['class']!));
    t.equal(lit.length, 48, 'only ipip ingress-blocked cells stay bright');
    t.ok(lit.every((c) => c['check'] === 'ipip' && c['to'] === 'node7'));
    t.match(dom, /<figure class="matrix" data-check="bgp" hidden/, 'other checks are hidden');
    t.notMatch(dom, /<figure class="matrix" data-check="ipip" hidden/);
    t.match(dom, /<select id="f-check"[^>]*>/);
    t.match(dom, /id="f-status"[^>]*data-shown="48"|data-shown="48"[^>]*id="f-status"/);
    const rows = rowsOf(dom).filter((r) => !r.hidden);
    t.ok(rows.length > 0 && rows.every((r) => r.a['check'] === 'ipip' && r.a['cause'] === 'ingress-blocked'), 'the tables show only matching flows');
  });

  t.test('search narrows the cells and tables', async (t) => {
    const dom = await chromium(['--dump-dom', `${url}#q=never%20left%20node12`]);
    const lit = cellsOf(dom).filter((c) => c['verdict'] !== 'none' && !/\bdim\b/.test(c['class']!));
    t.equal(lit.length, 48);
    t.ok(lit.every((c) => c['check'] === 'bgp' && c['from'] === 'node12'));
  });

  t.test('per-node view: everything from and to one node', async (t) => {
    const dom = await chromium(['--dump-dom', `${url}#node=node7`]);
    const lit = cellsOf(dom).filter((c) => c['verdict'] !== 'none' && !/\bdim\b/.test(c['class']!));
    t.equal(lit.length, 3 * 2 * 49, 'every check, both directions, 49 peers');
    t.ok(lit.every((c) => c['from'] === 'node7' || c['to'] === 'node7'));
    const view = /<section id="node-view">([\s\S]*?)<\/section>/.exec(dom);
    t.ok(view, 'the node view is shown');
    t.match(view![1]!, /<span id="node-view-name">node7<\/span>/);
    t.match(view![1]!, /sends 147 flows \(\d+ pass\), receives 147 \(\d+ pass\)/);
    const trs = [...view![1]!.matchAll(/<tr data-check="([^"]*)" data-from="([^"]*)" data-to="([^"]*)"/g)];
    t.equal(trs.length, 3 * 2 * 49, 'one row per flow from or to node7');
    t.ok(trs.some((m) => m[1] === 'ipip' && m[3] === 'node7'));
    t.match(dom, /<th class="row node-hl" title="node7">/, 'its row head is marked');
  });

  t.test('a diagnosis statement lights its cells and groups its flows', async (t) => {
    const i = report.diagnosis!.findIndex((d) => /node7's own firewall drops IP-in-IP/.test(d.text));
    t.ok(i >= 0);
    const dom = await chromium(['--dump-dom', `${url}#stmt=${i}`]);
    const cells = cellsOf(dom).filter((c) => c['verdict'] !== 'none');
    const lit = cells.filter((c) => /\blit\b/.test(c['class']!));
    t.equal(lit.length, 48);
    t.ok(lit.every((c) => c['check'] === 'ipip' && c['to'] === 'node7' && c['cause'] === 'ingress-blocked'));
    t.equal(cells.filter((c) => !/\bdim\b/.test(c['class']!)).length, 48, 'the rest is dimmed');
    t.match(dom, new RegExp(`<li class="stmt [^"]*active"[^>]*id="stmt-${i}"|<li class="stmt [^"]*active" id="stmt-${i}"`));
    t.match(dom, new RegExp(`<a class="show" href="#stmt=${i}" data-stmt-link="${i}">show its 48 flows`));
    // the failing table: one group per statement, the shared detail once
    const grp = new RegExp(`<tbody class="grp" data-stmt="${i}">([\\s\\S]*?)</tbody>`).exec(dom);
    t.ok(grp, 'a group for the statement');
    t.equal((grp![1]!.match(/<tr class="k-row-/g) ?? []).length, 48);
    t.equal((grp![1]!.match(/arrived on eth0 of node7, never reached a socket/g) ?? []).length, 1, 'its detail once, not 48 times');
    const failing = /<section id="failing">[\s\S]*?<\/section>/.exec(dom)![0];
    t.equal((failing.match(/<tbody class="grp"/g) ?? []).length, report.diagnosis!.length, 'as many groups as statements (all flows explained)');
  });

  t.test('verify: the regressed table grouped by statement and lit by it, the fixed one by what the baseline said', async (t) => {
    const i = report.diagnosis!.findIndex((d) => !d.known && /node40/.test(d.text));
    t.ok(i >= 0, 'a new statement about node40');
    const dom = await chromium(['--dump-dom', `${url}#stmt=${i}`]);
    const regressed = /<details class="changes" id="changes-regressed"[^>]*>([\s\S]*?)<\/details>/.exec(dom)?.[1] ?? '';
    const groups = [...regressed.matchAll(/<tbody class="grp" data-stmt="(\d+)"( hidden(?:="")?)?>([\s\S]*?)<\/tbody>/g)];
    t.same(groups.map((g) => Number(g[1])), [i], 'every regressed flow under the one statement that explains it');
    t.notOk(groups[0]?.[2], 'its group is shown');
    t.match(groups[0]?.[3], new RegExp(`<span class="gt">${i + 1}\\. [^<]*node40`), 'titled by the statement');
    const rows = rowsOf(groups[0]?.[3] ?? '');
    t.equal(rows.length, 47);
    t.ok(rows.every((r) => !r.hidden && r.a['change'] === 'regressed' && r.a['to'] === 'node40'), 'its 47 rows, shown');
    t.equal((groups[0]?.[3]?.match(/reset by 198\.18\.2\.40/g) ?? []).length, 1, 'their shared detail once');
    const fixed = /<details class="changes" id="changes-fixed"[^>]*>([\s\S]*?)<\/details>/.exec(dom)?.[1] ?? '';
    t.ok(rowsOf(fixed).every((r) => r.hidden), 'a statement of this run hides the fixed rows (none is its)');
    const lit = cellsOf(dom).filter((c) => /\blit\b/.test(c['class']!));
    t.equal(lit.length, 47, 'and lights the 47 regressed cells');
    t.ok(lit.every((c) => c['change'] === 'regressed'));
    // change=fixed: the fixed table, grouped by the baseline's node41 statement, is what stays.
    const byChange = await chromium(['--dump-dom', `${url}#change=fixed`]);
    const fixedNow = /<details class="changes" id="changes-fixed"[^>]*>([\s\S]*?)<\/details>/.exec(byChange)?.[1] ?? '';
    const titles = [...fixedNow.matchAll(/<span class="gt">([^<]*)<\/span>/g)].map((m) => m[1]!);
    t.equal(titles.length, 1);
    t.match(titles[0], /^In the baseline: .*node41/, 'titled by what the baseline said');
    const fixedRows = rowsOf(fixedNow);
    t.equal(fixedRows.length, 47);
    t.ok(fixedRows.every((r) => !r.hidden && r.a['change'] === 'fixed' && r.a['to'] === 'node41'), 'its 47 rows, shown');
    t.ok(rowsOf(/<details class="changes" id="changes-regressed"[^>]*>([\s\S]*?)<\/details>/.exec(byChange)?.[1] ?? '').every((r) => r.hidden), 'regressed rows hidden');
  });

  t.test('sortable: the failing table sorted by flow, descending', async (t) => {
    const dom = await chromium(['--dump-dom', `${url}#sort=1desc`]);
    const grp = /<tbody class="grp" data-stmt="0">([\s\S]*?)<\/tbody>/.exec(dom)![1]!;
    const flows = [...grp.matchAll(/<tr class="k-row-[^>]*><td>[\s\S]*?<\/td><td>([^<]*)<\/td>/g)].map((m) => m[1]!);
    t.ok(flows.length > 2);
    const sorted = [...flows].sort((a, b) => new Intl.Collator(undefined, { numeric: true }).compare(b, a));
    t.same(flows, sorted);
    t.match(dom, /aria-sort="descending"/);
  });

  t.test('screenshot', async (t) => {
    const dir = resolve('test/artifacts');
    await mkdir(dir, { recursive: true });
    const png = join(dir, 'report.png');
    await chromium(['--hide-scrollbars', `--screenshot=${png}`, '--window-size=1600,1200', url]);
    t.ok((await stat(png)).size > 10_000, 'screenshot written');
    const node = join(dir, 'report-node7.png');
    await chromium(['--hide-scrollbars', `--screenshot=${node}`, '--window-size=1600,1800', `${url}#node=node7&check=ipip`]);
    t.ok((await stat(node)).size > 10_000, 'per-node screenshot written');
  });
}
