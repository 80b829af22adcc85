// Adaptive timeouts: RFC 6298 arithmetic, clamping, per-peer with node-wide fallback.
import t from 'tap';
import { PeerTimeouts, RttEstimator } from '../../src/checks/rtt.js';

t.test('RFC 6298 update', async (t) => {
  const e = new RttEstimator();
  t.equal(e.raw(), null);
  e.sample(100);
  t.equal(e.srtt, 100);
  t.equal(e.rttvar, 50);
  t.equal(e.raw(), 300);
  e.sample(200);
  t.equal(e.rttvar, 0.75 * 50 + 0.25 * 100);
  t.equal(e.srtt, 0.875 * 100 + 0.125 * 200);
  e.sample(-1);
  e.sample(Number.NaN);
  t.equal(e.samples, 2, 'nonsense samples are ignored');
});

t.test('clamped, per peer, falling back to the node-wide estimate, then the initial value', async (t) => {
  const p = new PeerTimeouts({ initialMs: 1000, minMs: 100, maxMs: 3000 });
  t.equal(p.timeout('a'), 1000);
  p.sample('a', 0.5);
  t.equal(p.timeout('a'), 100, 'clamped to the minimum');
  t.equal(p.timeout('b'), 100, 'b has no sample: node-wide estimate');
  for (let i = 0; i < 20; i++) p.sample('c', 5000);
  t.equal(p.timeout('c'), 3000, 'clamped to the maximum');
});
