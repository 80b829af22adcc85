// Will a run fit in memory? An estimate from the number of flows, made before the plan is built, so a
// mesh too large for this process is refused in a second with what to do (exit 3), not killed by V8
// minutes later. Pure: counts and limits in, a verdict out.

/**
 * Peak bytes per flow of a whole mesh run (plan, packed flows, outcomes, witness tables, results, the
 * diagnosis, the streamed JSON): measured with the CLI on a 1000-node inventory (4 011 984 flows) at
 * 1476 MB peak RSS (bench/results/scale.md), rounded up.
 */
export const BYTES_PER_FLOW = 370;
/**
 * The part of it on V8's heap (what --max-old-space-size bounds): the same run finished with
 * --max-old-space-size=1024, so at most 1024 MB / 4 011 984 flows ≈ 268 B; 250 taken with the base below.
 */
export const HEAP_BYTES_PER_FLOW = 250;
/** Node itself, the modules and the inventory. */
export const BASE_BYTES = 80 * 1024 * 1024;

export interface MemoryLimits {
  /** V8's heap limit (v8.getHeapStatistics().heap_size_limit). */
  heapLimit: number;
  /** os.totalmem(). */
  totalMem: number;
}

export interface MemoryVerdict {
  needBytes: number;
  fits: boolean;
  /** Set when it does not fit: what it needs, why not, and what to do. */
  message?: string;
}

const gb = (b: number) => `${(b / 1024 ** 3).toFixed(b < 10 * 1024 ** 3 ? 1 : 0)} GB`;

export function estimateRunBytes(flows: number): number {
  return BASE_BYTES + flows * BYTES_PER_FLOW;
}

export function estimateHeapBytes(flows: number): number {
  return BASE_BYTES + flows * HEAP_BYTES_PER_FLOW;
}

/** Nodes per group of a split inventory that fit in `bytes` (flows grow with the square of the nodes). */
export function nodesThatFit(nodes: number, flows: number, bytes: number, perFlow: number = BYTES_PER_FLOW): number {
  if (flows === 0) return nodes;
  const perFlows = Math.max(0, bytes - BASE_BYTES) / perFlow;
  return Math.max(2, Math.min(nodes, Math.floor(nodes * Math.sqrt(perFlows / flows))));
}

export function checkRunMemory(run: { nodes: number; flows: number; command: string }, limits: MemoryLimits): MemoryVerdict {
  const needBytes = estimateRunBytes(run.flows);
  const needHeap = estimateHeapBytes(run.flows);
  // The heap limit bounds the objects; the machine's memory bounds everything (and any heap limit).
  const machine = limits.totalMem * 0.8;
  if (needHeap <= limits.heapLimit && needBytes <= machine) return { needBytes, fits: true };
  const usable = Math.min(limits.heapLimit, machine);
  const fitNow = Math.min(nodesThatFit(run.nodes, run.flows, limits.heapLimit, HEAP_BYTES_PER_FLOW), nodesThatFit(run.nodes, run.flows, machine));
  const fitMachine = nodesThatFit(run.nodes, run.flows, machine);
  const raise =
    needBytes <= machine
      ? `Or let Node use more of this machine's ${gb(limits.totalMem)}: NODE_OPTIONS=--max-old-space-size=${Math.ceil((needHeap * 1.2) / 1048576)} calico-nettest ${run.command} …`
      : `This machine has ${gb(limits.totalMem)}: no --max-old-space-size makes it hold this run (with one, groups of about ${fitMachine} nodes would fit).`;
  const message =
    `a ${run.command} of ${run.nodes} nodes has ${run.flows.toLocaleString('en-US')} flows and would need about ${gb(needBytes)} of memory; ` +
    `this process may use ${gb(usable)} (Node's heap limit ${gb(limits.heapLimit)}, the machine ${gb(limits.totalMem)}). Nothing was run.\n` +
    `What to do: split the inventory into groups of at most ${fitNow} nodes and mesh each group (pair nodes across groups where it matters), ` +
    `or run fewer checks at a time (--checks; the flows shrink in proportion). ${raise}`;
  return { needBytes, fits: false, message };
}
