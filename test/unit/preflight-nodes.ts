// preflight across nodes, the pure parts: the control call's validation both ways, gathering with fake
// responders (each way a node can fail to answer), findings in the mesh report (schema, table, HTML).
import t from 'tap';
import fc from 'fast-check';
import { ControlError } from '../../src/coordinator/client.js';
import type { InventoryNode } from '../../src/coordinator/inventory.js';
import type { Finding } from '../../src/preflight/findings.js';
import { gatherPreflight, type PreflightConnection } from '../../src/preflight/gather.js';
import { offloadFindings, parseEthtoolFeatures, txChecksumOn } from '../../src/preflight/offload.js';
import { makePreflightHandler, parsePreflightRequest, parsePreflightResponse } from '../../src/preflight/route.js';
import { makeResult, renderPreflight, validatePreflight } from '../../src/preflight/result.js';
import { findingsLines, groupFindings, nodeList } from '../../src/report/findings.js';
import { renderHtml } from '../../src/report/html.js';
import { validateReport } from '../../src/report/json.js';
import { renderTable } from '../../src/report/table.js';
import { mesh } from '../helpers/report-fixtures.js';
import pc from 'picocolors';

const node = (name: string, i: number): InventoryNode => ({ name, address: `198.18.${i}.1`, roles: [], control: { host: `198.18.${i}.1`, port: 5478 } });
const NODES = ['node1', 'node2', 'node3', 'node4'].map((n, i) => node(n, i + 1));
const finding = (node: string, id = 'ip-forward-disabled', severity: Finding['severity'] = 'error'): Finding => ({ node, id, severity, detail: 'net.ipv4.ip_forward=0', breaks: 'pod networking', fix: 'sysctl -w net.ipv4.ip_forward=1' });

t.test('the request is validated: node name, check ids, CIDRs, addresses', async (t) => {
  t.same(parsePreflightRequest({ node: 'n1', checks: ['bgp', 'bgp', 'ipip'], podCIDR: '10.0.0.0/16', addresses: ['198.18.0.1'] }), { node: 'n1', checks: ['bgp', 'ipip'], podCIDR: '10.0.0.0/16', addresses: ['198.18.0.1'] });
  for (const [bad, msg] of [
    [[], /JSON object/],
    [{ checks: [] }, /node must be/],
    [{ node: '../etc', checks: [] }, /node must be/],
    [{ node: 'n', checks: ['vxaln'] }, /checks must be/],
    [{ node: 'n', checks: [], podCIDR: '10.0.0.0/33' }, /podCIDR/],
    [{ node: 'n', checks: [], addresses: ['::1'] }, /addresses/],
  ] as const) t.throws(() => parsePreflightRequest(bad), { name: 'BadRequest', message: msg });
  fc.assert(fc.property(fc.anything(), (v) => {
    try {
      parsePreflightRequest(v);
    } catch (err) {
      if ((err as Error).name !== 'BadRequest') throw err;
    }
  }));
});

t.test('an answer is believed only when every finding is well-formed and about the node asked', async (t) => {
  t.same(parsePreflightResponse({ findings: [finding('n1')] }, 'n1'), { findings: [finding('n1')] });
  t.match(parsePreflightResponse({ findings: [finding('n2')] }, 'n1'), { problem: /about "n2", not n1/ }, 'a responder speaks for its own node only');
  t.match(parsePreflightResponse({ findings: [{ ...finding('n1'), severity: 'fatal' }] }, 'n1'), { problem: /malformed/ });
  t.match(parsePreflightResponse({}, 'n1'), { problem: /no findings list/ });
  t.same(parsePreflightResponse({ findings: [{ ...finding('n1'), extra: 1 }] }, 'n1'), { findings: [finding('n1')] }, 'unknown fields are dropped');
  fc.assert(fc.property(fc.anything(), (v) => { parsePreflightResponse(v, 'n1'); }));
});

