import t from 'tap';
import { renderJunit, xmlEscape } from '../../src/report/junit.js';
import { fail, mesh, unknown } from '../helpers/report-fixtures.js';

/** A tiny, strict XML reader (elements, attributes, text, entities): enough to check well-formedness. */
interface El {
  name: string;
  attrs: Record<string, string>;
  children: El[];
  text: string;
}
function parseXml(xml: string): El {
  let i = 0;
  const decode = (s: string) =>
    s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_m, e: string) => {
      if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
      return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[e]!;
    });
  const bad = (why: string): never => {
    throw new Error(`${why} at ${i}: ${JSON.stringify(xml.slice(i, i + 30))}`);
  };
  if (xml.startsWith('<?xml')) i = xml.indexOf('?>') + 2;
  const skipWs = () => {
    while (/\s/.test(xml[i] ?? '')) i++;
  };
  const element = (): El => {
    if (xml[i] !== '<') bad('expected <');
    i++;
    const name = /^[A-Za-z_][\w.-]*/.exec(xml.slice(i))?.[0] ?? bad('name');
    i += name.length;
    const el: El = { name, attrs: {}, children: [], text: '' };
    for (;;) {
      skipWs();
      if (xml.startsWith('/>', i)) {
        i += 2;
        return el;
      }
      if (xml[i] === '>') {
        i++;
        break;
      }
      const an = /^[A-Za-z_][\w.-]*/.exec(xml.slice(i))?.[0] ?? bad('attribute');
      i += an.length;
      if (xml[i] !== '=' || xml[i + 1] !== '"') bad('attribute value');
      const end = xml.indexOf('"', i + 2);
      const raw = xml.slice(i + 2, end);
      if (/[<]/.test(raw) || /&(?!(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);)/i.test(raw)) bad('unescaped attribute');
      if (an in el.attrs) bad('duplicate attribute');
      el.attrs[an] = decode(raw);
      i = end + 1;
    }
    for (;;) {
      const lt = xml.indexOf('<', i);
      if (lt < 0) bad('unclosed');
      const raw = xml.slice(i, lt);
      if (/&(?!(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);)/i.test(raw)) bad('unescaped text');
      el.text += decode(raw);
      i = lt;
      if (xml.startsWith(`</${name}>`, i)) {
        i += name.length + 3;
        return el;
      }
      if (xml.startsWith('</', i)) bad('mismatched close');
      el.children.push(element());
    }
  };
  skipWs();
  const root = element();
  skipWs();
  if (i !== xml.length) bad('trailing content');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/.test(xml)) throw new Error('control character in XML');
  return root;
}
const all = (el: El, name: string): El[] => [...(el.name === name ? [el] : []), ...el.children.flatMap((c) => all(c, name))];

t.test('suites, cases, failures, errors', async (t) => {
  const r = mesh(4, {
    fault: (c, f, to) => {
      if (c === 'ipip' && to === 'node3') return fail('ingress-blocked', { detail: 'arrived on eth0, never reached a socket' });
      if (c === 'bgp' && f === 'node1' && to === 'node2') return unknown({ detail: 'responder down' });
      if (c === 'vxlan' && f === 'node2' && to === 'node1') return { verdict: 'unknown', cause: 'not-probed', detail: 'interrupted' };
      return undefined;
    },
  });
  const doc = parseXml(renderJunit(r));
  t.equal(doc.name, 'testsuites');
  t.same(doc.attrs['tests'], '36');
  t.same(doc.attrs['failures'], '3');
  t.same(doc.attrs['errors'], '1');
  t.same(doc.attrs['skipped'], '1');
  const suites = all(doc, 'testsuite');
  t.same(suites.map((s) => s.attrs['name']), ['calico-nettest bgp', 'calico-nettest ipip', 'calico-nettest vxlan']);
  t.same(suites.map((s) => s.attrs['tests']), ['12', '12', '12']);
  t.same(suites.map((s) => s.attrs['failures']), ['0', '3', '0']);
  t.equal(all(doc, 'testcase').length, 36);
  const failures = all(doc, 'failure');
  t.equal(failures.length, 3);
  t.equal(failures[0]!.attrs['type'], 'ingress-blocked');
  t.equal(failures[0]!.attrs['message'], 'ingress-blocked: arrived on eth0, never reached a socket');
  const tc = all(doc, 'testcase').find((c) => c.children.some((x) => x.name === 'failure'))!;
  t.equal(tc.attrs['classname'], 'ipip');
  t.equal(tc.attrs['name'], 'node1 -> node3');
  t.equal(all(doc, 'error')[0]!.attrs['message'], 'responder-unreachable: responder down');
  t.equal(all(doc, 'skipped').length, 1);
  const passCase = all(doc, 'testcase').find((c) => c.attrs['classname'] === 'bgp' && c.attrs['name'] === 'node2 -> node1')!;
  t.equal(passCase.attrs['time'], '0.000400');
});

t.test('escaping of <&"\' and control characters', async (t) => {
  const hostile = `a<b>&"c'\u0000\u0007\u001b[31m\ud800z`;
  t.equal(xmlEscape(hostile), 'a&lt;b&gt;&amp;&quot;c&apos;[31mz');
  const r = mesh(2, {
    checks: ['bgp'],
    name: (i) => (i === 1 ? `<node "1" & 'x'>` : 'n2\u0001'),
    fault: (_c, f) => (f.startsWith('<') ? fail('rejected', { detail: `reset by </failure><x> & \u0008 "q"`, rejectedBy: '1.2.3.4' }) : undefined),
  });
  const xml = renderJunit(r);
  const doc = parseXml(xml);
  const cases = all(doc, 'testcase');
  t.same(cases.map((c) => c.attrs['name']).sort(), [`<node "1" & 'x'> -> n2`, `n2 -> <node "1" & 'x'>`].sort());
  const f = all(doc, 'failure')[0]!;
  t.equal(f.attrs['message'], 'rejected: reset by </failure><x> &  "q"');
  t.match(f.text, /rejected by 1\.2\.3\.4/);
});

t.test('empty report', async (t) => {
  const r = mesh(0);
  const doc = parseXml(renderJunit(r));
  t.equal(doc.attrs['tests'], '0');
  t.equal(all(doc, 'testsuite').length, 0);
});
