/**
 * Counts events over a sliding window (default 1 s) of a monotonic clock: a ring buffer of event
 * times, pruned as the window moves. add() and count() are amortised O(1); memory is one double per
 * event inside the window.
 */
export class SlidingWindow {
  private times = new Float64Array(1024);
  private head = 0;
  private size = 0;

  constructor(readonly windowMs = 1000) {}

  /** Events in (now - windowMs, now]. */
  count(now: number): number {
    const limit = now - this.windowMs;
    const cap = this.times.length;
    while (this.size > 0 && this.times[this.head]! <= limit) {
      this.head = (this.head + 1) % cap;
      this.size--;
    }
    return this.size;
  }

  /** Records an event at `now` and returns the count including it. */
  add(now: number): number {
    this.count(now);
    if (this.size === this.times.length) this.grow();
    this.times[(this.head + this.size) % this.times.length] = now;
    return ++this.size;
  }

  clear(): void {
    this.head = 0;
    this.size = 0;
  }

  private grow(): void {
    const next = new Float64Array(this.times.length * 2);
    for (let i = 0; i < this.size; i++) next[i] = this.times[(this.head + i) % this.times.length]!;
    this.times = next;
    this.head = 0;
  }
}
