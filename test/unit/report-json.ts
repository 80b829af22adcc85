import t, { type Test } from 'tap';
import fc from 'fast-check';
import { parseReport, renderJson, ReportError, validateReport, scanJson } from '../../src/report/json.js';
import { fail, mesh } from '../helpers/report-fixtures.js';

const good = mesh(3, { fault: (c, f, to) => (c === 'ipip' && f === 'node1' && to === 'node3' ? fail('ingress-blocked') : undefined) });
good.diagnosis = [{ text: 'x', where: 'destination', flows: 1, advice: 'y', examples: [{ check: 'ipip', from: 'node1', to: 'node3' }] }];
const text = renderJson(good);

function expectError(t: Test, input: string, fragment: string | RegExp) {
  try {
    parseReport(input, 'report.json');
    t.fail(`expected a ReportError for ${JSON.stringify(input.slice(0, 40))}`);
  } catch (e) {
    t.type(e, ReportError);
    t.equal((e as ReportError).code, 'EREPORT');
    t.match((e as Error).message, /^report\.json: /);
    t.match((e as Error).message, fragment);
  }
}

t.test('round trip', async (t) => {
  t.ok(text.endsWith('}\n'));
  t.match(text, /^\{\n {2}"schemaVersion": 1,\n/);
  t.same(parseReport(text, 'report.json'), good);
  t.same(validateReport(good), []);
  t.same(parseReport(`\ufeff${text}`, 'x'), good, 'BOM is ignored');
});

t.test('verify fields and unknown additions stay valid', async (t) => {
  const v = {
    ...good,
    futureField: { a: 1 },
    baseline: { startedAt: 'x', summary: { pass: 1, fail: 0, unknown: 0 }, file: 'b.json' },
    results: good.results.map((r) => ({ ...r, change: 'unchanged', sourceOnly: false, future: 1 })),
  };
  t.same(validateReport(v), []);
  // was: what the baseline said of a fixed flow (verify)
  const fixed = { ...good, results: good.results.map((r) => ({ ...r, change: 'fixed', was: { verdict: 'fail', cause: 'ingress-blocked', rejectedBy: null, where: 'destination' } })) };
  t.same(validateReport(fixed), []);
  const wrong = { ...good, results: good.results.map((r) => ({ ...r, change: 'fixed', was: { verdict: 'fail', cause: 'nonsense', rejectedBy: null } })) };
  t.ok(validateReport(wrong).length > 0, 'a was.cause outside the enum is rejected');
  t.ok(validateReport({ ...good, results: good.results.map((r) => ({ ...r, was: { cause: null, rejectedBy: null } })) }).length > 0, 'was needs its verdict');
});

t.test('truncated at several points', async (t) => {
  for (const cut of [1, 10, 100, Math.floor(text.length / 2), text.length - 3]) {
    expectError(t, text.slice(0, cut), /not JSON \(truncated\? it ends at line \d+, column \d+\)/);
  }
  expectError(t, '{\n  "schemaVersion": 1,\n  "tool": {', /truncated\? it ends at line 3, column 11/);
});

t.test('empty, garbage bytes, syntax errors', async (t) => {
  expectError(t, '', /not JSON \(the file is empty\)/);
  expectError(t, '   \n', /the file is empty/);
  expectError(t, '\u0000\u0001binary', /not JSON \(unexpected byte 0x00 at line 1, column 1 — binary data\?\)/);
  expectError(t, Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0xff, 0xfe]).toString('utf8'), /not JSON \(unexpected byte 0x1f at line 1, column 1/);
  expectError(t, '{"a": 1,}', /unexpected "}" at line 1, column 9/);
  expectError(t, '{"a": 1}\n{"b": 2}', /unexpected "\{" at line 2, column 1/);
  expectError(t, 'schemaVersion: 1\n', /unexpected "s" at line 1, column 1/);
});

t.test('not a report', async (t) => {
  expectError(t, '[1,2]', /not a calico-nettest report \(expected a JSON object, found an array\)/);
  expectError(t, '"hello"', /found a string/);
  expectError(t, 'null', /found null/);
  expectError(t, '{"name":"left-pad","version":"1.3.0"}', /not a calico-nettest report \(it has no tool.name\)/);
  expectError(t, JSON.stringify({ ...good, tool: { name: 'goldpinger', version: '3' } }), /not a calico-nettest report \(its tool.name is "goldpinger"\)/);
});

