import type { StatusChange } from '../messages/status.js';
import type { ReceiptUpdate } from '../receipts/receipt-updates.js';
import { type GroupCommitOptions, GroupCommitter } from '../store/group-commit.js';

/** One thing to persist: status changes from submits, or receipt updates of parts. */
export type Recordable = { changes: StatusChange[] } | { receipts: ReceiptUpdate[] };

/**
 * GroupCommitter's options for the batches of a recorder. `concurrency` above 1 only where the
 * database runs transactions in parallel (PostgreSQL), and only for units that never touch the same
 * message: every message has exactly one outcome of its submit, and its receipts come after that
 * outcome has committed.
 */
export type StatusRecorderOptions = Pick<
  GroupCommitOptions<Recordable, Written>,
  'concurrency' | 'lingerMs' | 'flushAt' | 'quietMs'
> & {
  /**
   * When `record` resolves: once its transaction has committed, or once that is also on disk
   * (Store.writeCommitted). The next batch may start at commit either way.
   */
  resolveWhen: 'committed' | 'durable';
};

/** A batch written: committed, and on disk once `durable` resolves. */
export interface Written {
  durable: Promise<void>;
}

const MAX_BATCH = 1000;

/**
 * Persists outcomes in order and in batches: everything that arrives while a transaction runs goes
 * into the next one, units one after the other. The carrier path runs two (CarrierService): one for
 * the submits' outcomes, one for receipts; a receipt is only handed to its recorder once its part's
 * `submitted` change has committed, so the two never need each other's order.
 */
export class StatusRecorder {
  private readonly committer: GroupCommitter<Recordable, Written>;
  private readonly resolveWhen: StatusRecorderOptions['resolveWhen'];

  constructor(writeBatch: (units: Recordable[]) => Promise<Written>, options: StatusRecorderOptions) {
    const { resolveWhen, ...commitOptions } = options;
    this.resolveWhen = resolveWhen;
    this.committer = new GroupCommitter<Recordable, Written>({
      writeBatch: async (units) => {
        const written = await writeBatch(units);
        return units.map(() => written);
      },
      ...commitOptions,
      maxBatch: MAX_BATCH,
      weight: (unit) => ('changes' in unit ? unit.changes.length : unit.receipts.length),
    });
  }

  /** `now`: committed without lingering (GroupCommitter.submit). */
  async record(unit: Recordable, now = false): Promise<void> {
    const { durable } = await this.committer.submit(unit, now);
    if (this.resolveWhen === 'durable') await durable;
  }

  get backlog(): number {
    return this.committer.backlog;
  }
}
