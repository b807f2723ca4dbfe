import type { StatusChange } from '../messages/status.js';
import type { ReceiptUpdate } from '../receipts/receipt-updates.js';
import { GroupCommitter } from '../store/group-commit.js';

/** One thing to persist: status changes from submits, or receipt updates of parts. */
export type Recordable = { changes: StatusChange[] } | { receipts: ReceiptUpdate[] };

/**
 * Persists outcomes in order and in batches: everything that arrives while a transaction runs goes
 * into the next one. Order matters — a receipt may follow its own `submitted` change by microseconds —
 * and is kept: units are written one after the other, in one transaction per batch.
 */
export class StatusRecorder {
  private readonly committer: GroupCommitter<Recordable, void>;

  constructor(writeBatch: (units: Recordable[]) => Promise<void>) {
    this.committer = new GroupCommitter<Recordable, void>({
      writeBatch: async (units) => {
        await writeBatch(units);
        return units.map(() => undefined);
      },
      maxBatch: 1000,
      weight: (unit) => ('changes' in unit ? unit.changes.length : unit.receipts.length),
      concurrency: 1,
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
