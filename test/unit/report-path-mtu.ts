// The path MTU per pair, where below the host's, in the text matrix and the HTML report.
import t from 'tap';
import { pathMtuBelowHost, pathMtuLine } from '../../src/report/path-mtu.js';
import { renderTable } from '../../src/report/table.js';
import { renderHtml } from '../../src/report/html.js';
import type { FlowResult, Report } from '../../src/types.js';

const res = (from: string, to: string, pathMtu: number | null, extra: Partial<FlowResult> = {}): FlowResult => ({
  check: 'mtu', from, to, verdict: pathMtu === 1500 ? 'pass' : 'fail', cause: pathMtu === 1500 ? null : 'mtu-blackhole', rejectedBy: null, detail: 'd', rttMs: null, attempts: 3, observedSource: null, pathMtu, hostMtu: 1500, ...extra,
});
const results = [res('node1', 'node2', 1400), res('node2', 'node1', 1404), res('node1', 'node3', 1500), res('node3', 'node1', 1500)];

t.test('items and line', async (t) => {
  t.same(pathMtuBelowHost(results).map((i) => `${i.from}>${i.to}:${i.pathMtu}`), ['node1>node2:1400', 'node2>node1:1404']);
  t.equal(pathMtuLine(pathMtuBelowHost(results)), "path MTU below the host's: node1→node2 1400, node2→node1 1404 (host MTU 1500)");
  t.match(pathMtuLine([{ from: 'a', to: 'b', pathMtu: 1400, hostMtu: 1500 }, { from: 'b', to: 'a', pathMtu: 8000, hostMtu: 9000 }]), /a→b 1400 \(host 1500\), b→a 8000 \(host 9000\)$/);
  t.same(pathMtuBelowHost([res('a', 'b', null), res('a', 'b', 1400, { hostMtu: null }), res('a', 'b', 1500)]), [], 'only a measured path MTU below a known host MTU');
});

const report: Report = {
  schemaVersion: 1, tool: { name: 'calico-nettest', version: 't' }, startedAt: 'x', finishedAt: 'y',
  nodes: [{ name: 'node1', address: '198.18.1.2' }, { name: 'node2', address: '198.18.2.2' }, { name: 'node3', address: '198.18.3.2' }],
  results, summary: { pass: 2, fail: 2, unknown: 0 }, command: 'mesh', checks: ['mtu'],
};

t.test('the matrix and the HTML show it', async (t) => {
  const text = renderTable(report, { color: false });
  t.match(text, /path MTU below the host's: node1→node2 1400, node2→node1 1404/);
  const html = renderHtml(report);
  t.match(html, /<p class="path-mtu">path MTU below the host&#39;s: node1→node2 1400/);
  t.match(html, /path MTU 1400 \(host 1500\)/);
});

t.test('the diagnosis advises from the lowest path MTU of the cluster', async (t) => {
  const { diagnose } = await import('../../src/report/diagnosis.js');
  const d = diagnose(report);
  const s = d.find((x) => /less than the host MTU/.test(x.text));
  t.ok(s, 'an mtu statement');
  t.equal(s?.where, 'path');
  t.match(s?.advice, /lowest path MTU measured: 1400\); set Calico's MTU .* at most 1380 for IP-in-IP/);
});
