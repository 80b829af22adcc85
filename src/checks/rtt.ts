// Adaptive probe timeouts (RFC 6298, as TCP and nmap do): srtt + 4·rttvar, clamped. One estimator per
// peer, falling back to the node-wide one while a peer has no sample yet.

export interface TimeoutPolicy {
  initialMs: number;
  minMs: number;
  maxMs: number;
}

export const DEFAULT_TIMEOUTS: TimeoutPolicy = { initialMs: 1000, minMs: 100, maxMs: 3000 };

export class RttEstimator {
  srtt: number | null = null;
  rttvar = 0;
  samples = 0;

  sample(rttMs: number): void {
    if (!Number.isFinite(rttMs) || rttMs < 0) return;
    if (this.srtt === null) {
      this.srtt = rttMs;
      this.rttvar = rttMs / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - rttMs);
      this.srtt = 0.875 * this.srtt + 0.125 * rttMs;
    }
    this.samples++;
  }

  /** The timeout this estimator gives, or null with no sample. */
  raw(): number | null {
    return this.srtt === null ? null : this.srtt + 4 * this.rttvar;
  }
}

export class PeerTimeouts {
  private readonly peers = new Map<string, RttEstimator>();
  private readonly global = new RttEstimator();
  constructor(readonly policy: TimeoutPolicy = DEFAULT_TIMEOUTS) {}

  sample(peer: string, rttMs: number): void {
    let e = this.peers.get(peer);
    if (!e) this.peers.set(peer, (e = new RttEstimator()));
    e.sample(rttMs);
    this.global.sample(rttMs);
  }

  timeout(peer: string): number {
    const t = this.peers.get(peer)?.raw() ?? this.global.raw() ?? this.policy.initialMs;
    return Math.min(this.policy.maxMs, Math.max(this.policy.minMs, t));
  }
}

/** Milliseconds on the clock the reply sockets stamp packets with (performance.timeOrigin-based). */
export const nowMs = (): number => performance.timeOrigin + performance.now();

/**
 * Wait until `done()` or the deadline passes, re-reading `deadline()` every 100 ms at most: an adaptive
 * timeout shortens as other probes to the peer take samples meanwhile. `setWake` gets the early wake-up
 * (call it when `done()` may have turned true); an abort ends the wait at once.
 */
export function untilDeadline(done: () => boolean, deadline: () => number, setWake?: (wake: () => void) => void, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', finish);
      resolve();
    };
    setWake?.(finish);
    signal?.addEventListener('abort', finish, { once: true });
    const arm = () => {
      const left = deadline() - nowMs();
      if (done() || left <= 0 || signal?.aborted) finish();
      else timer = setTimeout(arm, Math.min(left, 100));
    };
    arm();
  });
}
