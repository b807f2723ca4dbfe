import type { Clock } from '../shared/clock.js';

// Refills add fractions (0.1 token per ms at 100/s); without a tolerance, ten of them sum to 0.999….
const EPSILON = 1e-9;

/**
 * A token bucket: `rate` tokens per second, holding at most `burst`. One bucket per connector, shared
 * by all its binds, so the carrier sees at most `rate` submits per second whatever the bind count
 * (a per-worker limiter would multiply the real rate by the worker count).
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private rate: number,
    private readonly burst: number,
    private readonly clock: Clock,
  ) {
    this.tokens = burst;
    this.last = clock.now();
  }

  get currentRate(): number {
    return this.rate;
  }

  setRate(rate: number): void {
    this.refill();
    this.rate = rate;
  }

  /** Takes one token if there is one beyond `reserve` tokens left for others. */
  tryTake(reserve = 0): boolean {
    this.refill();
    if (this.tokens >= 1 + reserve - EPSILON) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }

  /** Milliseconds until a token beyond `reserve` is available (0 if one is). */
  msUntilToken(reserve = 0): number {
    this.refill();
    const needed = 1 + reserve;
    if (this.tokens >= needed - EPSILON) return 0;
    return Math.ceil(((needed - this.tokens) / this.rate) * 1000);
  }

  /** The most tokens it holds. */
  get capacity(): number {
    return this.burst;
  }

  private refill(): void {
    const now = this.clock.now();
    const elapsed = now - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.rate) / 1000);
      this.last = now;
    }
  }
}

/**
 * Adaptive slow-down on ESME_RTHROTTLED: each throttle halves the connector's rate (not below 1/s);
 * each quiet interval gives back a tenth of the configured rate, so the connector recovers gradually
 * instead of hammering the carrier straight back into throttling.
 */
export class AdaptiveRate {
  private lastThrottle = Number.NEGATIVE_INFINITY;
  private lastRecovery = 0;

  constructor(
    private readonly bucket: TokenBucket,
    private readonly nominal: number,
    private readonly clock: Clock,
    private readonly recoveryIntervalMs = 1000,
  ) {}

  get throttled(): boolean {
    return this.bucket.currentRate < this.nominal;
  }

  onThrottled(): void {
    const now = this.clock.now();
    // Several throttle answers for submits already in flight count as one event.
    if (now - this.lastThrottle < 100) return;
    this.lastThrottle = now;
    this.lastRecovery = now;
    this.bucket.setRate(Math.max(1, this.bucket.currentRate / 2));
  }

  /** Called regularly; raises the rate back towards nominal after quiet intervals. */
  tick(): void {
    const now = this.clock.now();
    if (!this.throttled || now - this.lastRecovery < this.recoveryIntervalMs) return;
    this.lastRecovery = now;
    this.bucket.setRate(Math.min(this.nominal, this.bucket.currentRate + this.nominal / 10));
  }
}
