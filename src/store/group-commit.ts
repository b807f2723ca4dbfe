/**
 * Group commit: callers hand in units of work and wait; everything that arrives while a commit is
 * running (or within the same event-loop turn) is written by the next single transaction. Durability
 * then costs one fsync per batch instead of one per message, and nobody is answered before the
 * transaction holding their unit has committed.
 */
export interface GroupCommitOptions<U, R> {
  /** Writes all units in one transaction and returns one result per unit, in order. */
  writeBatch(units: U[]): Promise<R[]>;
  /** Upper bound on the weight of one transaction (units, or `weight` of each), to keep commits short. */
  maxBatch: number;
  /**
   * Weight of a unit (default 1): a 1,000-message request weighs 1,000. A long SQLite transaction
   * blocks the event loop, and with it every urgent message behind it.
   */
  weight?: (unit: U) => number;
  /** Commits allowed at once (1 for SQLite's single writer; more on PostgreSQL). */
  concurrency: number;
  /**
   * Let a batch gather this long, counted from its oldest unit, before committing it (background
   * writers, not request paths). Each commit costs a sync and a turn on the single SQLite
   * connection: at 1,000 msg/s, outcome batches were 5–10 changes without it, and the main thread
   * spent more time on per-transaction costs than on the rows (profiled). A unit that has already
   * waited that long during a commit goes into the next one at once.
   */
  lingerMs?: number;
  /** A lingering batch is committed at once when this much weight waits (default maxBatch). */
  flushAt?: number;
  /**
   * With lingerMs: a batch is also due once no unit has arrived for this long. A sender that waits
   * for its answers (a carrier's deliver_sm window) stops sending when its window is full; the batch
   * then goes after quietMs rather than the whole linger.
   */
  quietMs?: number;
}

interface Pending<U, R> {
  unit: U;
  /** Committed without lingering, with everything waiting beside it (see `submit`). */
  now: boolean;
  /** performance.now() when submitted: a lingering committer waits from its oldest unit. */
  at: number;
  resolve(result: R): void;
  reject(err: unknown): void;
}

export class GroupCommitter<U, R> {
  private waiting: Pending<U, R>[] = [];
  private running = 0;
  private scheduled = false;
  /** Total weight of `waiting`. */
  private waitingWeight = 0;
  /** Units of `waiting` submitted with `now`. */
  private nowWaiting = 0;
  /** The timer of a batch gathering (lingerMs), replaced by an immediate run once it is due. */
  private lingering: NodeJS.Timeout | null = null;

  constructor(private readonly options: GroupCommitOptions<U, R>) {}

  /**
   * `now`: the unit's batch is due at once, lingering or not (someone outside is waiting for it:
   * a carrier whose deliver_sm window this unit's answer would free).
   */
  submit(unit: U, now = false): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ unit, now, at: performance.now(), resolve, reject });
      this.waitingWeight += this.weigh(unit);
      if (now) this.nowWaiting++;
      this.schedule();
    });
  }

  /** Units waiting for a commit slot: a measure of back-pressure. */
  get backlog(): number {
    return this.waiting.length;
  }

  /**
   * Commits now (on the next turn) when the batch is due, else arms a timer that looks again: new
   * units only ever move the due time later (quietMs), or make it now (flushAt).
   */
  private schedule(): void {
    if (this.running >= this.options.concurrency || this.waiting.length === 0) return;
    const due = this.dueIn();
    if (this.scheduled) {
      if (due > 0 || !this.lingering) return;
      clearTimeout(this.lingering);
      this.lingering = null;
    }
    this.scheduled = true;
    // setImmediate, not a timer: requests parsed in the same I/O turn join the batch at no added delay.
    if (due <= 0) {
      setImmediate(() => {
        this.scheduled = false;
        void this.flush();
      });
    } else {
      this.lingering = setTimeout(() => {
        this.scheduled = false;
        this.lingering = null;
        this.schedule();
      }, due);
    }
  }

  /** Milliseconds until the waiting units are due for a commit (0 or less: now). */
  private dueIn(): number {
    const { lingerMs, quietMs } = this.options;
    if (!lingerMs || this.nowWaiting > 0 || this.waitingWeight >= this.flushAt) return 0;
    const now = performance.now();
    const due = lingerMs - (now - this.waiting[0]!.at);
    if (quietMs === undefined) return due;
    return Math.min(due, quietMs - (now - this.waiting[this.waiting.length - 1]!.at));
  }

  private get flushAt(): number {
    return Math.min(this.options.flushAt ?? this.options.maxBatch, this.options.maxBatch);
  }

  private async flush(): Promise<void> {
    if (this.waiting.length === 0 || this.running >= this.options.concurrency) return;
    const batch = this.takeBatch();
    this.running++;
    try {
      await this.commit(batch);
    } finally {
      this.running--;
      if (this.waiting.length > 0) this.schedule();
    }
  }

  private weigh(unit: U): number {
    return this.options.weight ? this.options.weight(unit) : 1;
  }

  private takeBatch(): Pending<U, R>[] {
    let total = 0;
    let n = 0;
    // At least one unit, however heavy; then as many as fit.
    while (
      n < this.waiting.length &&
      (n === 0 || total + this.weigh(this.waiting[n]!.unit) <= this.options.maxBatch)
    ) {
      total += this.weigh(this.waiting[n]!.unit);
      n++;
    }
    this.waitingWeight -= total;
    const batch = this.waiting.splice(0, n);
    for (const p of batch) if (p.now) this.nowWaiting--;
    return batch;
  }

  private async commit(batch: Pending<U, R>[]): Promise<void> {
    try {
      const results = await this.options.writeBatch(batch.map((p) => p.unit));
      batch.forEach((p, i) => {
        p.resolve(results[i] as R);
      });
    } catch (err) {
      if (batch.length === 1) {
        batch[0]!.reject(err);
        return;
      }
      // One bad unit must not fail its neighbours: retry each alone so only the culprit sees the error.
      for (const p of batch) {
        try {
          const [result] = await this.options.writeBatch([p.unit]);
          p.resolve(result as R);
        } catch (unitErr) {
          p.reject(unitErr);
        }
      }
    }
  }
}
