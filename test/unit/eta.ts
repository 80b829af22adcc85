// The progress bar's time left (src/cli/eta.ts): exact figures, bursty runs that made cli-progress's own
// estimate jump to 0, the bar line drawn with a fake clock, and properties over random runs.
import t from 'tap';
import fc from 'fast-check';
import { createRequire } from 'node:module';
import cliProgress from 'cli-progress';
import { etaSeconds, formatEta, progressFormat } from '../../src/cli/eta.js';

const require = createRequire(import.meta.url);

t.test('etaSeconds: the whole run\'s rate; unknown before anything is done or a second has passed; 0 when done', async (t) => {
  t.equal(etaSeconds({ startedAt: 0, now: 100_000, done: 250, total: 1000 }), 300, '250 in 100 s -> 750 in 300 s');
  t.equal(etaSeconds({ startedAt: 5000, now: 15_000, done: 1, total: 3 }), 20, 'the start counts, not the clock\'s origin');
  t.equal(etaSeconds({ startedAt: 0, now: 10_000, done: 0, total: 10 }), null, 'nothing done yet');
  t.equal(etaSeconds({ startedAt: 0, now: 500, done: 5, total: 10 }), null, 'under a second: no rate yet');
  t.equal(etaSeconds({ startedAt: 0, now: 500, done: 10, total: 10 }), 0, 'all done');
  t.equal(etaSeconds({ startedAt: 0, now: 0, done: 0, total: 0 }), 0, 'an empty plan');
  t.equal(etaSeconds({ startedAt: 0, now: 2000, done: 3, total: 10 }), 5, 'rounded up: 4.67 s -> 5 s');
});

t.test('formatEta', async (t) => {
  t.equal(formatEta(null), '--');
  t.equal(formatEta(Number.POSITIVE_INFINITY), '--');
  t.equal(formatEta(0), '0s');
  t.equal(formatEta(59), '59s');
  t.equal(formatEta(60), '1m00s');
  t.equal(formatEta(280), '4m40s');
  t.equal(formatEta(3599), '59m59s');
  t.equal(formatEta(3600), '1h00m');
  t.equal(formatEta(7620), '2h07m');
  t.equal(formatEta(100 * 3600), '>99h');
});

// 1005 flows; every 10 s a burst of 67 outcomes lands within 17 ms, several in the same millisecond (silent
// probes waiting out their timeouts together), as in the run. The bar redraws every 100 ms.
const TOTAL = 1005;
const BURST = 67;
const PERIOD_MS = 10_000;
function burstyRun(): { updates: { at: number; done: number }[]; endAt: number } {
  const updates: { at: number; done: number }[] = [];
  let done = 0;
  for (let burst = 1; done < TOTAL; burst++) {
    for (let i = 0; i < BURST && done < TOTAL; i++) updates.push({ at: burst * PERIOD_MS + Math.floor(i / 4), done: ++done });
  }
  return { updates, endAt: updates[updates.length - 1]!.at };
}