t.test('schemaVersion', async (t) => {
  expectError(t, JSON.stringify({ ...good, schemaVersion: 2 }), 'schemaVersion 2 is newer than this calico-nettest understands (1)');
  expectError(t, JSON.stringify({ ...good, schemaVersion: 0 }), 'schemaVersion 0 is not supported');
  expectError(t, JSON.stringify({ ...good, schemaVersion: '1' }), 'schemaVersion is "1", expected 1');
  const { schemaVersion: _drop, ...noVersion } = good;
  expectError(t, JSON.stringify(noVersion), 'schemaVersion is missing');
});

t.test('schema violations: first 3 with JSON pointers', async (t) => {
  const bad = structuredClone(good) as unknown as { results: Record<string, unknown>[]; summary: Record<string, unknown> };
  bad.results[1]!['verdict'] = 'maybe';
  bad.results[2]!['cause'] = 'gremlins';
  delete bad.results[4]!['from'];
  bad.summary['pass'] = -1;
  const errs = validateReport(bad);
  t.ok(errs.length >= 4);
  t.ok(errs.includes('/results/1/verdict: must be one of "pass", "fail", "unknown"'), errs.join('\n'));
  t.ok(errs.some((e) => e.startsWith('/results/2/cause: must be one of null, "egress-blocked"')));
  t.ok(errs.includes('/results/4: missing required property "from"'));
  expectError(t, JSON.stringify(bad), /not a valid calico-nettest report: \/results\/1\/verdict: must be one of .*; .*; .*; and \d+ more$/);
  expectError(t, JSON.stringify({ ...good, results: {} }), '/results: must be array');
  expectError(t, JSON.stringify({ ...good, ports: { vxlan: 70000 } }), '/ports/vxlan: must be <= 65535');
});

t.test('scanJson agrees with JSON.parse', async (t) => {
  for (const s of ['{}', '[]', '[1,-2.5e3,"a\\u00e9",true,false,null,{"x":[]}]', ' 0 ', '"\\ud800"']) t.equal(scanJson(s), null, s);
  for (const s of ['01', '[1,]', '{"a"}', '"\\x"', '-', '1.', '1e', 'tru', '"a\nb"']) {
    t.not(scanJson(s), null, s);
    t.throws(() => JSON.parse(s));
  }
  const deep = '['.repeat(100000);
  t.same(scanJson(deep), { pos: 100000, eof: true }, 'no stack overflow');
});

t.test('property: any truncation of a valid report is a ReportError', async (t) => {
  const small = renderJson(mesh(2, { checks: ['bgp'] }));
  const body = small.trimEnd();
  fc.assert(
    fc.property(fc.integer({ min: 0, max: body.length - 1 }), (cut) => {
      try {
        parseReport(small.slice(0, cut), 'r.json');
        return false;
      } catch (e) {
        return e instanceof ReportError && /not JSON/.test(e.message);
      }
    }),
    { numRuns: 400 },
  );
  // and every single cut, exhaustively, never throws anything but ReportError
  for (let cut = 0; cut < body.length; cut++) {
    try {
      parseReport(small.slice(0, cut), 'r.json');
      t.fail(`cut ${cut} parsed`);
    } catch (e) {
      if (!(e instanceof ReportError)) t.fail(`cut ${cut}: ${String(e)}`);
    }
  }
  t.pass('all cuts rejected');
});

t.test('property: arbitrary strings never throw anything but ReportError', async (t) => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.json(), fc.string({ unit: 'binary' })), (s) => {
      try {
        parseReport(s, 'r.json');
        return false;
      } catch (e) {
        return e instanceof ReportError;
      }
    }),
    { numRuns: 500 },
  );
  t.pass();
});

t.test('jsonChunks: the same document as renderJson, in pieces, for any size', async (t) => {
  const { jsonChunks } = await import('../../src/report/json.js');
  for (const n of [2, 5]) {
    const r = mesh(n, { fault: (c, _f, to) => (c === 'bgp' && to === 'node2' ? fail('ingress-blocked') : undefined) });
    const pieces = [...jsonChunks(r, 200)];
    t.ok(pieces.length > 1, 'several pieces');
    t.same(JSON.parse(pieces.join('')), JSON.parse(renderJson(r)), `${n} nodes: same document`);
    t.same(parseReport(pieces.join(''), 'x'), r);
  }
  const empty = { ...mesh(2), results: [] };
  t.same(JSON.parse([...jsonChunks(empty)].join('')), JSON.parse(renderJson(empty)), 'no results');
});
