import { type QueryCreator, sql } from 'kysely';
import { RollupBatch } from '../stats/rollups.js';
import { insertRows } from '../store/insert-rows.js';
import type { DialectName } from '../store/migrations/index.js';
import { type Database, LANE_RANK, type MessageTable, type QueueTable } from '../store/schema.js';
import type { Db, Trx } from '../store/store.js';

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
  for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
    const chunk = rows.slice(i, i + ROWS_PER_INSERT);
    await insertRows(trx, 'messages', chunk);
    await insertRows(trx, 'queue', queueEntries(chunk, lease));
  }
  await rollupsOf(rows).write(trx);
  return outcomes;
}

/**
 * PostgreSQL, for a few messages without Idempotency-Keys (single requests, urgent commits): the
 * history rows, queue entries and rollups as one statement (data-modifying CTEs). A single statement
 * is atomic on its own, so it runs without BEGIN/COMMIT: one round trip instead of five, which under
 * load was most of an OTP's commit time.
 */
const ONE_STATEMENT_MAX_ROWS = 100;

export function fitsOneStatement(dialect: DialectName, units: readonly SubmitUnit[]): boolean {
  // SQLite has no data-modifying CTEs, and no round trips to save.
  if (dialect !== 'postgres') return false;
  let rows = 0;
  for (const unit of units) {
    if (unit.idempotency) return false;
    rows += unit.rows.length;
  }
  return rows > 0 && rows <= ONE_STATEMENT_MAX_ROWS;
}

export async function writeSubmitUnitsAsOneStatement(
  db: Db,
  units: readonly SubmitUnit[],
  lease: IntakeLease | null,
): Promise<UnitOutcome[]> {
  const rows = units.flatMap((u) => u.rows);
  await db
    .with('m', (q) => q.insertInto('messages').values(rows))
    .with('q', (q) => q.insertInto('queue').values(queueEntries(rows, lease)))
    .with('s', (q) => rollupsOf(rows).upsert(q as unknown as QueryCreator<Database>))
    .selectNoFrom(sql<number>`1`.as('done'))
    .execute();
  return units.map(() => 'committed');
}

function queueEntries(rows: readonly MessageTable[], lease: IntakeLease | null): QueueTable[] {
  return rows.map((m) => ({
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
  }));
}

function rollupsOf(rows: readonly MessageTable[]): RollupBatch {
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
  return rollups;
}
