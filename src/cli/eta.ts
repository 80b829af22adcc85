// The progress bar's time left: the whole run's average rate (as pv(1) does), so outcomes that arrive in bursts
// do not make it jump, and a line format for cli-progress that asks the clock at every redraw.
import cliProgress from 'cli-progress';
import type { GenericFormatter } from 'cli-progress';

export interface EtaInput {
  /** When the run started and now, in ms (any clock, the same for both). */
  startedAt: number;
  now: number;
  /** Flows finished and planned. */
  done: number;
  total: number;
}

/** Below this much elapsed time (or with nothing done yet) a rate says nothing. */
const MIN_ELAPSED_MS = 1000;

/**
 * Seconds left, or null while there is nothing to go by. Why the whole run and not the last few updates:
 * silent probes wait out their timeouts together, so outcomes come in bursts; a rate over the last updates is
 * huge inside a burst (0 s left) and tiny after one (minutes), which is the jump users saw (4m40s, then 0s at
 * 339/1005). The average over the run moves by what a burst really did, and between bursts it grows as time
 * passes without progress instead of counting down to a 0 that is not true.
 */
export function etaSeconds({ startedAt, now, done, total }: EtaInput): number | null {
  const remaining = total - done;
  if (remaining <= 0) return 0;
  const elapsed = now - startedAt;
  if (done <= 0 || !(elapsed >= MIN_ELAPSED_MS)) return null;
  return Math.ceil((remaining * elapsed) / done / 1000);
}

/** "35s", "4m05s", "2h07m"; "--" while unknown; ">99h" past that. */
export function formatEta(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '--';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s >= 100 * 3600) return '>99h';
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * A cli-progress format for `template`, whose `{left}` is etaSeconds() at the moment of drawing: the bar redraws
 * on its own timer, so the estimate keeps moving between outcomes. `now` is injectable for tests.
 */
export function progressFormat(template: string, now: () => number = Date.now): GenericFormatter {
  return (options, params, payload) =>
    cliProgress.Format.Formatter({ ...options, format: template }, params, {
      ...payload,
      left: formatEta(etaSeconds({ startedAt: params.startTime, now: params.stopTime ?? now(), done: params.value, total: params.total })),
    });
}
