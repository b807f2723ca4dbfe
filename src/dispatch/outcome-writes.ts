import {
  applyStatusChanges,
  FINAL_STATUSES,
  type StatusChange,
  type StatusWriteOptions,
} from '../messages/status.js';
import { applyReceiptUpdates, type ReceiptUpdate } from '../receipts/receipt-updates.js';
import { RollupBatch } from '../stats/rollups.js';
import { inList } from '../store/insert-rows.js';
import type { ThreadTransaction } from '../store/sqlite-protocol.js';
import type { Trx } from '../store/store.js';
import type { DueEvent } from '../webhooks/outbox.js';

/** A batch of the carrier path's outcomes: what WorkQueue.recordOutcomes writes in one transaction. */
export interface OutcomeBatch {
  changes: StatusChange[];
  receipts: ReceiptUpdate[];
  now: number;
  /** Webhook events are written leased to the in-process sender until then (WebhookHandover); null: none. */
  leasedUntil: number | null;
}

export interface OutcomesWritten {
  /** Webhook events created. */
  created: number;
  /** The events leased to the in-process sender, to hand over once durable (with leasedUntil). */
  handedOver: DueEvent[] | null;
}

/**
 * Status changes (messages that were submitted or reached a final status leave the queue), then
 * receipt updates of parts, with their webhook events and statistics. On SQLite the connection's
 * thread runs it whole (Store.writeCommittedIn): it is most of the carrier path's database work.
 */
export const WRITE_OUTCOMES: ThreadTransaction<OutcomeBatch, OutcomesWritten> = {
  name: 'writeOutcomes',
  async run(trx, { changes, receipts, now, leasedUntil }) {
    const handover = leasedUntil === null ? undefined : { leasedUntil, events: [] as DueEvent[] };
    // Both kinds fold into one set of rollup rows, upserted last (see RollupBatch.write).
    const rollups = new RollupBatch();
    const created =
      (await applyChanges(trx, changes, now, { handover, rollups })) +
      (await applyReceiptUpdates(trx, receipts, now, { handover, rollups }));
    await rollups.write(trx);
    return { created, handedOver: handover?.events ?? null };
  },
};

async function applyChanges(
  trx: Trx,
  changes: StatusChange[],
  now: number,
  options: StatusWriteOptions,
): Promise<number> {
  const done = changes
    .filter((c) => c.status === 'submitted' || FINAL_STATUSES.has(c.status))
    .map((c) => c.messageId);
  const events = await applyStatusChanges(trx, changes, now, options);
  for (let i = 0; i < done.length; i += 500) {
    await trx
      .deleteFrom('queue')
      .where(inList(trx, 'message_id', done.slice(i, i + 500)))
      .execute();
  }
  return events;
}
