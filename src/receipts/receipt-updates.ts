import {
  applyStatusChanges,
  FINAL_STATUSES,
  type PartRow,
  type StatusChange,
  type StatusWriteOptions,
  writeStatusChanges,
} from '../messages/status.js';
import { groupBy } from '../shared/group-by.js';
import type { ReceiptState } from '../smpp/receipt.js';
import { executeOrFail, inList } from '../store/insert-rows.js';
import type { MessageStatus } from '../store/schema.js';
import type { Trx } from '../store/store.js';

/** A receipt matched to the part it reports on. */
export interface ReceiptUpdate {
  messageId: string;
  partNo: number;
  state: ReceiptState;
  errorCode: string | null;
}

/** Part status for a receipt state; null for intermediate states (accepted, en route). */
export function partStatusOf(state: ReceiptState): MessageStatus | null {
  switch (state) {
    case 'delivered':
      return 'delivered';
    case 'expired':
      return 'expired';
    case 'rejected':
      return 'rejected';
    case 'undeliverable':
    case 'deleted':
    case 'unknown':
      return 'undelivered';
    default:
      return null;
  }
}

// When parts end differently, the message takes the most telling failure.
const FAILURE_RANK: Partial<Record<MessageStatus, number>> = {
  rejected: 3,
  expired: 2,
  undelivered: 1,
  failed: 1,
};

/**
 * Records receipts in the caller's transaction: each part's status, then, for every message whose
 * parts have all reached a final status, the message's own final status (delivered only when every
 * part is) — which brings its history entry and webhook through applyStatusChanges.
 *
 * A one-part message takes its part's status straight away (the UPDATE checks that it has one part
 * and is not final yet): only longer messages, and the rare message that was final already, are read.
 */
export async function applyReceiptUpdates(
  trx: Trx,
  updates: ReceiptUpdate[],
  now: number,
  options: Omit<StatusWriteOptions, 'singlePartOnly'> = {},
): Promise<number> {
  const final = updates.filter((u) => partStatusOf(u.state) !== null);
  if (final.length === 0) return 0;
  // A part's last receipt in the batch is the one that counts.
  const latest = new Map<string, PartState>();
  for (const u of final) {
    const key = `${u.messageId}#${u.partNo}`;
    latest.delete(key);
    latest.set(key, {
      message_id: u.messageId,
      part_no: u.partNo,
      status: partStatusOf(u.state)!,
      // err:000 on a delivered part is "no error", not an error code.
      error_code: u.state === 'delivered' ? null : u.errorCode,
    });
  }
  const partRows = [...latest.values()];
  await updateParts(trx, partRows, now);
  // A message's first part, as this batch's last receipt for it said.
  const firstParts = new Map<string, PartState>();
  for (const p of partRows) if (p.part_no === 1) firstParts.set(p.message_id, p);
  const single = await writeStatusChanges(
    trx,
    [...firstParts.values()].map((p) => changeOf([p])),
    now,
    { ...options, singlePartOnly: true },
  );
  const rest = [...new Set(partRows.map((p) => p.message_id))].filter((id) => !single.applied.has(id));
  if (rest.length === 0) return single.events;
  const messages = await messageProgress(trx, rest);
  const parts = await partsOf(trx, messages, partRows);
  const changes: StatusChange[] = [];
  for (const m of messages.values()) {
    const mine = parts.get(m.id) ?? [];
    if (FINAL_STATUSES.has(m.status) || mine.length < m.segments) continue;
    if (!mine.every((p) => FINAL_STATUSES.has(p.status))) continue;
    changes.push(changeOf(mine));
  }
  return single.events + (await applyStatusChanges(trx, changes, now, options));
}

type PartState = Pick<PartRow, 'message_id' | 'part_no' | 'status' | 'error_code'>;

/**
 * Each part's status, on the row its submit created (a receipt is only matched to a part once that
 * is committed): one UPDATE per part number, status and error and 500 parts. An upsert of the same
 * rows cost 6–7 µs a part, this 2–3 (measured apart, 500-part batches).
 */
async function updateParts(trx: Trx, parts: PartState[], now: number): Promise<void> {
  const groups = groupBy(
    parts,
    (p) => JSON.stringify([p.part_no, p.status, p.error_code]),
    (a, b) => a.part_no === b.part_no && a.status === b.status && a.error_code === b.error_code,
  );
  for (const group of groups.values()) {
    const { part_no, status, error_code } = group[0]!;
    for (let i = 0; i < group.length; i += 500) {
      // `update or fail` on SQLite: no statement journal (sqliteOrFail).
      await executeOrFail(
        trx,
        trx
          .updateTable('message_parts')
          .set({ status, error_code, updated_at: now })
          .where('part_no', '=', part_no)
          .where(
            inList(
              trx,
              'message_id',
              group.slice(i, i + 500).map((p) => p.message_id),
            ),
          ),
      );
    }
  }
}

/** The change of a message whose parts (all of them) have reached a final status. */
function changeOf(parts: PartState[]): StatusChange {
  const worst = parts.reduce((a, b) =>
    (FAILURE_RANK[b.status] ?? 0) > (FAILURE_RANK[a.status] ?? 0) ? b : a,
  );
  if (worst.status === 'delivered') return { messageId: worst.message_id, status: 'delivered' };
  return {
    messageId: worst.message_id,
    status: worst.status,
    errorCode: worst.error_code,
    errorReason: `the carrier reported part ${worst.part_no} ${worst.status}${worst.error_code ? ` (error ${worst.error_code})` : ''}`,
  };
}

interface MessageProgress {
  id: string;
  status: MessageStatus;
  segments: number;
}

async function messageProgress(trx: Trx, ids: string[]): Promise<Map<string, MessageProgress>> {
  const out = new Map<string, MessageProgress>();
  for (let i = 0; i < ids.length; i += 500) {
    const rows = await trx
      .selectFrom('messages')
      .select(['id', 'status', 'segments'])
      .where(inList(trx, 'id', ids.slice(i, i + 500)))
      .execute();
    for (const row of rows) out.set(row.id, row);
  }
  return out;
}

/**
 * Every part of the given messages, as just upserted. A one-part message's only part is what this
 * batch's last receipt for it said: only the parts of longer messages are read back.
 */
async function partsOf(
  trx: Trx,
  messages: Map<string, MessageProgress>,
  upserted: PartState[],
): Promise<Map<string, PartState[]>> {
  const out = new Map<string, PartState[]>();
  for (const p of upserted)
    if (messages.get(p.message_id)?.segments === 1 && p.part_no === 1) out.set(p.message_id, [p]);
  const longer = [...messages.values()].filter((m) => m.segments > 1).map((m) => m.id);
  for (let i = 0; i < longer.length; i += 500) {
    const rows = await trx
      .selectFrom('message_parts')
      .select(['message_id', 'part_no', 'status', 'error_code'])
      .where(inList(trx, 'message_id', longer.slice(i, i + 500)))
      .execute();
    for (const p of rows) out.set(p.message_id, [...(out.get(p.message_id) ?? []), p]);
  }
  return out;
}
