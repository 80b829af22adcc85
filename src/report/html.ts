// One self-contained HTML page (no external assets, no network): summary, diagnosis, changes and a
// heatmap per check. Cells are rendered here so the page reads without JavaScript; a small inline
// script adds the hover tooltip and the pinned detail panel from the embedded JSON report.
import type { CheckId, FlowResult, Report } from '../types.js';
import { CAUSE_CODES, causeCode, checksOf, flowKey, formatRtt, matrixAxes, nodeNamesOf, plural, portOf, summarize, trafficName } from './common.js';
import { diagnose, membersOf } from './diagnosis.js';
import { diagnoseAgainstBaseline } from './diff.js';
import type { DiagnosisStatement } from '../types.js';
import { pathMtuBelowHost, pathMtuLine } from './path-mtu.js';
import { FINDINGS_CSS, findingsSection } from './findings.js';

export interface HtmlOptions {
  /** Above this many nodes the heatmaps are replaced by the list of failing flows. */
  maxMatrixNodes?: number;
  /** Above this many results only the non-passing ones are embedded as JSON. */
  maxEmbeddedResults?: number;
}

/** Cell classes and legend labels; colours live in the stylesheet. */
export const HTML_LEGEND: ReadonlyArray<[string, string]> = [
  ['pass', 'pass'],
  ['egress-blocked', "egress-blocked: sender's own firewall"],
  ['path-blocked', 'path-blocked: between the nodes'],
  ['ingress-blocked', "ingress-blocked: receiver's own firewall"],
  ['blocked', 'blocked: path or receiver (no capture)'],
  ['rejected', 'rejected (RST / ICMP)'],
  ['return-blocked', 'return-blocked: answer lost'],
  ['no-route', 'no route'],
  ['unknown', 'unknown'],
  ['none', 'self / not planned'],
];

export function escapeHtml(s: unknown): string {
  return String(s ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/**
 * JSON safe inside a <script> element: no "</" (would end the element), and no "<!--" or "<script"
 * (they switch the HTML parser into the escaped states where "</script>" is not the end).
 */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/<\//g, '<\\/')
    .replace(/<(!--|script)/gi, '\\u003c$1')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** `command` in already-escaped advice text becomes <code>command</code>. */
function codeSpans(escaped: string): string {
  return escaped.replace(/`([^`]+)`/g, '<code>$1</code>');
}

function cellKind(r: FlowResult): string {
  if (r.verdict === 'pass') return 'pass';
  if (r.verdict === 'unknown') return 'unknown';
  const known = ['egress-blocked', 'path-blocked', 'ingress-blocked', 'blocked', 'rejected', 'return-blocked', 'no-route'];
  return r.cause && known.includes(r.cause) ? r.cause : 'fail';
}

export function renderHtml(report: Report, opts: HtmlOptions = {}): string {
  const maxNodes = opts.maxMatrixNodes ?? 200;
  const maxEmbedded = opts.maxEmbeddedResults ?? 200_000;
  const names = nodeNamesOf(report);
  const checks = checksOf(report);
  const sum = summarize(report.results);
  const total = report.results.length;
  const diagnosis = report.diagnosis ?? diagnose(report);
  const hasChanges = report.results.some((r) => r.change !== undefined);
  const e = escapeHtml;
  const members = statementMembers(report, diagnosis);
  const stmtsOf = new Map<FlowResult, number[]>();
  members.forEach((idx, s) => {
    for (const i of idx ?? []) {
      const r = report.results[i];
      if (!r) continue;
      const list = stmtsOf.get(r);
      if (list) list.push(s);
      else stmtsOf.set(r, [s]);
    }
  });

  const started = Date.parse(report.startedAt);
  const finished = Date.parse(report.finishedAt);
  const took = Number.isFinite(started) && Number.isFinite(finished) ? `${((finished - started) / 1000).toFixed(1)} s` : '';
  const title = `calico-nettest ${report.command ?? 'report'}: ${sum.fail + sum.unknown === 0 ? 'all flows pass' : `${sum.fail} fail, ${sum.unknown} unknown`}`;

  const parts: string[] = [];
  parts.push(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(title)}</title>
<style>${PAGE_CSS}${FINDINGS_CSS}</style></head>
<body>
<header>
<h1>calico-nettest <span class="cmd">${e(report.command ?? 'report')}</span></h1>
<div class="meta">${e(plural(report.nodes.length, 'node'))} · checks ${e(checks.join(', ') || 'none')} · started ${e(report.startedAt)}${took ? ` · took ${e(took)}` : ''} · calico-nettest ${e(report.tool?.version ?? '')}</div>
<div class="counts" id="counts">
<span class="count total"><b data-count="total">${total}</b> flows</span>
<span class="count pass"><b data-count="pass">${sum.pass}</b> pass</span>
<span class="count fail"><b data-count="fail">${sum.fail}</b> fail</span>
<span class="count unknown"><b data-count="unknown">${sum.unknown}</b> unknown</span>
</div>
</header>`);

  parts.push(toolbar(report, names, checks));
  parts.push(`<section id="node-view" hidden><h2>Node <span id="node-view-name"></span> <small>every flow from and to it</small></h2><p class="meta" id="node-view-summary"></p>` +
    `<div class="scroll-y"><table class="flows sortable" id="node-view-table"><thead><tr><th>check</th><th>direction</th><th>peer</th><th>verdict</th><th>cause</th><th>detail</th></tr></thead><tbody></tbody></table></div></section>`);

  if (report.incomplete) {
    parts.push(`<div class="banner" id="incomplete"><b>Incomplete run.</b> It was interrupted before every flow finished: the results cover only what finished.</div>`);
  }

  if (hasChanges) parts.push(changesSection(report, diagnosis, stmtsOf));
  if (report.findings) parts.push(findingsSection(report.findings));

  parts.push(`<section id="diagnosis"><h2>Diagnosis</h2>`);
  if (diagnosis.length === 0) {
    parts.push(total === 0 ? `<p class="ok">No flows were run.</p>` : `<p class="ok">Every flow passed: the network carries everything these checks need, both ways.</p>`);
  } else {
    parts.push('<ol>');
    diagnosis.forEach((d, i) => {
      const ex = d.examples.map((x) => `${x.check} ${x.from} → ${x.to}`).join(', ');
      const linked = members[i] !== undefined;
      parts.push(
        `<li class="stmt where-${e(d.where)}" id="stmt-${i}" data-stmt="${i}"><div class="text">${e(d.text)}</div><div class="advice">${codeSpans(e(d.advice))}</div>` +
          (ex ? `<div class="ex">e.g. ${e(ex)}</div>` : '') +
          (linked ? `<a class="show" href="#stmt=${i}" data-stmt-link="${i}">show its ${e(plural(members[i]!.length, 'flow'))} in the heatmaps and tables</a>` : '') +
          `</li>`,
      );
    });
    parts.push('</ol>');
  }
  parts.push('</section>');

  parts.push(`<section id="matrices"><h2>Flows by check <small>rows: sender · columns: receiver</small></h2>`);
  parts.push(legend(report));
  if (names.length > maxNodes) {
    parts.push(`<p class="note">The heatmaps are left out: ${names.length} nodes is more than ${maxNodes}. The flows that did not pass are listed below.</p>`);
  } else {
    parts.push('<div class="grids">');
    const byCheck = new Map<CheckId, Map<string, FlowResult>>();
    for (const r of report.results) {
      let m = byCheck.get(r.check);
      if (!m) byCheck.set(r.check, (m = new Map()));
      m.set(flowKey(r), r);
    }
    for (const check of checks) {
      const flows = byCheck.get(check);
      if (flows) parts.push(matrix(report, check, flows, names, stmtsOf));
    }
    parts.push('</div>');
  }
  parts.push('</section>');

  parts.push(failingSection(report, diagnosis, stmtsOf));

  const embedded =
    total > maxEmbedded
      ? { ...report, results: report.results.filter((r) => r.verdict !== 'pass' || (r.change !== undefined && r.change !== 'unchanged')), resultsOmitted: 'passing results left out of the page; see the JSON report' }
      : report;
  parts.push(`<aside id="panel" hidden><button type="button" id="panel-close" aria-label="close">×</button><h3>Flow</h3><dl id="panel-body"></dl></aside>
<div id="tip" hidden></div>
<script type="application/json" id="report-data">${scriptJson({ ...embedded, diagnosis })}</script>
<script>${SCRIPT}</script>
</body></html>
`);
  return parts.join('\n');
}

