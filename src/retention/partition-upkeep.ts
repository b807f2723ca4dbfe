import { sql } from 'kysely';
import type { Db, Store } from '../store/store.js';
import { HISTORY_TABLES, type HistoryTable, idBound } from './history-tables.js';
import { createPartition, listPartitions, missingRanges, type Partition } from './partitions.js';

const DAY_MS = 86_400_000;

export interface PartitionSettings {
  partition_hours: number;
  partitions_ahead_days: number;
}

/**
 * PostgreSQL only: keeps the history partitions ahead of the clock and drops those wholly past the
 * retention horizon. Each DDL statement runs in its own transaction behind a cluster-wide advisory
 * lock (one node does it, the others skip) and a lock timeout (never queue the hot path behind DDL
 * for long; the next pass retries).
 */
export class PartitionUpkeep {
  constructor(
    private readonly store: Store,
    private readonly settings: PartitionSettings,
  ) {}

  /** Creates the missing partitions up to now + partitions_ahead_days. Returns their names. */
  async ensureAhead(now: number): Promise<string[]> {
    const interval = Math.round(this.settings.partition_hours * 3_600_000);
    const until = now + this.settings.partitions_ahead_days * DAY_MS;
    const created: string[] = [];
    for (const table of HISTORY_TABLES) {
      const ranges = missingRanges(await listPartitions(this.store.db, table), now, until, interval);
      for (const [from, to] of ranges) {
        const done = await this.ddl((trx) => createPartition(trx, table, from, to));
        if (!done) return created;
        created.push(`${table.name}:${new Date(from).toISOString()}`);
      }
    }
    return created;
  }

  /**
   * Drops the partitions whose whole range is older than `beforeMs`, unless a message of that range is
   * still queued or has a webhook event still pending (a message scheduled far ahead, a webhook still
   * retried): those wait for a later pass. Returns the partitions dropped and those kept for that reason.
   */
  async dropExpired(beforeMs: number): Promise<{ dropped: string[]; kept: string[] }> {
    const dropped: string[] = [];
    const kept: string[] = [];
    const busy = new Map<string, Promise<boolean>>();
    for (const table of HISTORY_TABLES) {
      for (const p of await listPartitions(this.store.db, table)) {
        if (p.isDefault || p.to === null || p.to > beforeMs) continue;
        const range = `${p.from ?? 0}-${p.to}`;
        if (!busy.has(range)) busy.set(range, inFlight(this.store.db, p.from ?? 0, p.to));
        if (await busy.get(range)) {
          kept.push(p.name);
          continue;
        }
        const done = await this.ddl((trx) => sql`drop table ${sql.table(p.name)}`.execute(trx));
        if (!done) return { dropped, kept };
        dropped.push(p.name);
      }
    }
    return { dropped, kept };
  }

  /**
   * Epoch ms below which `table`'s rows are in no time-slice partition (the legacy or default one):
   * retention deletes those row by row, since no partition drop will take them soon.
   */
  async sliceFloor(table: HistoryTable): Promise<number> {
    const starts = (await listPartitions(this.store.db, table))
      .map((p: Partition) => p.from)
      .filter((t): t is number => t !== null);
    return starts.length > 0 ? Math.min(...starts) : Number.POSITIVE_INFINITY;
  }

  /** Runs `fn` in a transaction if this node gets the retention lock; false when another node has it. */
  private async ddl(fn: (trx: Db) => Promise<unknown>): Promise<boolean> {
    return this.store.write(async (trx) => {
      const { rows } = await sql<{
        locked: boolean;
      }>`select pg_try_advisory_xact_lock(hashtext('relais.retention')) as locked`.execute(trx);
      if (!rows[0]?.locked) return false;
      await sql`set local lock_timeout = '2s'`.execute(trx);
      await fn(trx);
      return true;
    });
  }
}

/** True when a message created in [fromMs, toMs) is still queued or has a webhook event pending. */
async function inFlight(db: Db, fromMs: number, toMs: number): Promise<boolean> {
  const msgLo = idBound('msg', fromMs);
  const msgHi = idBound('msg', toMs);
  const queued = await db
    .selectFrom('queue')
    .select('message_id')
    .where('message_id', '>=', msgLo)
    .where('message_id', '<', msgHi)
    .limit(1)
    .executeTakeFirst();
  if (queued) return true;
  const pending = await db
    .selectFrom('webhook_events')
    .select('id')
    .where('status', '=', 'pending')
    .where((eb) =>
      eb.or([
        eb.and([eb('id', '>=', idBound('evt', fromMs)), eb('id', '<', idBound('evt', toMs))]),
        eb.and([eb('message_id', '>=', msgLo), eb('message_id', '<', msgHi)]),
      ]),
    )
    .limit(1)
    .executeTakeFirst();
  return pending !== undefined;
}
