import t from 'tap';
import { renderHtml, scriptJson } from '../../src/report/html.js';
import { compareToBaseline } from '../../src/report/diff.js';
import type { Report } from '../../src/types.js';
import { fail, mesh, unknown } from '../helpers/report-fixtures.js';
import { CAUSE_CODES } from '../../src/report/common.js';
import { diagnose } from '../../src/report/diagnosis.js';

const decode = (s: string) => s.replace(/&(amp|lt|gt|quot|#39);/g, (_m, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[e]!);

/** Every heatmap cell's data attributes. */
function cells(html: string): Array<Record<string, string>> {
  const out: Array<Record<string, string>> = [];
  for (const m of html.matchAll(/<td class="c [^"]*"([^>]*)>/g)) {
    const attrs: Record<string, string> = {};
    for (const a of m[1]!.matchAll(/ data-([a-z]+)="([^"]*)"/g)) attrs[a[1]!] = decode(a[2]!);
    out.push(attrs);
  }
  return out;
}

function embedded(html: string): Report {
  const m = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html);
  return JSON.parse(m![1]!) as Report;
}

t.test('every cell with the right data attributes', async (t) => {
  const r = mesh(5, {
    fault: (c, f, to) => {
      if (c === 'ipip' && to === 'node3') return fail('ingress-blocked');
      if (c === 'bgp' && f === 'node2') return fail('egress-blocked');
      if (c === 'vxlan' && f === 'node1' && to === 'node5') return unknown();
      return undefined;
    },
  });
  const html = renderHtml(r);
  const cs = cells(html);
  const flows = cs.filter((c) => c['verdict'] !== 'none');
  t.equal(flows.length, r.results.length);
  t.equal(cs.filter((c) => c['verdict'] === 'none').length, 3 * 5, 'self cells');
  for (const res of r.results) {
    const c = flows.find((x) => x['check'] === res.check && x['from'] === res.from && x['to'] === res.to);
    t.ok(c, `${res.check} ${res.from} ${res.to}`);
    t.equal(c!['verdict'], res.verdict);
    t.equal(c!['cause'], res.cause ?? '');
  }
  t.equal(flows.filter((c) => c['cause'] === 'ingress-blocked').length, 4);
  t.match(html, /<b data-count="fail">8<\/b>/);
  t.match(html, /<b data-count="unknown">1<\/b>/);
  t.match(html, /node3&#39;s own firewall drops IP-in-IP/);
  t.same(embedded(html).results, r.results);
  t.match(html, /<td class="c k-ingress-blocked"/);
});

t.test('self-contained: no URLs, no external references', async (t) => {
  const html = renderHtml(mesh(4, { fault: (c, _f, to) => (c === 'bgp' && to === 'node1' ? fail('path-blocked') : undefined) }));
  t.notMatch(html, /https?:\/\//);
  t.notMatch(html, /\/\/[a-z0-9.-]+\.[a-z]{2,}/i, 'no protocol-relative URLs');
  t.notMatch(html, /<(link|img|iframe|object|embed)\b/i);
  t.notMatch(html, /<script[^>]+src=/i);
  t.notMatch(html, /url\(/i);
  t.notMatch(html, /@import/i);
  t.match(html, /Content-Security-Policy" content="default-src 'none'/);
  t.equal((html.match(/<script/g) ?? []).length, 2);
});

t.test('hostile node names and details are escaped', async (t) => {
  const evil = '<script>alert(1)</script>';
  const r = mesh(3, {
    name: (i) => (i === 2 ? evil : i === 3 ? `"><img src=x onerror=alert(2)>` : 'n1'),
    fault: (c, _f, to) => (c === 'bgp' && to === evil ? fail('ingress-blocked', { detail: `</script><!-- ${evil}` }) : undefined),
  });
  const html = renderHtml(r);
  t.notMatch(html, /<script>alert/i);
  t.notMatch(html.replace(/<script type="application\/json"[\s\S]*?<\/script>/, ''), /<img/, 'no markup outside the JSON');
  t.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  // the embedded JSON cannot close its element, and still parses back to the same report
  const m = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html)!;
  t.notMatch(m[1]!, /<\//);
  t.notMatch(m[1]!, /<!--/);
  t.notMatch(m[1]!, /<script/i);
  t.same(embedded(html).results, r.results);
  t.equal(scriptJson({ a: '</script>' }), '{"a":"<\\/script>"}');
  const cs = cells(html);
  t.ok(cs.some((c) => c['to'] === evil && c['cause'] === 'ingress-blocked'));
});

t.test('verify: changes section and marked cells', async (t) => {
  const baseline = mesh(4, { fault: (c, f, to) => (c === 'bgp' && f === 'node1' && to === 'node2' ? fail('path-blocked') : undefined) });
  const now = mesh(4, { fault: (c, _f, to) => (c === 'ipip' && to === 'node4' ? fail('ingress-blocked') : undefined) });
  const html = renderHtml(compareToBaseline(now, baseline, 'base.json'));
  t.match(html, /<section id="changes">/);
  t.match(html, /<b data-change-count="regressed">3<\/b>/);
  t.match(html, /<b data-change-count="fixed">1<\/b>/);
  t.match(html, /<code>base\.json<\/code>/);
  const cs = cells(html);
  t.equal(cs.filter((c) => c['change'] === 'regressed').length, 3);
  t.equal(cs.filter((c) => c['change'] === 'fixed').length, 1);
  t.match(html, /class="c k-ingress-blocked regressed"/);
  t.match(html, /class="c k-pass fixed"/);
});

t.test('incomplete banner, all-pass message, large reports', async (t) => {
  t.match(renderHtml({ ...mesh(3), incomplete: true }), /id="incomplete"/);
  t.notMatch(renderHtml(mesh(3)), /id="incomplete"/);
  t.match(renderHtml(mesh(3)), /Every flow passed/);
  const big = renderHtml(mesh(6, { fault: (c, f) => (c === 'bgp' && f === 'node1' ? fail('egress-blocked') : undefined) }), {
    maxMatrixNodes: 5,
    maxEmbeddedResults: 10,
  });
  t.equal(cells(big).length, 0);
  t.match(big, /heatmaps are left out: 6 nodes/);
  t.equal(embedded(big).results.length, 5, 'only non-passing results embedded');
  t.match(big, /Flows that did not pass \(5\)/);
});

t.test('cells carry the text matrix glyph; regressed cells are framed and marked; code does not wrap', async (t) => {
  const baseline = mesh(4);
  const now = mesh(4, {
    fault: (c, f, to) =>
      c === 'ipip' && to === 'node4' ? fail('ingress-blocked') : c === 'bgp' && f === 'node2' ? fail('egress-blocked') : c === 'vxlan' && to === 'node1' ? unknown() : undefined,
  });
  const html = renderHtml(compareToBaseline(now, baseline, 'base.json'));
  const glyph = (cls: string) => new RegExp(`<td class="c ${cls}[^"]*"[^>]*>([^<]*)</td>`).exec(html)?.[1];
  t.equal(glyph('k-ingress-blocked'), CAUSE_CODES['ingress-blocked']);
  t.equal(glyph('k-egress-blocked'), CAUSE_CODES['egress-blocked']);
  t.equal(glyph('k-unknown'), '?');
  t.equal(glyph('k-pass'), '', 'pass cells stay empty: the glyph is what marks a problem');
  t.match(html, /<i class="sw k-ingress-blocked">I<\/i>/, 'legend shows the glyph too');
  t.match(html, /\.regressed\{box-shadow:inset 0 0 0 3px/);
  t.match(html, /\.regressed::after\{/);
  t.match(html, /td\.c\{[^}]*width:16px/);
  t.match(html, /code\{[^}]*white-space:nowrap/);
  t.match(html, /--pass:#009e73/, 'Okabe–Ito palette');
});

t.test('toolbar, statement links and the did-not-pass table grouped by statement', async (t) => {
  const r = mesh(5, {
    fault: (c, f, to) =>
      c === 'ipip' && to === 'node3' ? fail('ingress-blocked', { detail: 'arrived, no socket' }) : c === 'bgp' && f === 'node2' ? fail('egress-blocked', { detail: 'never left' }) : undefined,
  });
  for (const html of [renderHtml(r), renderHtml(JSON.parse(JSON.stringify({ ...r, diagnosis: diagnose(r) })) as Report)]) {
    t.match(html, /<form id="filters"/);
    for (const f of ['check', 'node', 'cause']) t.match(html, new RegExp(`<select id="f-${f}" name="${f}">`));
    t.notMatch(html, /id="f-change"/, 'no change filter without a baseline');
    t.match(html, /<option value="node3">node3<\/option>/);
    t.match(html, /<option value="ingress-blocked">/);
    t.match(html, /<section id="node-view" hidden>/);
    const d = diagnose(r);
    t.equal((html.match(/<tbody class="grp" data-stmt="\d+">/g) ?? []).length, d.length, 'one group per statement');
    d.forEach((s, i) => {
      t.match(html, new RegExp(`id="stmt-${i}" data-stmt="${i}"`));
      t.match(html, new RegExp(`data-stmt-link="${i}">show its ${s.flows} flows`));
      t.equal(cells(html).filter((c) => (c['stmt'] ?? '').split(' ').includes(String(i))).length, s.flows, `cells of statement ${i}`);
    });
    t.equal((html.match(/>arrived, no socket</g) ?? []).length, 1, 'shared detail once');
    t.equal((html.match(/<tr class="k-row-ingress-blocked"[^>]*data-stmt=/g) ?? []).length, 4);
    t.match(html, /<table class="flows sortable grouped">/);
  }
  // a statement no fresh diagnosis matches is not linked to a guess
  const odd = renderHtml({ ...r, diagnosis: [{ text: 'from elsewhere', where: 'path', flows: 2, advice: '', examples: [] }] });
  t.notMatch(odd, /data-stmt-link="/);
  t.match(odd, /Not explained by a statement above/);
});

t.test('verify: regressed grouped by the statement that explains them, fixed by what the baseline said; links point at the right cells', async (t) => {
  const { diagnoseAgainstBaseline } = await import('../../src/report/diff.js');
  // Baseline: node5 drops ipip arriving (fixed since), node4 sends no vxlan (still so). Now: node3 drops ipip
  // arriving and node2 sends no bgp (both regressed), node4 still sends no vxlan (known).
  const baseline = mesh(5, { fault: (c, f, to) => (c === 'ipip' && to === 'node5' ? fail('ingress-blocked') : c === 'vxlan' && f === 'node4' ? fail('egress-blocked') : undefined) });
  const now = mesh(5, {
    fault: (c, f, to) =>
      c === 'ipip' && to === 'node3' ? fail('ingress-blocked', { detail: 'arrived, no socket' }) : c === 'bgp' && f === 'node2' ? fail('egress-blocked') : c === 'vxlan' && f === 'node4' ? fail('egress-blocked') : undefined,
  });
  const v = compareToBaseline(now, baseline, 'base.json');
  v.diagnosis = diagnoseAgainstBaseline(v);
  const fresh = v.diagnosis.filter((d) => !d.known);
  const known = v.diagnosis.filter((d) => d.known);
  t.ok(fresh.length >= 2 && known.length >= 1, 'new and known statements');
  const section = (html: string, id: string) => new RegExp(`<details class="changes" id="changes-${id}"[\\s\\S]*?</details>`).exec(html)?.[0] ?? '';
  for (const [label, html] of [['rendered at once', renderHtml(v)], ['read back from JSON', renderHtml(JSON.parse(JSON.stringify(v)) as Report)]] as const) {
    // Every statement, new or known, lights exactly its own flows' cells (members mapped back to the whole report).
    v.diagnosis.forEach((d, i) => {
      const lit = cells(html).filter((c) => (c['stmt'] ?? '').split(' ').includes(String(i)));
      t.equal(lit.length, d.flows, `${label}: statement ${i} (${d.known ? 'known' : 'new'}) lights its ${d.flows} cells`);
      const expect = d.known ? /vxlan/ : /ipip|bgp/;
      t.ok(lit.every((c) => expect.test(c['check'] ?? '')), `${label}: statement ${i} lights ${d.known ? 'the known vxlan' : 'new'} cells only`);
    });
    const regressed = section(html, 'regressed');
    const groups = [...regressed.matchAll(/<tbody class="grp" data-stmt="(\d+)">/g)].map((m) => Number(m[1]));
    t.same(groups.sort(), fresh.map((_d, i) => i).sort(), `${label}: one regressed group per new statement, none for known ones`);
    for (const s of groups) {
      const body = new RegExp(`<tbody class="grp" data-stmt="${s}">([\\s\\S]*?)</tbody>`).exec(regressed)![1]!;
      t.match(body, new RegExp(`<span class="gt">${s + 1}\\. `), `${label}: group ${s} titled by its statement`);
      t.match(body, new RegExp(`data-stmt-link="${s}">show in the heatmaps`));
      const rows = [...body.matchAll(/<tr class="k-row-[^"]*"([^>]*)>/g)].map((m) => m[1]!);
      t.equal(rows.length, fresh[s]!.flows, `${label}: group ${s} has its ${fresh[s]!.flows} rows`);
      t.ok(rows.every((a) => / data-change="regressed"/.test(a) && new RegExp(` data-stmt="(\\d+ )*${s}( \\d+)*"`).test(a)), `${label}: rows of group ${s} are regressed and carry it`);
    }
    t.equal((regressed.match(/>arrived, no socket</g) ?? []).length, 1, `${label}: a detail shared by a group is shown once`);
    t.notMatch(regressed, /Not explained by a statement above/, `${label}: every regressed flow is explained`);
    // Fixed flows pass now: grouped by a diagnosis of what the baseline said of them (node5 dropped ipip arriving).
    const fixed = section(html, 'fixed');
    const titles = [...fixed.matchAll(/<span class="gt">([^<]*)<\/span>/g)].map((m) => decode(m[1]!));
    t.equal(titles.length, 1, `${label}: one fixed group`);
    t.match(titles[0], /^In the baseline: .*node5/, `${label}: titled by what the baseline said`);
    t.equal((fixed.match(/<tr class="k-row-pass"[^>]*data-change="fixed"/g) ?? []).length, 4, `${label}: its 4 rows`);
    t.notMatch(fixed, /data-stmt-link=/, `${label}: not linked to a statement of this run`);
  }
  // A fixed flow whose report lacks `was` (older verify JSON) still gets a row, under a plain heading.
  const old = JSON.parse(JSON.stringify(v)) as Report;
  for (const r of old.results) delete r.was;
  const fixedOld = section(renderHtml(old), 'fixed');
  t.match(fixedOld, /<span class="gt">Fixed flows<\/span>/);
  t.equal((fixedOld.match(/data-change="fixed"/g) ?? []).length, 4);
});
