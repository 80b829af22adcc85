// The mtu search: it finds the exact largest size a simulated path carries, within its round bound,
// uses a frag-needed's next-hop MTU at once, survives lost copies, and stops below the floor.
import t from 'tap';
import fc from 'fast-check';
import { advance, COMMON_PATH_MTUS, DEFAULT_SEARCH, MAX_SIZES_PER_ROUND, nextSizes, roundSchedule, roundsFor, startSearch, type SearchOptions, type SearchState } from '../../src/checks/mtu-search.js';

/** Run the search against a path that carries sizes ≤ pathMtu; `lose` drops a size (loss), `hint` mimics frag-needed. */
function simulate(hostMtu: number, pathMtu: number, o: SearchOptions, opts: { hint?: boolean; lose?: (size: number, round: number) => boolean } = {}) {
  let s: SearchState = startSearch(hostMtu, o, opts.hint ? pathMtu : null);
  let largest = 0;
  const sentAll: number[][] = [];
  while (!s.end) {
    const sizes = nextSizes(s, o);
    if (sizes.length === 0) throw new Error(`no sizes but not over: ${JSON.stringify(s)}`);
    sentAll.push(sizes);
    for (const x of sizes) if (x <= pathMtu && !opts.lose?.(x, s.rounds)) largest = Math.max(largest, x);
    const hint = opts.hint && sizes.some((x) => x > pathMtu) ? pathMtu : null;
    s = advance(s, sizes, largest, hint, o);
  }
  return { s, sentAll };
}

t.test('finds the exact path MTU within the bound', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 600, max: 9000 }), fc.integer({ min: 1, max: 16 }), fc.double({ min: 0, max: 1, noNaN: true }), (hostMtu, perRound, frac) => {
      const o = { floor: 576, perRound, maxRounds: 40 };
      const pathMtu = 576 + Math.floor(frac * (hostMtu - 1 - 576));
      const { s, sentAll } = simulate(hostMtu, pathMtu, o);
      if (s.end !== 'converged' || s.lo !== pathMtu || s.hi !== pathMtu + 1) return false;
      if (sentAll.length > roundsFor(hostMtu - 576, perRound) + 1) return false;
      return sentAll.every((r) => r.length <= perRound + 1 && r.every((x) => x >= 576 && x < hostMtu));
    }),
  );
});

t.test('the default search: a common path MTU in one round, one just above it (veth VLAN slack) in two, any in three', async (t) => {
  for (const pathMtu of COMMON_PATH_MTUS) {
    const { s, sentAll } = simulate(1500, pathMtu, DEFAULT_SEARCH);
    t.same([s.end, s.lo, sentAll.length], ['converged', pathMtu, 1], `common ${pathMtu}: one round`);
  }
  for (const pathMtu of [1404, 1384, 1454]) t.equal(simulate(1500, pathMtu, DEFAULT_SEARCH).sentAll.length, 2, `${pathMtu}: two rounds`);
  for (const pathMtu of [576, 577, 1000, 1300, 1499]) {
    const { s, sentAll } = simulate(1500, pathMtu, DEFAULT_SEARCH);
    t.equal(s.lo, pathMtu, `path ${pathMtu}`);
    t.ok(sentAll.length <= 3, `${pathMtu}: ${sentAll.length} rounds`);
  }
  fc.assert(
    fc.property(fc.integer({ min: 600, max: 9000 }), fc.double({ min: 0, max: 1, noNaN: true }), (hostMtu, frac) => {
      const pathMtu = 576 + Math.floor(frac * (hostMtu - 1 - 576));
      const { s, sentAll } = simulate(hostMtu, pathMtu, DEFAULT_SEARCH);
      // Exact, and no round asks for more sizes than one probe request may carry.
      return s.end === 'converged' && s.lo === pathMtu && sentAll.every((r) => r.length >= 1 && r.length <= MAX_SIZES_PER_ROUND && new Set(r).size === r.length);
    }),
  );
});

t.test('a frag-needed next-hop MTU (from the host-size probe) ends it in one round', async (t) => {
  for (const pathMtu of [1000, 1400, 1480]) {
    const { s, sentAll } = simulate(1500, pathMtu, DEFAULT_SEARCH, { hint: true });
    t.equal(s.lo, pathMtu);
    t.equal(sentAll.length, 1, `${pathMtu}: ${sentAll.length} rounds`);
    t.ok(sentAll[0]!.includes(pathMtu), 'the named MTU is tried');
  }
});

t.test('bounded: stops after maxRounds with an interval holding the answer', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 577, max: 1499 }), fc.integer({ min: 1, max: 3 }), (pathMtu, maxRounds) => {
      const o = { floor: 576, perRound: 1, maxRounds };
      const { s, sentAll } = simulate(1500, pathMtu, o);
      return sentAll.length <= maxRounds && (s.lo ?? 0) <= pathMtu && pathMtu < s.hi && (s.end === 'converged' || s.end === 'bounded');
    }),
  );
});

t.test('nothing below the floor arrives: not an MTU limit', async (t) => {
  const { s, sentAll } = simulate(1500, 100, DEFAULT_SEARCH);
  t.equal(s.end, 'nothing-arrives');
  t.equal(s.lo, null);
  t.equal(sentAll.length, 1, 'one round says so');
  t.ok(sentAll[0]!.includes(576));
  t.equal(startSearch(500).end, 'nothing-arrives', 'a host MTU at the floor has nothing to search');
});

t.test('loss of a copy costs precision, never a size that did not arrive', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 577, max: 1499 }), fc.array(fc.boolean(), { minLength: 64, maxLength: 64 }), (pathMtu, coin) => {
      let k = 0;
      const { s } = simulate(1500, pathMtu, DEFAULT_SEARCH, { lose: () => coin[k++ % coin.length] === true });
      // It never claims more than the path carries, and the answer interval still holds the truth.
      return (s.lo === null || s.lo <= pathMtu) && s.hi > (s.lo ?? 0);
    }),
  );
});

t.test('rejects nonsense options', async (t) => {
  t.throws(() => startSearch(1500, { floor: 0, perRound: 1, maxRounds: 1 }), RangeError);
  t.throws(() => startSearch(1500, { floor: 576, perRound: 0, maxRounds: 1 }), RangeError);
  t.throws(() => startSearch(1500, { floor: 576, perRound: 1, maxRounds: 0 }), RangeError);
  t.throws(() => startSearch(1.5), RangeError);
  t.throws(() => startSearch(1500, { floor: 576, perRound: 32, maxRounds: 1 }), RangeError, 'more than one probe request carries');
  t.throws(() => startSearch(1500, { ...DEFAULT_SEARCH, dense: 33 }), RangeError);
});

t.test('the round schedule is paced, interleaves copies and goes largest first', async (t) => {
  const s = roundSchedule([600, 1400, 1000], 2, 5);
  t.same(s.map((x) => x.size), [1400, 1000, 600, 1400, 1000, 600]);
  t.same(s.map((x) => x.atMs), [0, 5, 10, 15, 20, 25]);
  t.same(s.map((x) => x.copy), [0, 0, 0, 1, 1, 1]);
  t.same(roundSchedule([], 3, 5), []);
});