function legend(report: Report): string {
  const counts = new Map<string, number>();
  for (const r of report.results) {
    const k = cellKind(r);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  const items = HTML_LEGEND.filter(([k]) => k === 'pass' || k === 'none' || counts.has(k)).map(
    ([k, label]) =>
      `<span class="lg"><i class="sw k-${k}">${escapeHtml(legendGlyph(k))}</i>${escapeHtml(label)}${k !== 'none' ? ` <b>${counts.get(k) ?? 0}</b>` : ''}</span>`,
  );
  if (counts.has('fail')) items.push(`<span class="lg"><i class="sw k-fail">✗</i>fail (other) <b>${counts.get('fail')}</b></span>`);
  if (report.results.some((r) => r.change === 'regressed')) items.push(`<span class="lg"><i class="sw k-none regressed"></i>regressed (thick frame, corner mark)</span>`);
  if (report.results.some((r) => r.change === 'fixed')) items.push(`<span class="lg"><i class="sw k-pass fixed"></i>fixed (dot)</span>`);
  return `<div class="legend">${items.join('')}</div>`;
}

/** The glyph a legend swatch shows: the text matrix's cause code; none for pass and self. */
function legendGlyph(kind: string): string {
  if (kind === 'pass' || kind === 'none') return '';
  if (kind === 'unknown') return '?';
  return (CAUSE_CODES as Record<string, string | undefined>)[kind] ?? '✗';
}

function tipText(r: FlowResult): string {
  const lines = [`${r.check} ${r.from} → ${r.to}: ${r.verdict}${r.cause ? ` (${r.cause})` : ''}`];
  if (r.change && r.change !== 'unchanged') lines.push(`change: ${r.change}`);
  if (r.detail) lines.push(r.detail);
  if (r.rttMs !== null && r.rttMs !== undefined) lines.push(`RTT ${formatRtt(r.rttMs)}`);
  if (typeof r.pathMtu === 'number') lines.push(`path MTU ${r.pathMtu} (host ${r.hostMtu ?? '?'})`);
  return lines.join('\n');
}

function matrix(report: Report, check: CheckId, flows: Map<string, FlowResult>, names: string[], stmtsOf: Map<FlowResult, number[]>): string {
  const e = escapeHtml;
  const { rows, cols, sample } = matrixAxes(flows.values(), names);
  const s = summarize([...flows.values()]);
  const bad = s.fail + s.unknown;
  const out: string[] = [];
  out.push(
    `<figure class="matrix" data-check="${e(check)}"><figcaption><b>${e(check)}</b> <span class="traffic">${e(trafficName(check, portOf(check, report.ports, sample)))}</span> ` +
      `<span class="${bad ? 'bad' : 'good'}">${s.pass}/${flows.size} pass${s.fail ? `, ${s.fail} fail` : ''}${s.unknown ? `, ${s.unknown} unknown` : ''}</span></figcaption>`,
  );
  out.push(`<div class="scroll"><table class="grid" data-check="${e(check)}"><thead><tr><th class="corner">from \\ to</th>`);
  for (const to of cols) out.push(`<th class="col" title="${e(to)}"><span>${e(to)}</span></th>`);
  out.push('</tr></thead><tbody>');
  for (const from of rows) {
    const cells: string[] = [`<tr><th class="row" title="${e(from)}">${e(from)}</th>`];
    for (const to of cols) {
      const r = flows.get(flowKey({ check, from, to }));
      if (!r) {
        cells.push(`<td class="c k-none" data-check="${e(check)}" data-from="${e(from)}" data-to="${e(to)}" data-verdict="none" data-cause=""></td>`);
        continue;
      }
      const change = r.change && r.change !== 'unchanged' ? ` ${r.change}` : '';
      cells.push(
        `<td class="c k-${cellKind(r)}${change}" data-check="${e(check)}" data-from="${e(from)}" data-to="${e(to)}" data-verdict="${e(r.verdict)}" data-cause="${e(r.cause ?? '')}"` +
          `${r.change ? ` data-change="${e(r.change)}"` : ''}${stmtAttr(stmtsOf.get(r))} title="${e(tipText(r))}">${r.verdict === 'pass' ? '' : e(causeCode(r))}</td>`,
      );
    }
    cells.push('</tr>');
    out.push(cells.join(''));
  }
  out.push('</tbody></table></div>');
  const low = pathMtuBelowHost(flows.values());
  if (low.length > 0) out.push(`<p class="path-mtu">${e(pathMtuLine(low))}</p>`);
  out.push('</figure>');
  return out.join('\n');
}

/** ` data-stmt="0 3"`: the diagnosis statements that explain a flow (a CSS ~= list). */
function stmtAttr(stmts: readonly number[] | undefined): string {
  return stmts && stmts.length ? ` data-stmt="${stmts.join(' ')}"` : '';
}

/** The data attributes the filter script matches a row by (the same as a cell's). */
function flowAttrs(r: FlowResult, stmts: readonly number[] | undefined): string {
  const e = escapeHtml;
  return (
    ` data-check="${e(r.check)}" data-from="${e(r.from)}" data-to="${e(r.to)}" data-verdict="${e(r.verdict)}" data-cause="${e(r.cause ?? '')}"` +
    `${r.change ? ` data-change="${e(r.change)}"` : ''}${stmtAttr(stmts)}`
  );
}

function flowRow(r: FlowResult, stmts?: readonly number[], withDetail = true): string {
  const e = escapeHtml;
  return (
    `<tr class="k-row-${cellKind(r)}"${flowAttrs(r, stmts)}><td><span class="sw k-${cellKind(r)}">${e(r.verdict === 'pass' ? '' : causeCode(r))}</span> ${e(r.check)}</td><td>${e(r.from)} → ${e(r.to)}</td><td class="v-${e(r.verdict)}">${e(r.verdict)}</td>` +
    `<td>${e(r.cause ?? '—')}</td><td>${withDetail ? e(r.detail) : '<span class="same">as above</span>'}</td></tr>`
  );
}

/**
 * Which results each statement explains: diagnose()'s own record when the statements came from it
 * now; for statements read back from a saved report, those of a fresh diagnosis with the same text
 * (a statement that no fresh one matches gets no links rather than a guess).
 */
function statementMembers(report: Report, diagnosis: readonly DiagnosisStatement[]): Array<readonly number[] | undefined> {
  const own = diagnosis.map((d) => membersOf(d));
  if (own.every((m) => m !== undefined)) return own;
  // verify's diagnosis is of new and known failures apart: diagnose again the same way.
  const again = report.results.some((r) => r.change !== undefined) ? diagnoseAgainstBaseline(report) : diagnose(report);
  const fresh = new Map<string, readonly number[] | undefined>();
  for (const d of again) fresh.set(`${d.text}\u0000${d.flows}\u0000${d.known === true}`, membersOf(d));
  return diagnosis.map((d, i) => own[i] ?? fresh.get(`${d.text}\u0000${d.flows}\u0000${d.known === true}`));
}

/** The filter bar: check, node (the per-node view), cause, change, free text; state lives in the URL hash. */
function toolbar(report: Report, names: string[], checks: CheckId[]): string {
  const e = escapeHtml;
  const causes = new Set<string>();
  const changes = new Set<string>();
  for (const r of report.results) {
    causes.add(r.verdict === 'pass' ? 'pass' : r.cause ?? r.verdict);
    if (r.change) changes.add(r.change);
  }
  const select = (id: string, label: string, values: Iterable<string>) =>
    `<label>${e(label)} <select id="f-${id}" name="${id}"><option value="">all</option>${[...values].map((v) => `<option value="${e(v)}">${e(v)}</option>`).join('')}</select></label>`;
  return (
    `<form id="filters" class="toolbar" autocomplete="off" onsubmit="return false">` +
    select('check', 'check', checks) +
    select('node', 'node (from or to)', names) +
    select('cause', 'cause', [...causes].sort()) +
    (changes.size ? select('change', 'change', ['regressed', 'fixed', 'new', 'unchanged'].filter((c) => changes.has(c))) : '') +
    `<label>search <input type="search" id="f-q" name="q" placeholder="node, check, detail…"></label>` +
    `<button type="button" id="f-clear">clear</button> <span id="f-status" class="meta"></span></form>`
  );
}

function changesSection(report: Report, diagnosis: readonly DiagnosisStatement[], stmtsOf: Map<FlowResult, number[]>): string {
  const regressed = report.results.filter((r) => r.change === 'regressed');
  const fixed = report.results.filter((r) => r.change === 'fixed');
  const fresh = report.results.filter((r) => r.change === 'new').length;
  const unchanged = report.results.filter((r) => r.change === 'unchanged').length;
  const e = escapeHtml;
  const base = report.baseline;
  const out = [`<section id="changes"><h2>Changes since the baseline</h2>`];
  if (base) {
    out.push(
      `<p class="meta">Baseline${base.file ? ` <code>${e(base.file)}</code>` : ''} from ${e(base.startedAt)}: ${base.summary.pass} pass, ${base.summary.fail} fail, ${base.summary.unknown} unknown.</p>`,
    );
  }
  out.push(
    `<div class="counts"><span class="count fail"><b data-change-count="regressed">${regressed.length}</b> regressed</span>` +
      `<span class="count pass"><b data-change-count="fixed">${fixed.length}</b> fixed</span>` +
      `<span class="count"><b data-change-count="new">${fresh}</b> new</span>` +
      `<span class="count"><b data-change-count="unchanged">${unchanged}</b> unchanged</span></div>`,
  );
  const list = (id: string, title: string, groups: RowGroup[], n: number) => {
    if (n === 0) return;
    const { html, shown } = groupBodies(groups, stmtsOf, 200);
    out.push(
      `<details class="changes" id="changes-${id}"${n <= 10 || groups.length <= 12 ? ' open' : ''}><summary>${e(title)}: ${n}</summary>` +
        `<table class="flows sortable grouped"><thead><tr><th>check</th><th>flow</th><th>verdict</th><th>cause</th><th>detail</th></tr></thead>`,
      ...html,
      '</table>',
    );
    if (n > shown) out.push(`<p class="note">and ${n - shown} more.</p>`);
    out.push('</details>');
  };
  list('regressed', 'Regressed (passed in the baseline, not now), by the diagnosis statement that explains them', statementGroups(regressed, diagnosis, stmtsOf), regressed.length);
  list('fixed', 'Fixed (did not pass in the baseline, passes now), by what the baseline\'s failures said', fixedGroups(report, fixed), fixed.length);
  out.push('</section>');
  return out.join('\n');
}

/** Rows of a grouped table under one heading: a statement of this page's diagnosis (`stmt`) or not. */
interface RowGroup {
  title: string;
  stmt?: number;
  rows: FlowResult[];
}

/** One group per diagnosis statement (the first that explains a flow), in the diagnosis' order; the rest last. */
function statementGroups(rs: readonly FlowResult[], diagnosis: readonly DiagnosisStatement[], stmtsOf: Map<FlowResult, number[]>): RowGroup[] {
  const groups = new Map<number, FlowResult[]>();
  for (const r of rs) {
    const s = stmtsOf.get(r)?.[0] ?? -1;
    let g = groups.get(s);
    if (!g) groups.set(s, (g = []));
    g.push(r);
  }
  return [...groups.keys()]
    .sort((a, b) => (a < 0 ? 1 : b < 0 ? -1 : a - b))
    .map((s) => (s >= 0 ? { title: `${s + 1}. ${diagnosis[s]?.text ?? ''}`, stmt: s, rows: groups.get(s)! } : { title: 'Not explained by a statement above', rows: groups.get(s)! }));
}

/**
 * The fixed flows pass now, so no statement of this run explains them: they are grouped by a diagnosis of what
 * the baseline said of them (`was`), which reads as what got fixed. Reports without `was` get one group.
 */
function fixedGroups(report: Report, fixed: readonly FlowResult[]): RowGroup[] {
  const withWas = fixed.filter((r) => r.was);
  const statements = diagnose({ nodes: report.nodes, ports: report.ports, results: withWas.map((r) => ({ ...r, ...r.was! })) });
  const taken = new Set<FlowResult>();
  const groups: RowGroup[] = [];
  for (const d of statements) {
    const rows = (membersOf(d) ?? []).map((i) => withWas[i]!).filter((r) => !taken.has(r));
    for (const r of rows) taken.add(r);
    if (rows.length) groups.push({ title: `In the baseline: ${d.text}`, rows });
  }
  const rest = fixed.filter((r) => !taken.has(r));
  if (rest.length) groups.push({ title: groups.length ? 'Other fixed flows' : 'Fixed flows', rows: rest });
  return groups;
}

/** A <tbody> per group: its heading (linked to its cells for a statement), the detail once when its rows share it. */
function groupBodies(groups: readonly RowGroup[], stmtsOf: Map<FlowResult, number[]>, limit: number): { html: string[]; shown: number } {
  const e = escapeHtml;
  const html: string[] = [];
  let shown = 0;
  for (const { title, stmt, rows } of groups) {
    const details = new Set(rows.map((r) => r.detail ?? ''));
    const shared = details.size === 1 ? [...details][0]! : null;
    html.push(
      `<tbody class="grp"${stmt !== undefined ? ` data-stmt="${stmt}"` : ''}><tr class="grp-head"><th colspan="5"><span class="gt">${e(title)}</span> <span class="meta">${e(plural(rows.length, 'flow'))}</span>` +
        (stmt !== undefined ? ` <a href="#stmt=${stmt}" data-stmt-link="${stmt}">show in the heatmaps</a>` : '') +
        (shared ? `<div class="gd">${e(shared)}</div>` : '') +
        `</th></tr>`,
    );
    for (const r of rows) {
      if (shown >= limit) break;
      html.push(flowRow(r, stmtsOf.get(r), shared === null));
      shown++;
    }
    html.push('</tbody>');
  }
  return { html, shown };
}

/** The flows that did not pass, one group per diagnosis statement (its detail once when they share it). */
function failingSection(report: Report, diagnosis: readonly DiagnosisStatement[], stmtsOf: Map<FlowResult, number[]>): string {
  const bad = report.results.filter((r) => r.verdict !== 'pass');
  if (bad.length === 0) return '';
  const groups = statementGroups(bad, diagnosis, stmtsOf);
  const { html, shown } = groupBodies(groups, stmtsOf, 1000);
  const out = [
    `<section id="failing"><details${bad.length <= 50 || groups.length <= 12 ? ' open' : ''}><summary><h2>Flows that did not pass (${bad.length})</h2></summary>`,
    `<p class="meta">Grouped by the diagnosis statement that explains them; click a column head to sort.</p>`,
    `<table class="flows sortable grouped"><thead><tr><th>check</th><th>flow</th><th>verdict</th><th>cause</th><th>detail</th></tr></thead>`,
    ...html,
    '</table>',
  ];
  if (bad.length > shown) out.push(`<p class="note">and ${bad.length - shown} more: see the JSON report.</p>`);
  out.push('</details></section>');
  return out.join('\n');
}

/** The page's stylesheet (preflight's page uses it too). */
export const PAGE_CSS = `
:root{--pass:#009e73;--egress:#e69f00;--path:#0072b2;--ingress:#d55e00;--blocked:#5a1e00;--rejected:#cc79a7;--return:#f0e442;--noroute:#56b4e9;--unknown:#b8bec6;--none:#eef1f4;--fg:#1f2328;--muted:#636c76;--line:#d0d7de}
*{box-sizing:border-box}
body{margin:0;padding:16px 24px 48px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);background:#fff}
h1{font-size:22px;margin:0 0 4px}h1 .cmd{color:var(--muted);font-weight:400}
h2{font-size:17px;margin:22px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}h2 small{font-weight:400;color:var(--muted);font-size:13px}
h3{font-size:14px;margin:12px 0 6px}
.meta{color:var(--muted);font-size:13px}
.counts{display:flex;gap:10px;margin:10px 0 4px;flex-wrap:wrap}
.count{border:1px solid var(--line);border-radius:6px;padding:4px 12px;font-size:14px;background:#f6f8fa}
.count b{font-size:20px;margin-right:4px}
.count.pass b{color:#1a7f37}code{font:12px ui-monospace,"DejaVu Sans Mono",monospace;background:#f2f4f6;padding:0 3px;border-radius:3px;white-space:nowrap}.count.fail b{color:var(--ingress)}.count.unknown b{color:#7a828c}
.banner{margin:12px 0;padding:10px 14px;border:2px solid #bf8700;background:#fff8c5;border-radius:6px;font-size:15px}
#diagnosis ol{margin:0;padding-left:22px}
.stmt{margin:0 0 10px}.stmt .text{font-weight:600;font-size:15px}
.stmt .advice{color:#32383f;max-width:110ch}.stmt .ex{color:var(--muted);font-size:12px}
.ok{color:#1a7f37;font-weight:600}
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;margin:4px 0 12px;font-size:12px;color:var(--muted)}
.lg{display:inline-flex;align-items:center;gap:5px}.lg b{color:var(--fg)}
.sw{display:inline-block;position:relative;width:16px;height:16px;border-radius:2px;font:700 11px/16px ui-monospace,"DejaVu Sans Mono",monospace;text-align:center;font-style:normal;color:#fff}
.grids{display:flex;flex-wrap:wrap;gap:18px 28px;align-items:flex-start}
.matrix{margin:0;max-width:100%}
figcaption{font-size:13px;margin-bottom:4px}figcaption .traffic{color:var(--muted)}figcaption .bad{color:var(--ingress);font-weight:600}figcaption .good{color:#1a7f37}
.scroll{overflow:auto;max-width:calc(100vw - 60px);max-height:85vh;border:1px solid var(--line);border-radius:4px}
table.grid{border-collapse:separate;border-spacing:1px;font-size:11px;line-height:1}
table.grid th{background:#fff;font-weight:400;color:var(--muted)}
table.grid thead th{position:sticky;top:0;z-index:2;vertical-align:bottom;padding:2px 0}
table.grid th.corner{left:0;z-index:3;font-size:9px;text-align:left;padding:2px 4px}
table.grid th.col span{display:inline-block;writing-mode:vertical-rl;transform:rotate(180deg);max-height:84px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
table.grid th.row{position:sticky;left:0;z-index:1;text-align:right;padding:0 5px 0 4px;max-width:120px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
table.grid th.hl{color:var(--fg);font-weight:700;background:#fff8c5}
td.c{position:relative;width:16px;min-width:16px;height:16px;padding:0;border-radius:2px;cursor:pointer;font:700 11px/16px ui-monospace,"DejaVu Sans Mono",monospace;text-align:center;color:#fff}
td.c:hover{outline:2px solid var(--fg);outline-offset:0}
td.c.pinned{outline:2px solid #0969da;outline-offset:0}
.k-pass{background:var(--pass)}.k-egress-blocked{background:var(--egress)}.k-path-blocked{background:var(--path)}
.k-ingress-blocked{background:var(--ingress)}.k-blocked{background:var(--blocked)}.k-rejected{background:var(--rejected)}
.k-return-blocked{background:var(--return);color:#000}.k-egress-blocked,.k-no-route{color:#000}.k-no-route{background:var(--noroute)}.k-fail{background:#000}
.k-unknown{background:var(--unknown);color:#000;background-image:repeating-linear-gradient(45deg,transparent 0 2px,rgba(255,255,255,.55) 2px 4px)}
.k-none{background:var(--none);cursor:default}
.regressed{box-shadow:inset 0 0 0 3px #000,0 0 0 1px #fff}
.regressed::after{content:"";position:absolute;top:0;right:0;border-style:solid;border-width:0 7px 7px 0;border-color:transparent #000 transparent transparent}
.fixed{background-image:radial-gradient(circle,#fff 0 3px,#000 3px 4px,transparent 4.5px)}
table.flows{border-collapse:collapse;font-size:12px;width:100%;max-width:1400px}
table.flows th,table.flows td{border-bottom:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}
table.flows td.v-fail{color:var(--ingress);font-weight:600}table.flows td.v-unknown{color:#7a828c;font-weight:600}table.flows td.v-pass{color:var(--pass)}
details summary{cursor:pointer}details.changes summary{font-weight:600;margin:6px 0}details summary h2{display:inline-block;border:0}
.note{color:var(--muted)}
#tip{position:fixed;z-index:20;pointer-events:none;max-width:420px;background:#1f2328;color:#fff;font-size:12px;padding:6px 8px;border-radius:4px;white-space:pre-wrap;box-shadow:0 2px 8px rgba(0,0,0,.25)}
#panel{position:fixed;right:16px;bottom:16px;z-index:10;width:380px;max-height:70vh;overflow:auto;background:#fff;border:1px solid var(--line);border-radius:8px;box-shadow:0 4px 18px rgba(0,0,0,.18);padding:10px 14px;font-size:13px}
#panel h3{margin:0 0 6px}#panel dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 10px;margin:0}#panel dt{color:var(--muted)}#panel dd{margin:0;word-break:break-word}
#panel-close{position:absolute;right:8px;top:6px;border:0;background:none;font-size:18px;cursor:pointer;color:var(--muted)}
[hidden]{display:none!important}
.toolbar{position:sticky;top:0;z-index:15;display:flex;flex-wrap:wrap;gap:6px 14px;align-items:center;background:#f6f8fa;border:1px solid var(--line);border-radius:6px;padding:6px 10px;margin:10px 0;font-size:13px}
.toolbar select,.toolbar input{font:inherit;padding:1px 4px}
td.c.dim{opacity:.12}td.c.lit{outline:2px solid #0969da;outline-offset:-1px}
table.grid th.node-hl{color:var(--fg);font-weight:700;background:#ddf4ff}
.stmt.active{background:#ddf4ff;border-left:4px solid #0969da;padding-left:6px}.stmt .show{font-size:12px}
table.sortable thead th{cursor:pointer;user-select:none}table.sortable thead th[aria-sort=ascending]::after{content:" ▲"}table.sortable thead th[aria-sort=descending]::after{content:" ▼"}
table.flows .sw{width:14px;height:14px;font-size:10px;line-height:14px;vertical-align:-2px}
tr.grp-head th{background:#f6f8fa;font-weight:400;padding-top:8px}tr.grp-head .gt{font-weight:600}tr.grp-head .gd{color:#32383f;font-size:12px}
.same{color:var(--muted)}
.scroll-y{max-height:45vh;overflow:auto}
#node-view{border:2px solid #0969da;border-radius:6px;padding:0 12px 10px;margin:12px 0}
`;

const SCRIPT = `
(function () {
  'use strict';
  var el = document.getElementById('report-data');
  var data;
  try { data = JSON.parse(el.textContent || '{}'); } catch (err) { return; }
  var index = Object.create(null);
  (data.results || []).forEach(function (r) { index[r.check + '\\u0000' + r.from + '\\u0000' + r.to] = r; });
  var tip = document.getElementById('tip');
  var panel = document.getElementById('panel');
  var body = document.getElementById('panel-body');
  var pinned = null;
  var cells = document.querySelectorAll('td.c');
  for (var i = 0; i < cells.length; i++) {
    var t = cells[i].getAttribute('title');
    if (t !== null) { cells[i].setAttribute('data-tip', t); cells[i].removeAttribute('title'); }
  }
  function flowOf(td) {
    var d = td.dataset;
    return index[d.check + '\\u0000' + d.from + '\\u0000' + d.to] ||
      { check: d.check, from: d.from, to: d.to, verdict: d.verdict, cause: d.cause || null, detail: '' };
  }
  function rtt(ms) { return typeof ms === 'number' ? (ms < 10 ? ms.toFixed(1) : Math.round(ms)) + ' ms' : '-'; }
  function highlight(td, on) {
    var row = td.parentNode.firstChild;
    if (row) row.classList.toggle('hl', on);
    var table = td.closest('table');
    var th = table && table.tHead && table.tHead.rows[0].cells[td.cellIndex];
    if (th) th.classList.toggle('hl', on);
  }
  function fill(r) {
    while (body.firstChild) body.removeChild(body.firstChild);
    var rows = [
      ['check', r.check], ['flow', r.from + ' \\u2192 ' + r.to], ['verdict', r.verdict], ['cause', r.cause || '\\u2014'],
      ['detail', r.detail || '\\u2014'], ['RTT', rtt(r.rttMs)], ['attempts', r.attempts == null ? '-' : String(r.attempts)],
      ['rejectedBy', r.rejectedBy || '\\u2014'], ['observedSource', r.observedSource || '\\u2014']
    ];
    if (r.toAddress) rows.push(['to address', r.toAddress + (r.port ? ':' + r.port : '')]);
    if (r.change) rows.push(['change', r.change]);
    rows.forEach(function (kv) {
      var dt = document.createElement('dt'); dt.textContent = kv[0];
      var dd = document.createElement('dd'); dd.textContent = kv[1];
      body.appendChild(dt); body.appendChild(dd);
    });
  }
  document.addEventListener('mouseover', function (ev) {
    var td = ev.target.closest && ev.target.closest('td.c');
    if (!td || td.dataset.verdict === 'none') { tip.hidden = true; return; }
    tip.textContent = td.getAttribute('data-tip') || '';
    tip.hidden = false;
    highlight(td, true);
  });
  document.addEventListener('mouseout', function (ev) {
    var td = ev.target.closest && ev.target.closest('td.c');
    if (td) highlight(td, false);
  });
  document.addEventListener('mousemove', function (ev) {
    if (tip.hidden) return;
    var x = ev.clientX + 14, y = ev.clientY + 14;
    if (x + tip.offsetWidth > window.innerWidth) x = ev.clientX - tip.offsetWidth - 10;
    if (y + tip.offsetHeight > window.innerHeight) y = ev.clientY - tip.offsetHeight - 10;
    tip.style.left = x + 'px'; tip.style.top = y + 'px';
  });
  document.addEventListener('click', function (ev) {
    var td = ev.target.closest && ev.target.closest('td.c');
    if (!td || td.dataset.verdict === 'none') return;
    if (pinned) pinned.classList.remove('pinned');
    pinned = td; td.classList.add('pinned');
    fill(flowOf(td));
    panel.hidden = false;
  });
  document.getElementById('panel-close').addEventListener('click', function () {
    panel.hidden = true;
    if (pinned) { pinned.classList.remove('pinned'); pinned = null; }
  });
  document.addEventListener('keydown', function (ev) { if (ev.key === 'Escape') document.getElementById('panel-close').click(); });

  // ---- filter, per-node view and statement links: the state is the URL hash (#node=n1&check=bgp&stmt=0)
  var KEYS = ['check', 'node', 'cause', 'change', 'q', 'stmt'];
  function readState() {
    var p = new URLSearchParams(location.hash.replace(/^#/, ''));
    var st = {};
    KEYS.forEach(function (k) { st[k] = p.get(k) || ''; });
    return st;
  }
  function writeState(st) {
    var p = new URLSearchParams();
    KEYS.forEach(function (k) { if (st[k]) p.set(k, st[k]); });
    var h = p.toString();
    if (('#' + h) !== location.hash && !(h === '' && location.hash === '')) history.replaceState(null, '', h ? '#' + h : location.pathname + location.search);
    apply(st);
  }
  function causeOf(d) { return d.verdict === 'pass' ? 'pass' : (d.cause || d.verdict); }
  function matches(d, text, st) {
    if (st.check && d.check !== st.check) return false;
    if (st.node && d.from !== st.node && d.to !== st.node) return false;
    if (st.cause && causeOf(d) !== st.cause) return false;
    if (st.change && (d.change || '') !== st.change) return false;
    if (st.stmt && (' ' + (d.stmt || '') + ' ').indexOf(' ' + st.stmt + ' ') < 0) return false;
    if (st.q && text.toLowerCase().indexOf(st.q.toLowerCase()) < 0) return false;
    return true;
  }
  function nodeView(st) {
    var sec = document.getElementById('node-view');
    if (!sec) return;
    if (!st.node) { sec.hidden = true; return; }
    var tb = document.getElementById('node-view-table').tBodies[0];
    while (tb.firstChild) tb.removeChild(tb.firstChild);
    var out = { n: 0, pass: 0 }, inn = { n: 0, pass: 0 };
    var mine = (data.results || []).filter(function (r) { return r.from === st.node || r.to === st.node; });
    // what did not pass first: that is what the view is opened for
    mine.sort(function (x, y) { return (x.verdict === 'pass') - (y.verdict === 'pass'); });
    mine.forEach(function (r) {
      var sent = r.from === st.node;
      var c = sent ? out : inn; c.n++; if (r.verdict === 'pass') c.pass++;
      var tr = document.createElement('tr');
      var d = { check: r.check, from: r.from, to: r.to, verdict: r.verdict, cause: r.cause || '', change: r.change || '' };
      Object.keys(d).forEach(function (k) { if (d[k]) tr.setAttribute('data-' + k, d[k]); });
      tr.setAttribute('data-cause', d.cause);
      [r.check, sent ? 'sends \u2192' : 'receives \u2190', sent ? r.to : r.from, r.verdict, r.cause || '\u2014', r.detail || ''].forEach(function (v, i) {
        var td = document.createElement('td'); td.textContent = v;
        if (i === 3) td.className = 'v-' + r.verdict;
        tr.appendChild(td);
      });
      tb.appendChild(tr);
    });
    document.getElementById('node-view-name').textContent = st.node;
    document.getElementById('node-view-summary').textContent = 'sends ' + out.n + ' flows (' + out.pass + ' pass), receives ' + inn.n + ' (' + inn.pass + ' pass)' +
      (data.resultsOmitted ? '; passing flows are not in this page' : '');
    sec.hidden = false;
  }
  function apply(st) {
    KEYS.forEach(function (k) { var f = document.getElementById('f-' + k); if (f && f.value !== st[k]) f.value = st[k]; });
    var active = KEYS.some(function (k) { return st[k]; });
    nodeView(st);
    var shown = 0, all = 0;
    var cs = document.querySelectorAll('td.c');
    for (var i = 0; i < cs.length; i++) {
      var d = cs[i].dataset;
      if (d.verdict === 'none') continue;
      all++;
      var ok = matches(d, d.check + ' ' + d.from + ' ' + d.to + ' ' + d.verdict + ' ' + (d.cause || '') + ' ' + (cs[i].getAttribute('data-tip') || ''), st);
      if (ok) shown++;
      cs[i].classList.toggle('dim', active && !ok);
      cs[i].classList.toggle('lit', !!st.stmt && ok);
    }
    var figs = document.querySelectorAll('figure.matrix');
    for (i = 0; i < figs.length; i++) figs[i].hidden = !!st.check && figs[i].dataset.check !== st.check;
    var heads = document.querySelectorAll('table.grid th.row, table.grid th.col');
    for (i = 0; i < heads.length; i++) heads[i].classList.toggle('node-hl', !!st.node && heads[i].textContent === st.node);
    var rows = document.querySelectorAll('table.flows tbody tr[data-check]');
    for (i = 0; i < rows.length; i++) rows[i].hidden = active && !matches(rows[i].dataset, rows[i].textContent || '', st);
    var grps = document.querySelectorAll('table.flows tbody.grp');
    for (i = 0; i < grps.length; i++) grps[i].hidden = !grps[i].querySelector('tr[data-check]:not([hidden])');
    var stmts = document.querySelectorAll('li.stmt');
    for (i = 0; i < stmts.length; i++) stmts[i].classList.toggle('active', stmts[i].dataset.stmt === st.stmt);
    var status = document.getElementById('f-status');
    if (status) status.textContent = active ? 'showing ' + shown + ' of ' + all + ' flows' : '';
    status && status.setAttribute('data-shown', String(shown));
  }
  var form = document.getElementById('filters');
  if (form) {
    form.addEventListener('input', function () {
      var st = readState();
      KEYS.forEach(function (k) { var f = document.getElementById('f-' + k); if (f) st[k] = f.value; });
      writeState(st);
    });
    document.getElementById('f-clear').addEventListener('click', function () { writeState({}); });
  }
  document.addEventListener('click', function (ev) {
    var a = ev.target.closest && ev.target.closest('[data-stmt-link]');
    if (!a) return;
    ev.preventDefault();
    var st = readState();
    var s = a.getAttribute('data-stmt-link');
    st.stmt = st.stmt === s ? '' : s;
    writeState(st);
    var first = st.stmt && document.querySelector('td.c.lit');
    if (first && first.scrollIntoView) first.scrollIntoView({ block: 'center', inline: 'center' });
  });
  window.addEventListener('hashchange', function () { apply(readState()); });

  // ---- sortable tables: click a column head; numbers sort as numbers, node12 after node2
  var collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });
  document.addEventListener('click', function (ev) {
    var th = ev.target.closest && ev.target.closest('table.sortable thead th');
    if (!th) return;
    var table = th.closest('table');
    var col = th.cellIndex;
    var dir = th.getAttribute('aria-sort') === 'ascending' ? 'descending' : 'ascending';
    var ths = th.parentNode.cells;
    for (var j = 0; j < ths.length; j++) ths[j].removeAttribute('aria-sort');
    th.setAttribute('aria-sort', dir);
    sortTable(table, col, dir);
  });
  function sortTable(table, col, dir) {
    for (var b = 0; b < table.tBodies.length; b++) {
      var tb = table.tBodies[b];
      var rs = Array.prototype.filter.call(tb.rows, function (r) { return r.hasAttribute('data-check'); });
      rs.sort(function (x, y) {
        var c = collator.compare(x.cells[col] ? x.cells[col].textContent : '', y.cells[col] ? y.cells[col].textContent : '');
        return dir === 'ascending' ? c : -c;
      });
      rs.forEach(function (r) { tb.appendChild(r); });
    }
  }
  var sortHash = /(?:^#|&)sort=(\\d+)(desc)?/.exec(location.hash);
  apply(readState());
  if (sortHash) {
    document.querySelectorAll('table.sortable').forEach(function (tbl) {
      var th = tbl.tHead && tbl.tHead.rows[0].cells[Number(sortHash[1])];
      if (th) { th.setAttribute('aria-sort', sortHash[2] ? 'descending' : 'ascending'); sortTable(tbl, th.cellIndex, sortHash[2] ? 'descending' : 'ascending'); }
    });
  }
})();
`;
