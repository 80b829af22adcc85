// One optional step of a command (--explain's tracing, mesh's preflight findings) that Ctrl-C stops on
// its own: the verdicts already measured are still written. A second Ctrl-C quits at once (exit 130).
import { EXIT } from '../errors.js';

export interface StepOutcome<T> {
  value: T;
  /** Ctrl-C (or SIGTERM) came while the step ran: `run` saw its signal abort. */
  interrupted: boolean;
}

/**
 * Run `run` with a signal that SIGINT / SIGTERM abort. On the first one, `note` goes to `log` (as
 * "interrupted: NOTE (Ctrl-C again to quit at once)") and the step is expected to return soon with what
 * it has; from then on another Ctrl-C exits with EXIT.interrupted. The handlers are removed afterwards.
 */
export async function interruptibleStep<T>(note: string, log: (line: string) => void, run: (signal: AbortSignal) => Promise<T>): Promise<StepOutcome<T>> {
  const ac = new AbortController();
  let interrupted = false;
  const onStop = () => {
    log(`\ninterrupted: ${note} (Ctrl-C again to quit at once)`);
    interrupted = true;
    ac.abort();
    process.once('SIGINT', () => process.exit(EXIT.interrupted));
  };
  process.once('SIGINT', onStop);
  process.once('SIGTERM', onStop);
  try {
    const value = await run(ac.signal);
    return { value, interrupted };
  } finally {
    process.off('SIGINT', onStop);
    process.off('SIGTERM', onStop);
  }
}