t.test('the handler: POST only, one at a time, logs', async (t) => {
  let release!: () => void;
  const logs: string[] = [];
  const h = makePreflightHandler(() => new Promise((r) => (release = () => r([finding('n1')]))), (m) => logs.push(m));
  const sent: unknown[] = [];
  await t.rejects(h('GET', {}, () => undefined), { name: 'SessionError', message: /GET not allowed/ });
  const first = h('POST', { node: 'n1', checks: [] }, (s, b) => sent.push([s, b]));
  await t.rejects(h('POST', { node: 'n1', checks: [] }, () => undefined), { name: 'SessionError', message: /already running/ }, 'a second call at once is told to retry (409)');
  release();
  await first;
  t.same(sent, [[200, { findings: [finding('n1')] }]]);
  t.same(logs, ['preflight for n1: 1 finding']);
});

t.test('gathering: answers, an old responder, an unreachable one, a lying one, a skipped one', async (t) => {
  const asked: unknown[] = [];
  let closed = 0;
  const connect = (n: InventoryNode): PreflightConnection => ({
    close: () => void closed++,
    preflight: async (body) => {
      asked.push(body);
      if (n.name === 'node2') throw new ControlError('198.18.2.1:5478: no such endpoint: POST /v1/preflight', 404, null);
      if (n.name === 'node3') throw new ControlError('nothing listens on 198.18.3.1:5478 (is the responder running there, on that control port?)', null, 'ECONNREFUSED');
      if (n.name === 'node4') return { findings: [finding('node1')] };
      return { findings: [finding(n.name)] };
    },
  });
  const g = await gatherPreflight([...NODES, node('node5', 5)], { secret: Buffer.alloc(32), checks: ['bgp'], podCIDR: '10.0.0.0/16', connect, skip: new Map([['node5', 'its responder was unreachable during the mesh']]) });
  t.same(g.reached, ['node1']);
  t.same(g.unavailable.sort(), ['node2', 'node3', 'node4', 'node5']);
  const by = (n: string) => g.findings.filter((f) => f.node === n);
  t.same(by('node1').map((f) => f.id), ['ip-forward-disabled']);
  for (const n of ['node2', 'node3', 'node4', 'node5']) t.same(by(n).map((f) => [f.id, f.severity]), [['preflight-unavailable', 'error']], `${n}: not checked, an error`);
  t.match(by('node2')[0]!.detail, /no preflight call \(an older calico-nettest\?\)/);
  t.match(by('node2')[0]!.fix, /upgrade the responder on node2/);
  t.match(by('node3')[0]!.detail, /nothing listens on 198\.18\.3\.1:5478/);
  t.match(by('node4')[0]!.detail, /not believed: finding 0 of its answer is about "node1", not node4/);
  t.match(by('node5')[0]!.detail, /not asked: its responder was unreachable during the mesh/);
  t.equal(asked.length, 4, 'the skipped node is not asked');
  t.same(asked[0], { node: 'node1', checks: ['bgp'], addresses: ['198.18.1.1'], podCIDR: '10.0.0.0/16' });
  t.equal(closed, 4, 'every connection closed');
});

t.test('vxlan-checksum-offload, pure: parse ethtool -k, on → warning, off → nothing, unreadable → info', async (t) => {
  const text = 'Features for vxlan.calico:\nrx-checksumming: on\ntx-checksumming: on\n\ttx-checksum-ipv4: off [fixed]\n\ttx-checksum-ip-generic: on\n\ttx-checksum-ipv6: off [fixed]\nscatter-gather: on\n';
  const f = parseEthtoolFeatures(text);
  t.same(txChecksumOn(f), ['tx-checksum-ip-generic']);
  t.same(txChecksumOn(parseEthtoolFeatures(text.replace('ip-generic: on', 'ip-generic: off'))), []);
  t.same(txChecksumOn(parseEthtoolFeatures('tx-checksumming: on\n')), ['tx-checksumming'], 'only the summary line: it decides');
  const ctx = { node: 'n', checks: ['vxlan' as const] };
  t.same(offloadFindings([{ device: 'vxlan.calico', txChecksumOn: ['tx-checksum-ip-generic'] }], ctx).map((x) => [x.id, x.severity]), [['vxlan-checksum-offload', 'warning']]);
  t.same(offloadFindings([{ device: 'vxlan.calico', txChecksumOn: [] }], ctx), []);
  t.same(offloadFindings([{ device: 'vxlan.calico', txChecksumOn: null, error: 'ethtool is not installed' }], ctx).map((x) => x.severity), ['info']);
  t.match(offloadFindings([{ device: 'vxlan.calico', txChecksumOn: ['x'] }], { node: 'n', checks: [] })[0]!.detail, /the vxlan check is not in this run/);
  fc.assert(fc.property(fc.string(), (s) => { txChecksumOn(parseEthtoolFeatures(s)); }));
});

