import t from 'tap';
import fc from 'fast-check';
import { greedyCover, Heap } from '../../src/report/diagnosis/cover.js';

interface S {
  id: number;
  members: number[];
}
const byId = (a: S, b: S) => a.id < b.id;

/** The plain greedy, re-counting every set at every step: what the lazy one must equal. */
function naive(sets: S[], items: number): S[] {
  const covered = new Set<number>();
  const chosen: S[] = [];
  for (;;) {
    let best: S | undefined;
    let bestU = 0;
    for (const s of sets) {
      const u = new Set(s.members.filter((m) => !covered.has(m))).size;
      if (u > bestU || (u === bestU && u > 0 && best && byId(s, best))) {
        best = s;
        bestU = u;
      }
    }
    if (!best || bestU === 0 || covered.size === items) return chosen;
    chosen.push(best);
    for (const m of best.members) covered.add(m);
  }
}

const instance = fc.integer({ min: 0, max: 30 }).chain((items) =>
  fc.record({
    items: fc.constant(items),
    sets: fc.array(fc.array(fc.integer({ min: 0, max: Math.max(0, items - 1) }), { maxLength: 12 }), { maxLength: 25 }).map((ms) =>
      items === 0 ? [] : ms.map((members, id) => ({ id, members })),
    ),
  }),
);

t.test('picks exactly what the plain greedy picks', async (t) => {
  fc.assert(
    fc.property(instance, ({ items, sets }) => {
      t.same(greedyCover(sets, items, byId).map((s) => s.id), naive(sets, items).map((s) => s.id));
    }),
    { numRuns: 2000 },
  );
});

t.test('covers every coverable item, each pick adds something, nothing is picked twice', async (t) => {
  fc.assert(
    fc.property(instance, ({ items, sets }) => {
      const chosen = greedyCover(sets, items, byId);
      const union = new Set(sets.flatMap((s) => s.members));
      const covered = new Set<number>();
      for (const s of chosen) {
        const before = covered.size;
        for (const m of s.members) covered.add(m);
        if (covered.size === before) return false;
      }
      return covered.size === union.size && new Set(chosen).size === chosen.length;
    }),
    { numRuns: 2000 },
  );
});

t.test('the largest set first; a tie goes to the tie order; a set made redundant is skipped', async (t) => {
  const a = { id: 0, members: [0, 1] };
  const b = { id: 1, members: [2, 3, 4] };
  const c = { id: 2, members: [0, 1, 2, 3] };
  // c covers 4, then a and b each cover one new item... b covers 4 only; a covers nothing new
  t.same(greedyCover([a, b, c], 5, byId).map((s) => s.id), [2, 1]);
  // equal size: the tie order decides, both ways
  const x = { id: 0, members: [0] };
  const y = { id: 1, members: [0] };
  t.same(greedyCover([x, y], 1, byId).map((s) => s.id), [0]);
  t.same(greedyCover([x, y], 1, (p, q) => p.id > q.id).map((s) => s.id), [1]);
  t.same(greedyCover([], 3, byId), []);
  t.same(greedyCover([{ id: 0, members: [] }], 0, byId), []);
});

t.test('duplicate members count once', async (t) => {
  const dup = { id: 0, members: [0, 0, 0] };
  const two = { id: 1, members: [1, 2] };
  t.same(greedyCover([dup, two], 3, byId).map((s) => s.id), [1, 0]);
});

t.test('the heap pops in order', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.integer()), (xs) => {
      const h = new Heap<number>((a, b) => a < b);
      for (const v of xs) h.push(v);
      const out: number[] = [];
      while (h.size > 0) out.push(h.pop()!);
      t.same(out, [...xs].sort((a, b) => a - b));
      t.equal(h.pop(), undefined);
    }),
  );
});
