import { RollupBatch } from '../stats/rollups.js';
import { LANE_RANK, type MessageTable } from '../store/schema.js';
import type { Trx } from '../store/store.js';

/** What the API stores under an Idempotency-Key, written in the same transaction as the messages. */
export interface IdempotencyRecord {
  key: string;
  requestHash: string;
  statusCode: number;
  responseBody: string;
}

/** One request's worth of messages: committed together or not at all. */
export interface SubmitUnit {
  tenantId: string;
  createdAt: number;
  rows: MessageTable[];
  idempotency?: IdempotencyRecord | undefined;
}

/**
 * Urgent messages can be committed already leased to the local dispatcher, which then takes them
 * from memory: no claim transaction between the intake commit and the submit_sm (on PostgreSQL
 * that claim was a third of an OTP's time in Relais).
 */
export interface IntakeLease {
  owner: string;
  until: number;
}

/** An otp or transactional message due now: what an intake lease applies to. */
export function isUrgentNow(row: Pick<MessageTable, 'lane' | 'send_at'>): boolean {
  return row.lane !== 'bulk' && row.send_at === null;
}

/** `duplicate`: another request with the same Idempotency-Key committed first; nothing was written. */
export type UnitOutcome = 'committed' | 'duplicate';

// SQLite allows 32,766 bound variables per statement; 20 columns × 500 rows stays well inside.
const ROWS_PER_INSERT = 500;

/**
 * Writes a group of units in the caller's transaction: the history row and the queue entry of every
 * message, plus the idempotency records. The first status (accepted or scheduled) is not written to
 * message_events: it is the message row's own creation, and reads derive it (one insert less per
 * message on the hottest path). With a `lease`, the urgent-now messages' queue entries are written
 * already leased to its owner.
 */
export async function writeSubmitUnits(
  trx: Trx,
  units: SubmitUnit[],
  lease: IntakeLease | null = null,
): Promise<UnitOutcome[]> {
  const outcomes: UnitOutcome[] = [];
  const rows: MessageTable[] = [];
  for (const unit of units) {
    if (unit.idempotency) {
      const inserted = await trx
        .insertInto('idempotency_keys')
        .values({
          tenant_id: unit.tenantId,
          key: unit.idempotency.key,
          request_hash: unit.idempotency.requestHash,
          status_code: unit.idempotency.statusCode,
          response_body: unit.idempotency.responseBody,
          created_at: unit.createdAt,
        })
        .onConflict((oc) => oc.columns(['tenant_id', 'key']).doNothing())
        .returning('key')
        .executeTakeFirst();
      if (!inserted) {
        outcomes.push('duplicate');
        continue;
      }
    }
    outcomes.push('committed');
    rows.push(...unit.rows);
  }
  const rollups = new RollupBatch();
  for (const m of rows) {
    rollups.add({
      at: m.created_at,
      tenantId: m.tenant_id,
      lane: m.lane,
      connector: null,
      campaignId: m.campaign_id,
      status: m.status,
      segments: m.segments,
    });
  }
  for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
    const chunk = rows.slice(i, i + ROWS_PER_INSERT);
    await trx.insertInto('messages').values(chunk).execute();
    await trx
      .insertInto('queue')
      .values(
        chunk.map((m) => ({
          message_id: m.id,
          tenant_id: m.tenant_id,
          lane: m.lane,
          lane_rank: LANE_RANK[m.lane],
          not_before: m.send_at ?? m.created_at,
          expires_at: m.expires_at,
          attempts: 0,
          claimed_by: lease && isUrgentNow(m) ? lease.owner : null,
          claimed_until: lease && isUrgentNow(m) ? lease.until : null,
          campaign_id: m.campaign_id,
        })),
      )
      .execute();
  }
  await rollups.write(trx);
  return outcomes;
}
