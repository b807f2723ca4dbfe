import { type QueryCreator, sql } from 'kysely';
import type { Database, Lane, MessageStatus, StatsHourlyTable } from '../store/schema.js';
import type { Trx } from '../store/store.js';

export const HOUR_MS = 3_600_000;

export function hourOf(at: number): number {
  return at - (at % HOUR_MS);
}

/** What one message entering one status adds to the rollups. */
export interface RollupEntry {
  at: number;
  tenantId: string;
  lane: Lane;
  connector: string | null;
  campaignId: string | null;
  status: MessageStatus;
  segments: number;
}

/**
 * Folds status transitions into hourly counters in memory, then upserts them in the transaction that
 * made the changes: statistics stay exact (same commit) and cost one multi-row statement per batch,
 * not a write per message.
 */
export class RollupBatch {
  private readonly rows = new Map<string, StatsHourlyTable>();

  add(e: RollupEntry): void {
    const hour = hourOf(e.at);
    const connector = e.connector ?? '';
    const campaign = e.campaignId ?? '';
    const key = `${hour}|${e.tenantId}|${e.lane}|${connector}|${campaign}|${e.status}`;
    const row = this.rows.get(key);
    if (row) {
      row.messages += 1;
      row.segments += e.segments;
    } else {
      this.rows.set(key, {
        hour,
        tenant_id: e.tenantId,
        lane: e.lane,
        connector,
        campaign_id: campaign,
        status: e.status,
        messages: 1,
        segments: e.segments,
      });
    }
  }

  /**
   * Call last in the transaction: on PostgreSQL the upsert locks the hour's rows until commit, so
   * concurrent writers queue there as briefly as possible, and always in the same key order (no
   * deadlock between two batches touching the same rows).
   */
  async write(trx: Trx): Promise<void> {
    const rows = this.sorted();
    // 8 columns × 500 rows stays far below SQLite's bound-variable limit.
    for (let i = 0; i < rows.length; i += 500) await upsertRollups(trx, rows.slice(i, i + 500)).execute();
    this.rows.clear();
  }

  /** The upsert of every row folded so far, as one statement (for callers that build their own). */
  upsert(db: QueryCreator<Database>) {
    return upsertRollups(db, this.sorted());
  }

  private sorted(): StatsHourlyTable[] {
    return [...this.rows.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, row]) => row);
  }
}

function upsertRollups(db: QueryCreator<Database>, rows: StatsHourlyTable[]) {
  return db
    .insertInto('stats_hourly')
    .values(rows)
    .onConflict((oc) =>
      oc.columns(['hour', 'tenant_id', 'lane', 'connector', 'campaign_id', 'status']).doUpdateSet({
        messages: sql`stats_hourly.messages + excluded.messages`,
        segments: sql`stats_hourly.segments + excluded.segments`,
      }),
    );
}
