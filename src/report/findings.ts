// Preflight findings rendered: terminal lines and an HTML section (mesh's report, before the matrices, and
// preflight's own output), and preflight's own HTML page. Identical findings of many nodes are shown once.
import pc from 'picocolors';
import type { Finding, Severity } from '../preflight/findings.js';
import { escapeHtml, PAGE_CSS } from './html.js';
import { plural } from './common.js';

type Colors = ReturnType<typeof pc.createColors>;

/** One finding as it reads on every node it was found on. */
export interface FindingGroup {
  id: string;
  severity: Severity;
  detail: string;
  breaks: string;
  fix: string;
  nodes: string[];
}

const ORDER: Record<Severity, number> = { error: 0, warning: 1, info: 2 };

/** Findings that say the same on several nodes, once with the nodes' names: errors first, then by id. */
export function groupFindings(findings: readonly Finding[]): FindingGroup[] {
  const groups = new Map<string, FindingGroup>();
  for (const f of findings) {
    const key = `${f.severity}\u0000${f.id}\u0000${f.detail}\u0000${f.breaks}\u0000${f.fix}`;
    const g = groups.get(key);
    if (g) g.nodes.push(f.node);
    else groups.set(key, { id: f.id, severity: f.severity, detail: f.detail, breaks: f.breaks, fix: f.fix, nodes: [f.node] });
  }
  const collator = new Intl.Collator(undefined, { numeric: true });
  for (const g of groups.values()) g.nodes.sort(collator.compare);
  return [...groups.values()].sort((a, b) => ORDER[a.severity] - ORDER[b.severity] || a.id.localeCompare(b.id) || collator.compare(a.nodes[0]!, b.nodes[0]!));
}

export function countSeverities(findings: readonly Finding[]): Record<Severity, number> {
  const out: Record<Severity, number> = { error: 0, warning: 0, info: 0 };
  for (const f of findings) out[f.severity]++;
  return out;
}

/** "node1, node2 and 3 more": at most `max` names. */
export function nodeList(nodes: readonly string[], max = 6): string {
  if (nodes.length <= max) return nodes.join(', ');
  return `${nodes.slice(0, max).join(', ')} and ${nodes.length - max} more`;
}

const GLYPH: Record<Severity, string> = { error: '✗', warning: '!', info: 'i' };

/** Terminal lines: a heading, then per group `SEVERITY id — nodes`, what was seen, what breaks, the fix. */
export function findingsLines(findings: readonly Finding[], c: Colors, opts: { heading?: boolean; maxNodes?: number } = {}): string[] {
  const out: string[] = [];
  const n = countSeverities(findings);
  if (opts.heading !== false) {
    out.push(c.bold(`Preflight (host requirements): ${findings.length ? `${plural(n.error, 'error')}, ${plural(n.warning, 'warning')}, ${n.info} info` : 'no findings'}`));
  }
  const paint: Record<Severity, (s: string) => string> = { error: (s) => c.bold(c.red(s)), warning: c.yellow, info: c.dim };
  for (const g of groupFindings(findings)) {
    out.push(`${paint[g.severity](`${GLYPH[g.severity]} ${g.severity.toUpperCase().padEnd(7)}`)} ${c.bold(g.id)}  ${nodeList(g.nodes, opts.maxNodes)}`);
    out.push(`          ${g.detail}`);
    out.push(`          ${c.dim('breaks:')} ${g.breaks}`);
    out.push(...g.fix.split('\n').map((l, i) => `          ${i === 0 ? c.dim('fix:') + '    ' : '        '}${l}`));
  }
  return out;
}

/** `command` in already-escaped text becomes <code>command</code>. */
const codeSpans = (escaped: string) => escaped.replace(/`([^`]+)`/g, '<code>$1</code>');

/** The findings section of an HTML page (mesh's report and preflight's own page). */
export function findingsSection(findings: readonly Finding[], opts: { title?: string } = {}): string {
  const e = escapeHtml;
  const n = countSeverities(findings);
  const groups = groupFindings(findings);
  const out = [
    `<section id="findings"><h2>${e(opts.title ?? 'Preflight')} <small>Calico's host requirements, checked on each node</small></h2>`,
    `<div class="counts"><span class="count sev-error"><b data-finding-count="error">${n.error}</b> ${n.error === 1 ? 'error' : 'errors'}</span>` +
      `<span class="count sev-warning"><b data-finding-count="warning">${n.warning}</b> ${n.warning === 1 ? 'warning' : 'warnings'}</span>` +
      `<span class="count sev-info"><b data-finding-count="info">${n.info}</b> info</span></div>`,
  ];
  if (groups.length === 0) {
    out.push(`<p class="ok">No findings: every node meets the requirements these checks need.</p></section>`);
    return out.join('\n');
  }
  out.push(`<table class="flows findings sortable"><thead><tr><th>severity</th><th>finding</th><th>nodes</th><th>what was seen</th><th>breaks</th><th>fix</th></tr></thead><tbody>`);
  for (const g of groups) {
    out.push(
      `<tr class="finding sev-${g.severity}" data-finding="${e(g.id)}" data-severity="${g.severity}" data-nodes="${e(g.nodes.join(' '))}">` +
        `<td><span class="sw sev-${g.severity}" aria-hidden="true">${e(GLYPH[g.severity])}</span> ${e(g.severity)}</td><td><code>${e(g.id)}</code></td>` +
        `<td title="${e(g.nodes.join(', '))}">${e(nodeList(g.nodes, 12))}${g.nodes.length > 1 ? ` <span class="meta">(${g.nodes.length})</span>` : ''}</td>` +
        `<td>${codeSpans(e(g.detail))}</td><td>${e(g.breaks)}</td><td><pre class="fix">${e(g.fix)}</pre></td></tr>`,
    );
  }
  out.push('</tbody></table></section>');
  return out.join('\n');
}

/** Extra rules for findings, added to the report's stylesheet (same palette: vermillion, orange, blue). */
export const FINDINGS_CSS = `
.sw.sev-error{background:var(--ingress)}.sw.sev-warning{background:var(--egress);color:#000}.sw.sev-info{background:var(--path)}
.count.sev-error b{color:var(--ingress)}.count.sev-warning b{color:#9a6700}.count.sev-info b{color:var(--path)}
table.findings pre.fix{margin:0;white-space:pre-wrap;font:12px ui-monospace,"DejaVu Sans Mono",monospace}
table.findings tr.sev-error td:first-child{color:var(--ingress);font-weight:600}
`;

/** preflight --format html: one self-contained page in the report's style (no script, no external assets). */
export function renderPreflightHtml(r: { checks: readonly string[]; findings: readonly Finding[]; summary: Record<Severity, number>; nodes?: readonly string[] }): string {
  const e = escapeHtml;
  const title = `calico-nettest preflight: ${r.summary.error ? plural(r.summary.error, 'error') : 'no errors'}${r.summary.warning ? `, ${plural(r.summary.warning, 'warning')}` : ''}`;
  const nodes = r.nodes ?? [...new Set(r.findings.map((f) => f.node))];
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(title)}</title>
<style>${PAGE_CSS}${FINDINGS_CSS}</style></head>
<body>
<header>
<h1>calico-nettest <span class="cmd">preflight</span></h1>
<div class="meta">${e(plural(nodes.length, 'node'))}${nodes.length ? ` (${e(nodeList(nodes, 12))})` : ''} · checks ${e(r.checks.join(', ') || 'none')}</div>
</header>
${findingsSection(r.findings, { title: 'Findings' })}
</body></html>
`;
}