t.test('grouping: the same finding on many nodes is one line naming them', async (t) => {
  const fs = [finding('node10'), finding('node2'), finding('node1', 'rp-filter-loose', 'warning'), { ...finding('node3'), detail: 'other' }];
  const g = groupFindings(fs);
  t.same(g.map((x) => [x.id, x.nodes]), [['ip-forward-disabled', ['node2', 'node10']], ['ip-forward-disabled', ['node3']], ['rp-filter-loose', ['node1']]]);
  t.equal(nodeList(['a', 'b', 'c'], 2), 'a, b and 1 more');
  const lines = findingsLines(fs, pc.createColors(false)).join('\n');
  t.match(lines, /^Preflight \(host requirements\): 3 errors, 1 warning, 0 info/);
  t.match(lines, /✗ ERROR +ip-forward-disabled +node2, node10\n/);
  t.match(findingsLines([], pc.createColors(false))[0]!, /no findings/);
});

t.test('the mesh report: findings valid in its schema, before the matrices in the table, a section in the HTML', async (t) => {
  const r = { ...mesh(4), findings: [finding('node1'), finding('node2', 'kernel-module-missing', 'warning')] };
  t.same(validateReport(JSON.parse(JSON.stringify(r))), []);
  t.match(validateReport({ ...r, findings: [{ ...finding('n'), severity: 'fatal' }] }).join('\n'), /\/findings\/0\/severity/);
  t.match(validateReport({ ...r, findings: [{ node: 'n' }] }).join('\n'), /\/findings\/0: missing required property/);
  const table = renderTable(r, { color: false });
  const at = table.indexOf('Preflight (host requirements)');
  t.ok(at > 0 && at < table.indexOf('Each row is a sender'), 'findings before the matrices');
  t.notMatch(renderTable(mesh(4), { color: false }), /Preflight/, 'no findings key (--no-preflight): nothing said');
  const html = renderHtml(r);
  const sec = html.indexOf('<section id="findings">');
  t.ok(sec > 0 && sec < html.indexOf('<section id="matrices">'), 'HTML: findings before the heatmaps');
  t.match(html, /data-finding="ip-forward-disabled" data-severity="error" data-nodes="node1"/);
  const evil = renderHtml({ ...r, findings: [{ ...finding('node1'), detail: '<img src=x onerror=alert(1)>' }] });
  const section = evil.slice(evil.indexOf('<section id="findings">'), evil.indexOf('</section>', evil.indexOf('<section id="findings">')));
  t.match(section, /&lt;img src=x onerror=alert\(1\)&gt;/, 'finding text is escaped');
  t.notMatch(section, /<img/);
});

t.test('preflight result formats: json (schema), table, html', async (t) => {
  const res = makeResult(['bgp'], [finding('node1'), finding('node2')], ['node1', 'node2', 'node3']);
  t.same(validatePreflight(JSON.parse(renderPreflight(res, 'json'))), []);
  t.match(renderPreflight(res, 'table'), /✗ ERROR +ip-forward-disabled +node1, node2\n[\s\S]*2 error\(s\)/);
  const html = renderPreflight(res, 'html');
  t.match(html, /^<!DOCTYPE html>[\s\S]*<title>calico-nettest preflight: 2 errors<\/title>/);
  t.match(html, /3 nodes \(node1, node2, node3\)/);
  t.match(html, /<b data-finding-count="error">2<\/b>/);
  t.match(renderPreflight(makeResult(['bgp'], [], ['a']), 'html'), /No findings/);
});
