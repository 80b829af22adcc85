// A token bucket: how much work a session may cost per second. The witness spends one token per probe proof
// it checks (an HMAC); when a flood shaped like probes empties it, packets are shed and counted, not checked.
export class Budget {
  private tokens: number;
  private at: number;

  constructor(
    /** Tokens added per second. */
    readonly rate: number,
    /** Most tokens held (the burst allowed). */
    readonly burst: number,
    nowMs: number,
  ) {
    if (!(rate > 0) || !(burst >= 1)) throw new RangeError(`budget needs rate > 0 and burst >= 1, got ${rate}, ${burst}`);
    this.tokens = burst;
    this.at = nowMs;
  }

  /** Spend one token; false when none is left (the caller sheds the work). */
  take(nowMs: number): boolean {
    if (nowMs > this.at) {
      this.tokens = Math.min(this.burst, this.tokens + ((nowMs - this.at) * this.rate) / 1000);
      this.at = nowMs;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
