import type { StatusChange } from '../messages/status.js';
import type { ReceiptUpdate } from '../receipts/receipt-updates.js';
import { GroupCommitter } from '../store/group-commit.js';

/** One thing to persist: status changes from submits, or receipt updates of parts. */
export type Recordable = { changes: StatusChange[] } | { receipts: ReceiptUpdate[] };

/**
 * Persists outcomes in order and in batches: everything that arrives while a transaction runs goes
 * into the next one, units one after the other. The carrier path runs two (CarrierService): one for
 * the submits' outcomes, one for receipts; a receipt is only handed to its recorder once its part's
 * `submitted` change has committed, so the two never need each other's order.
 */
export class StatusRecorder {
  private readonly committer: GroupCommitter<Recordable, void>;

  /**
   * `concurrency`: transactions at a time. More than one only where the database runs them in
   * parallel (PostgreSQL), and only for units that never touch the same message: every message has
   * exactly one outcome of its submit, and its receipts come after that outcome has committed.
   */
  constructor(writeBatch: (units: Recordable[]) => Promise<void>, concurrency = 1) {
    this.committer = new GroupCommitter<Recordable, void>({
      writeBatch: async (units) => {
        await writeBatch(units);
        return units.map(() => undefined);
      },
      maxBatch: 1000,
      weight: (unit) => ('changes' in unit ? unit.changes.length : unit.receipts.length),
      concurrency,
      lingerMs: 5,
    });
  }

  record(unit: Recordable): Promise<void> {
    return this.committer.submit(unit);
  }

  get backlog(): number {
    return this.committer.backlog;
  }
}
