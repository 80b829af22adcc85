// Waiting in tests: for a condition (waitFor: polls until it holds, fails with what was awaited when it
// does not in time), or deliberately for a while (waitOut: only to show that something does NOT happen,
// where there is no event to wait for). No fixed sleep stands in for a condition.

export interface WaitOptions {
  /** Give up after this long (ms): generous, the machine is shared. */
  timeout: number;
  /** What is awaited, for the error ("node3's responder to exit"). */
  what: string;
  /** Poll interval (ms), default 20. */
  every?: number;
}

/** Poll `predicate` until it returns a truthy value, and return that; throws after `timeout`. */
export async function waitFor<T>(predicate: () => T | Promise<T>, o: WaitOptions): Promise<NonNullable<T>> {
  const deadline = Date.now() + o.timeout;
  for (;;) {
    const v = await predicate();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${o.timeout} ms waiting for ${o.what}`);
    await new Promise((r) => setTimeout(r, o.every ?? 20));
  }
}

/** Wait `ms` on purpose: giving something the time to happen that must not (a dropped packet, a late callback). */
export function waitOut(ms: number, _why: string): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Whether the process `pid` is gone (signal 0 fails with ESRCH). */
export function exited(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
