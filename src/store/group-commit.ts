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
   * Wait this long before a commit so more units join it (background writers, not request paths).
   * Each commit costs a sync and a turn on the single SQLite connection; the carrier-path profile
   * showed outcome batches of ~7 changes at 1,000 msg/s without it.
   */
  lingerMs?: number;
}

interface Pending<U, R> {
  unit: U;
  resolve(result: R): void;
  reject(err: unknown): void;
}

export class GroupCommitter<U, R> {
  private waiting: Pending<U, R>[] = [];
  private running = 0;
  private scheduled = false;

  constructor(private readonly options: GroupCommitOptions<U, R>) {}

  submit(unit: U): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ unit, resolve, reject });
      this.schedule();
    });
  }

  /** Units waiting for a commit slot: a measure of back-pressure. */
  get backlog(): number {
    return this.waiting.length;
  }

  /** `linger`: wait lingerMs first (a unit arriving at an idle committer, not a backlog). */
  private schedule(linger = true): void {
    if (this.scheduled || this.running >= this.options.concurrency) return;
    this.scheduled = true;
    // setImmediate, not a timer: requests parsed in the same I/O turn join the batch at no added delay.
    const run = () => {
      this.scheduled = false;
      void this.flush();
    };
    if (linger && this.options.lingerMs) setTimeout(run, this.options.lingerMs);
    else setImmediate(run);
  }

  private async flush(): Promise<void> {
    if (this.waiting.length === 0 || this.running >= this.options.concurrency) return;
    const batch = this.takeBatch();
    this.running++;
    try {
      await this.commit(batch);
    } finally {
      this.running--;
      // Units that arrived during the commit have waited for it already: no linger on top.
      if (this.waiting.length > 0) this.schedule(false);
    }
  }

  private takeBatch(): Pending<U, R>[] {
    const weigh = this.options.weight;
    if (!weigh) return this.waiting.splice(0, this.options.maxBatch);
    let total = 0;
    let n = 0;
    // At least one unit, however heavy; then as many as fit.
    while (
      n < this.waiting.length &&
      (n === 0 || total + weigh(this.waiting[n]!.unit) <= this.options.maxBatch)
    ) {
      total += weigh(this.waiting[n]!.unit);
      n++;
    }
    return this.waiting.splice(0, n);
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
