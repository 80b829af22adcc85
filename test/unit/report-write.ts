import t from 'tap';
import { readdir, readFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { renderReport, summarize, withDiagnosis, writeFileAtomic } from '../../src/report/write.js';
import { parseReport } from '../../src/report/json.js';
import { fail, mesh } from '../helpers/report-fixtures.js';

t.test('renderReport picks the renderer and fills in the diagnosis', async (t) => {
  const r = mesh(3, { fault: (c, _f, to) => (c === 'ipip' && to === 'node2' ? fail('ingress-blocked') : undefined) });
  t.equal(r.diagnosis, undefined);
  const json = parseReport(renderReport(r, 'json', { color: false }), 'x');
  t.equal(json.diagnosis?.length, 1);
  t.match(renderReport(r, 'table', { color: false }), /node2's own firewall/);
  t.match(renderReport(r, 'junit', { color: false }), /^<\?xml/);
  t.match(renderReport(r, 'html', { color: false }), /^<!DOCTYPE html>/);
  t.throws(() => renderReport(r, 'yaml' as never, { color: false }), TypeError);
  const given = { ...r, diagnosis: [] };
  t.equal(withDiagnosis(given), given, 'an attached diagnosis is kept');
});

t.test('summarize', async (t) => {
  t.same(summarize([{ verdict: 'pass' }, { verdict: 'fail' }, { verdict: 'unknown' }, { verdict: 'pass' }]), { pass: 2, fail: 1, unknown: 1 });
});

t.test('writeFileAtomic', async (t) => {
  const dir = t.testdir({ 'old.json': 'old' });
  await writeFileAtomic(join(dir, 'old.json'), 'new content\n');
  t.equal(await readFile(join(dir, 'old.json'), 'utf8'), 'new content\n');
  await writeFileAtomic(join(dir, 'fresh.bin'), new Uint8Array([1, 2, 3]));
  t.same([...(await readFile(join(dir, 'fresh.bin')))], [1, 2, 3]);
  t.same((await readdir(dir)).sort(), ['fresh.bin', 'old.json'], 'no temp files left');
  // rename onto a directory fails: the temp file must be removed
  await mkdir(join(dir, 'adir'));
  await t.rejects(writeFileAtomic(join(dir, 'adir'), 'x'));
  t.same((await readdir(dir)).sort(), ['adir', 'fresh.bin', 'old.json'], 'temp file removed on failure');
  await t.rejects(writeFileAtomic(join(dir, 'missing', 'x.json'), 'x'), { code: 'ENOENT' });
});
