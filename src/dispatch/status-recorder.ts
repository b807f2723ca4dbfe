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
  GroupCommitOptions<Recordable, void>,
  'concurrency' | 'lingerMs' | 'flushAt' | 'quietMs'
>;

const MAX_BATCH = 1000;

/**
 * Persists outcomes in order and in batches: everything that arrives while a transaction runs goes
 * into the next one, units one after the other. The carrier path runs two (CarrierService): one for
 * the submits' outcomes, one for receipts; a receipt is only handed to its recorder once its part's
 * `submitted` change has committed, so the two never need each other's order.
 */
export class StatusRecorder {
  private readonly committer: GroupCommitter<Recordable, void>;

  constructor(writeBatch: (units: Recordable[]) => Promise<void>, options: StatusRecorderOptions) {
    this.committer = new GroupCommitter<Recordable, void>({
      writeBatch: async (units) => {
        await writeBatch(units);
        return units.map(() => undefined);
      },
      ...options,
      maxBatch: MAX_BATCH,
      weight: (unit) => ('changes' in unit ? unit.changes.length : unit.receipts.length),
    });
  }

  record(unit: Recordable): Promise<void> {
    return this.committer.submit(unit);
  }

  get backlog(): number {
    return this.committer.backlog;
  }
}