t.test('a bursty run: cli-progress\'s own estimate says 0 s with minutes to go; ours never undershoots, overshoots by at most one wait spread over the run', async (t) => {
  const { updates, endAt } = burstyRun();
  // cli-progress's estimate as it was configured at first (etaBuffer 10, recomputed per update): the jump.
  const ETA = require('cli-progress/lib/eta.js') as new (len: number, t: number, v: number) => { update(t: number, v: number, total: number): void; getTime(): number | string };
  const old = new ETA(10, 0, 0);
  let oldLie = '';
  let u = 0;
  let done = 0;
  const problems: string[] = [];
  for (let now = 100; now <= endAt + 100; now += 100) {
    for (; u < updates.length && updates[u]!.at <= now; u++) {
      done = updates[u]!.done;
      old.update(updates[u]!.at, done, TOTAL);
    }
    const truth = Math.max(0, endAt - now) / 1000;
    const oldLeft = old.getTime();
    if (!oldLie && done < TOTAL && typeof oldLeft === 'number' && oldLeft <= 1 && truth > 60) oldLie = `${oldLeft} s at ${done}/${TOTAL}, ${truth.toFixed(0)} s to go`;
    const left = etaSeconds({ startedAt: 0, now, done, total: TOTAL });
    if (done === 0) {
      if (left !== null) problems.push(`${now} ms: ${left} s before any outcome`);
      continue;
    }
    if (left === null) {
      problems.push(`${now} ms: no estimate with ${done} done`);
      continue;
    }
    if (done === TOTAL) {
      if (left !== 0) problems.push(`${now} ms: ${left} s left when all is done`);
      continue;
    }
    if (left === 0) problems.push(`${now} ms: 0 s with ${TOTAL - done} flows to go`);
    // Never a promise shorter than the truth (the lie), and too long by at most one burst's wait scaled
    // by total/done (between bursts the run's rate falls, at a burst it catches up): +1 s for rounding up.
    if (left < truth - 1) problems.push(`${now} ms: ${left} s, truth ${truth.toFixed(1)} s`);
    const over = (PERIOD_MS / 1000) * (TOTAL / done) + 1;
    if (left > truth + over) problems.push(`${now} ms: ${left} s, truth ${truth.toFixed(1)} s, more than ${over.toFixed(1)} s over`);
  }
  t.not(oldLie, '', `the simulation reproduces the issue: cli-progress said ${oldLie || 'nothing wrong'}`);
  t.same(problems, [], 'ours: unknown before the first outcome, then within its bounds at every redraw, 0 only when done');
  t.equal(u, updates.length, 'the whole run was replayed');
});

t.test('properties: null or a finite non-negative whole number; 0 exactly when done; more done -> no more time left', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 1e9 }), fc.integer({ min: 0, max: 1e8 }), fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 0, max: 1e6 }), (startedAt, elapsed, a, b) => {
      const total = Math.max(a, b);
      const done = Math.min(a, b);
      const left = etaSeconds({ startedAt, now: startedAt + elapsed, done, total });
      if (left === null) return done === 0 || elapsed < 1000;
      if (!Number.isInteger(left) || left < 0) return false;
      if ((left === 0) !== (done >= total)) return false;
      const more = etaSeconds({ startedAt, now: startedAt + elapsed, done: Math.min(total, done + 1), total });
      return more !== null && more <= left;
    }),
  );
  t.pass('held for 100 random runs');
});

t.test('progressFormat: the bar line\'s {left} is asked of the clock at each redraw, between outcomes too', async (t) => {
  let clock = 0;
  const format = progressFormat('mesh [{bar}] {value}/{total} flows | {failed} failing | {left} left', () => clock);
  // The options as cli-progress derives them for a bar (pre-rendered bar strings, padding).
  const options = (new cliProgress.SingleBar({ format, barsize: 10, barCompleteChar: '#', barIncompleteChar: '-' }) as unknown as { options: cliProgress.Options }).options;
  const params = (value: number) => ({ progress: value / 1005, eta: 0, startTime: 0, stopTime: null, total: 1005, value, maxWidth: 200 });
  clock = 500;
  t.equal(format(options, params(0), { failed: 0 }), 'mesh [----------] 0/1005 flows | 0 failing | -- left');
  clock = 140_000;
  t.equal(format(options, params(339), { failed: 3 }), 'mesh [###-------] 339/1005 flows | 3 failing | 4m36s left', '666 left at 339 per 140 s');
  clock = 150_000;
  t.equal(format(options, params(339), { failed: 3 }), 'mesh [###-------] 339/1005 flows | 3 failing | 4m55s left', 'no outcome for 10 s: the rate fell, more time left');
  t.equal(format(options, { ...params(1005), stopTime: 150_000 }, { failed: 3 }), 'mesh [##########] 1005/1005 flows | 3 failing | 0s left');
});
