// Terminal rendering: one line per flow for a pair, a matrix per check for a mesh, then the diagnosis.
import pc from 'picocolors';
import type { CheckId, DiagnosisStatement, FlowResult, Report } from '../types.js';
import { pathMtuBelowHost, pathMtuLine } from './path-mtu.js';
import { causeCode, checksOf, flowKey, formatRtt, matrixAxes, nodeNamesOf, plural, portOf, summarize, trafficName } from './common.js';
import { diagnose } from './diagnosis.js';
import { findingsLines } from './findings.js';

export interface TableOptions {
  color: boolean;
  /** Terminal width: long details and advice are wrapped or cut to it. */
  width?: number;
  /** Above this many nodes the matrices are skipped (the diagnosis stays). */
  maxMatrixNodes?: number;
  /** One line per flow even for a mesh. */
  flows?: boolean;
}

type Colors = ReturnType<typeof pc.createColors>;

export const MATRIX_LEGEND: ReadonlyArray<[string, string]> = [
  ['✓', 'pass'],
  ['E', 'egress-blocked (sender\'s firewall)'],
  ['P', 'path-blocked'],
  ['I', 'ingress-blocked (receiver\'s firewall)'],
  ['B', 'blocked (path or receiver)'],
  ['R', 'rejected'],
  ['T', 'return-blocked'],
  ['N', 'no-route'],
  ['F', 'rp-filter (receiver\'s kernel)'],
  ['K', 'kernel-drop (receiver\'s kernel, its drop reason: no rule)'],
  ['W', 'misrouted (sender\'s route: wrong interface)'],
  ['M', 'mtu-blackhole (large packets lost silently)'],
  ['m', 'mtu-limited (a hop said fragmentation-needed)'],
  ['L', 'lossy'],
  ['H', 'host-unreachable'],
  ['?', 'unknown'],
  ['·', 'self / not planned'],
];

export function renderTable(report: Report, opts: TableOptions): string {
  const c = pc.createColors(opts.color);
  const width = opts.width ?? 100;
  const maxNodes = opts.maxMatrixNodes ?? 40;
  const out: string[] = [];
  const names = nodeNamesOf(report);

  out.push(header(report, c, names.length));
  if (report.incomplete) {
    out.push(
      c.bold(c.yellow('!! INCOMPLETE RUN: interrupted before every flow finished; the results below cover only what finished.')),
    );
  }
  out.push(...changesLead(report, c));
  out.push('');
  if (report.findings) out.push(...findingsLines(report.findings, c), '');

  const pairMode = opts.flows === true || report.nodes.length <= 2;
  if (pairMode) {
    out.push(...flowLines(report, c, opts.width));
  } else if (names.length > maxNodes) {
    const failing = report.results.length - summarize(report.results).pass;
    out.push(
      c.dim(
        `Matrices skipped: ${names.length} nodes is more than ${maxNodes} (--format html shows every flow); ` +
          `${plural(failing, 'flow')} did not pass.`,
      ),
    );
  } else {
    out.push(...matrices(report, names, c, width));
  }

  const diagnosis: DiagnosisStatement[] = report.diagnosis ?? diagnose(report);
  if (diagnosis.length > 0) {
    out.push('', c.bold('Diagnosis'));
    const split = diagnosis.some((d) => d.known) && report.baseline !== undefined;
    diagnosis.forEach((d, i) => {
      if (split && (i === 0 || d.known !== diagnosis[i - 1]!.known)) {
        out.push(c.bold(d.known ? '  Already failing in the baseline:' : '  New since the baseline:'));
      }
      const lead = `${String(i + 1).padStart(3)}. `;
      out.push(...wrap(d.text, width, lead, ' '.repeat(lead.length)).map((l) => c.bold(l)));
      out.push(...wrap(d.advice, width, ' '.repeat(lead.length), ' '.repeat(lead.length)).map((l) => c.dim(l)));
    });
  }

  out.push('', summaryLine(report, c));
  return `${out.join('\n')}\n`;
}

function header(report: Report, c: Colors, nodeCount: number): string {
  const checks = checksOf(report);
  const started = Date.parse(report.startedAt);
  const finished = Date.parse(report.finishedAt);
  const took = Number.isFinite(started) && Number.isFinite(finished) ? `, took ${((finished - started) / 1000).toFixed(1)} s` : '';
  const cmd = report.command ? ` ${report.command}` : '';
  return c.bold(`calico-nettest${cmd}`) + c.dim(` · ${plural(nodeCount, 'node')} · ${checks.join(', ')} · ${report.startedAt}${took}`);
}

