// The shared report fixture builds what it says.
import t from 'tap';
import { fail, mesh } from '../helpers/report-fixtures.js';

t.test('mesh fixture', async (t) => {
  const r = mesh(4, { fault: (c, f, to) => (c === 'ipip' && to === 'node2' ? fail('ingress-blocked') : undefined) });
  t.equal(r.results.length, 4 * 3 * 3);
  t.same(r.summary, { pass: 33, fail: 3, unknown: 0 });
});
