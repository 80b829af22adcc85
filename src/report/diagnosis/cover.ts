// Greedy set cover: pick the set covering the most items not yet covered, ties by the caller's order,
// until every coverable item is covered. Lazily re-evaluated (a set's count only falls, so a stale count
// at the top of a heap is re-counted, not every set after every pick); picks exactly what the plain
// greedy would. Pure: it takes the sets and returns the chosen ones, in the order chosen.

export interface CoverSet {
  /** Items (0 … items-1) the set covers; duplicates are counted once. */
  readonly members: readonly number[];
}

/**
 * @param sets candidate sets
 * @param items how many items there are (members are below it)
 * @param tieBefore for two sets covering as many new items: whether a comes first (a strict total order)
 */
export function greedyCover<T extends CoverSet>(sets: Iterable<T>, items: number, tieBefore: (a: T, b: T) => boolean): T[] {
  interface Entry {
    set: T;
    uncovered: number;
  }
  const before = (a: Entry, b: Entry): boolean => (a.uncovered !== b.uncovered ? a.uncovered > b.uncovered : tieBefore(a.set, b.set));
  const covered = new Uint8Array(items);
  const heap = new Heap<Entry>(before);
  for (const set of sets) heap.push({ set, uncovered: distinctUncovered(set.members, covered) });
  const chosen: T[] = [];
  let left = items;
  while (left > 0 && heap.size > 0) {
    const e = heap.pop()!;
    const u = distinctUncovered(e.set.members, covered);
    if (u === 0) continue;
    if (u !== e.uncovered) {
      e.uncovered = u;
      const top = heap.peek();
      if (top && before(top, e)) {
        heap.push(e);
        continue;
      }
    }
    chosen.push(e.set);
    for (const m of e.set.members) {
      if (covered[m] === 0) {
        covered[m] = 1;
        left--;
      }
    }
  }
  return chosen;
}

/** Members not yet covered, each counted once (a scratch mark, undone before returning). */
function distinctUncovered(members: readonly number[], covered: Uint8Array): number {
  let u = 0;
  for (const m of members) {
    if (covered[m] === 0) {
      covered[m] = 2;
      u++;
    }
  }
  for (const m of members) if (covered[m] === 2) covered[m] = 0;
  return u;
}

/** Minimal binary heap ordered by `before`. */
export class Heap<T> {
  private readonly a: T[] = [];
  constructor(private readonly before: (x: T, y: T) => boolean) {}
  get size(): number {
    return this.a.length;
  }
  peek(): T | undefined {
    return this.a[0];
  }
  push(v: T): void {
    const a = this.a;
    a.push(v);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  pop(): T | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let b = i;
        if (l < a.length && this.before(a[l]!, a[b]!)) b = l;
        if (r < a.length && this.before(a[r]!, a[b]!)) b = r;
        if (b === i) break;
        [a[i], a[b]] = [a[b]!, a[i]!];
        i = b;
      }
    }
    return top;
  }
}