export function summaryLine(report: Pick<Report, 'results'>, c: Colors = pc.createColors(false)): string {
  const s = summarize(report.results);
  const total = report.results.length;
  const parts = [
    s.pass > 0 ? c.green(`${s.pass} pass`) : `${s.pass} pass`,
    s.fail > 0 ? c.red(`${s.fail} fail`) : `${s.fail} fail`,
    s.unknown > 0 ? c.yellow(`${s.unknown} unknown`) : `${s.unknown} unknown`,
  ];
  return `${c.bold(plural(total, 'flow'))}: ${parts.join(', ')}`;
}

function describeFlow(r: FlowResult): string {
  return `${r.check} ${r.from} -> ${r.to}`;
}

function changesLead(report: Report, c: Colors): string[] {
  if (!report.results.some((r) => r.change !== undefined)) return [];
  const regressed: FlowResult[] = [];
  const fixed: FlowResult[] = [];
  let fresh = 0;
  for (const r of report.results) {
    if (r.change === 'regressed') regressed.push(r);
    else if (r.change === 'fixed') fixed.push(r);
    else if (r.change === 'new') fresh++;
  }
  const list = (rs: FlowResult[], fmt: (r: FlowResult) => string): string => {
    const shown = rs.slice(0, 10).map(fmt).join(', ');
    return rs.length > 10 ? `${shown} and ${rs.length - 10} more` : shown;
  };
  const out: string[] = [];
  const base = report.baseline ? ` (baseline${report.baseline.file ? ` ${report.baseline.file}` : ''} of ${report.baseline.startedAt})` : '';
  if (regressed.length > 0) {
    out.push(
      c.bold(c.red(`${plural(regressed.length, 'flow')} regressed${base}: `)) +
        c.red(list(regressed, (r) => `${describeFlow(r)} now ${r.cause ?? r.verdict}`)),
    );
  } else {
    out.push(c.green(`No flow regressed${base}.`));
  }
  if (fixed.length > 0) out.push(c.green(`${plural(fixed.length, 'flow')} fixed: ${list(fixed, describeFlow)}`));
  if (fresh > 0) out.push(c.dim(`${plural(fresh, 'flow')} new (not in the baseline).`));
  return [...notTestedLead(report, c), ...out];
}

/** "12 flows of the baseline were not tested: checks ipip, vxlan" — before anything says "no flow regressed". */
function notTestedLead(report: Report, c: Colors): string[] {
  const b = report.baseline;
  const out: string[] = [];
  for (const w of b?.warnings ?? []) out.push(c.bold(c.yellow(`Warning: ${w}.`)));
  const n = b?.notTested ?? 0;
  if (!b || n === 0) return out;
  const why: string[] = [];
  if (b.notTestedChecks?.length) why.push(`check${b.notTestedChecks.length === 1 ? '' : 's'} ${b.notTestedChecks.join(', ')} (not in this run)`);
  if (b.notTestedNodes?.length) why.push(`node${b.notTestedNodes.length === 1 ? '' : 's'} ${b.notTestedNodes.slice(0, 10).join(', ')}${b.notTestedNodes.length > 10 ? ', …' : ''} (not in the inventory)`);
  if (why.length === 0) why.push((b.notTestedFlows ?? []).slice(0, 5).join(', ') + (n > 5 ? ', …' : ''));
  out.push(c.bold(c.yellow(`${plural(n, 'flow')} of the baseline ${n === 1 ? 'was' : 'were'} not tested: ${why.join('; ')}.`)) + c.dim(' They are not compared (--strict makes this fatal).'));
  return out;
}

function verdictColor(c: Colors, r: Pick<FlowResult, 'verdict'>, s: string): string {
  return r.verdict === 'pass' ? c.green(s) : r.verdict === 'fail' ? c.red(s) : c.yellow(s);
}

function flowLines(report: Report, c: Colors, width: number | undefined): string[] {
  const rows = report.results.map((r) => ({
    r,
    cols: [r.check, `${r.from} -> ${r.to}`, r.verdict, r.cause ?? '-', formatRtt(r.rttMs)],
  }));
  const widths = [0, 0, 0, 0, 0];
  for (const { cols } of rows) cols.forEach((s, i) => (widths[i] = Math.max(widths[i]!, s.length)));
  const used = widths.reduce((a, b) => a + b + 2, 0);
  return rows.map(({ r, cols }) => {
    const [check, dir, verdict, cause, rtt] = cols.map((s, i) => (i === 4 ? s.padStart(widths[i]!) : s.padEnd(widths[i]!)));
    let detail = r.detail ?? '';
    // describe() names the rejecting address in every sentence it writes; a result without facts did not come from it.
    if (r.rejectedBy && !r.facts) detail = `rejected by ${r.rejectedBy}; ${detail}`;
    const room = width === undefined ? Infinity : Math.max(20, width - used);
    if (detail.length > room) detail = `${detail.slice(0, room - 1)}…`;
    const changed = r.change && r.change !== 'unchanged' ? ` [${r.change}]` : '';
    return [check, dir, verdictColor(c, r, verdict!), cause, rtt, c.dim(detail) + (r.change === 'regressed' ? c.red(changed) : changed)].join('  ');
  });
}

function matrices(report: Report, names: string[], c: Colors, width: number): string[] {
  const number = new Map(names.map((n, i) => [n, i + 1]));
  const byCheck = new Map<CheckId, Map<string, FlowResult>>();
  for (const r of report.results) {
    let m = byCheck.get(r.check);
    if (!m) byCheck.set(r.check, (m = new Map()));
    m.set(flowKey(r), r);
  }
  const labelWidth = Math.min(24, Math.max(...names.map((n) => n.length)));
  const digits = String(names.length).length;
  // Without colour nothing can be inverted: a regressed cell then gets a '!' in the gap before it.
  const plain = c.inverse('x') === 'x';
  const out: string[] = [c.dim('Each row is a sender, each column a receiver: row 2, column 3 is node 2 -> node 3.'), ''];
  for (const check of checksOf(report)) {
    const flows = byCheck.get(check);
    if (!flows) continue;
    const { rows, cols, sample } = matrixAxes(flows.values(), names);
    const s = summarize([...flows.values()]);
    out.push(
      c.bold(`${check}`) +
        c.dim(` ${trafficName(check, portOf(check, report.ports, sample))}: `) +
        `${s.pass}/${flows.size} pass` +
        (s.fail ? c.red(`, ${s.fail} fail`) : '') +
        (s.unknown ? c.yellow(`, ${s.unknown} unknown`) : ''),
    );
    const pad = ' '.repeat(digits + 1 + labelWidth + 1);
    for (let d = 0; d < digits; d++) {
      const line = cols.map((n) => String(number.get(n)).padStart(digits)[d]).join(' ');
      out.push(c.dim(`${pad}${line}`));
    }
    for (const from of rows) {
      const label = `${String(number.get(from)).padStart(digits)} ${truncate(from, labelWidth).padEnd(labelWidth)}`;
      const cells = cols.map((to) => {
        const r = flows.get(flowKey({ check, from, to }));
        if (!r) return ` ${c.dim('·')}`;
        const code = causeCode(r);
        const cell = r.verdict === 'pass' ? c.green(code) : r.verdict === 'fail' ? c.bold(c.red(code)) : c.yellow(code);
        if (r.change !== 'regressed') return ` ${cell}`;
        return plain ? `!${cell}` : ` ${c.inverse(cell)}`;
      });
      out.push(c.dim(label) + cells.join(''));
    }
    const low = pathMtuBelowHost(flows.values());
    if (low.length > 0) out.push(...wrap(pathMtuLine(low), width, '', '  ').map((l) => c.yellow(l)));
    out.push('');
  }
  if (report.incomplete) out.push(...interruptedGaps(report, names, c));
  const legend = MATRIX_LEGEND.map(([k, v]) => `${k}\u00a0${v.replace(/ /g, '\u00a0')}`).join('  ');
  out.push(...wrap(`Legend: ${legend}`, width, '', '        ').map((l) => c.dim(l.replace(/\u00a0/g, ' '))));
  if (report.results.some((r) => r.change === 'regressed')) out.push(c.dim(plain ? "Regressed cells are marked with a '!' before them." : 'Regressed cells are shown inverted.'));
  return out;
}

/**
 * After Ctrl-C a node whose outcomes never came has no row (or no column) in any matrix: say so, rather than
 * let it vanish. Per report, not per check: role checks (typha, etcd, apiserver) leave nodes out by plan.
 */
function interruptedGaps(report: Report, names: readonly string[], c: Colors): string[] {
  const senders = new Set(report.results.map((r) => r.from));
  const receivers = new Set(report.results.map((r) => r.to));
  const nodes = new Set(report.nodes.filter((n) => names.includes(n.name)).map((n) => n.name));
  const noRow = names.filter((n) => nodes.has(n) && !senders.has(n));
  const noCol = names.filter((n) => nodes.has(n) && !receivers.has(n));
  const out: string[] = [];
  if (noRow.length) out.push(c.yellow(`Interrupted: no results yet from ${noRow.join(', ')} as sender — left out of the matrices' rows.`));
  if (noCol.length) out.push(c.yellow(`Interrupted: no results yet to ${noCol.join(', ')} as receiver — left out of the matrices' columns.`));
  return out;
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

function wrap(text: string, width: number, first: string, rest: string): string[] {
  const words = text.split(/\s+/).filter(Boolean);
  const lines: string[] = [];
  let line = first;
  let empty = true;
  for (const w of words) {
    if (!empty && line.length + 1 + w.length > width) {
      lines.push(line);
      line = rest + w;
    } else {
      line += (empty ? '' : ' ') + w;
    }
    empty = false;
  }
  if (!empty) lines.push(line);
  return lines;
}
