import { sql } from 'kysely';
import type { Store } from '../store/store.js';

/** Tables vacuumed in one housekeeping pass, at most (the ones with the most dead rows first). */
const TABLES_PER_PASS = 4;

/**
 * PostgreSQL: vacuums the tables (leaf partitions included) whose dead rows piled up, so that churn —
 * the queue gains, leases and loses a row per message; statuses rewrite history rows — never grows
 * the database, whether autovacuum is on, off (seen on a test server: the queue alone grew by
 * 4 MiB a minute at 200 msg/s) or behind. A threshold like autovacuum's: `minDead` plus a tenth of
 * the live rows; a table vacuumed (by anyone) in the last minute is left alone. SQLite reuses freed
 * pages in place: nothing to do there. Returns the tables vacuumed.
 */
export async function vacuumDeadRows(store: Store, minDead: number): Promise<string[]> {
  if (store.dialect !== 'postgres' || minDead <= 0) return [];
  const due = await sql<{ relname: string }>`
    select s.relname
    from pg_stat_user_tables s
    where s.schemaname = current_schema()
      and s.n_dead_tup > ${minDead} + s.n_live_tup / 10
      and coalesce(greatest(s.last_vacuum, s.last_autovacuum), '-infinity') < now() - interval '1 minute'
    order by s.n_dead_tup desc
    limit ${TABLES_PER_PASS}`.execute(store.db);
  const vacuumed: string[] = [];
  for (const { relname } of due.rows) {
    // Outside any transaction (VACUUM refuses one); SKIP_LOCKED: never wait behind a DDL lock.
    await sql`vacuum (skip_locked) ${sql.id(relname)}`.execute(store.db);
    vacuumed.push(relname);
  }
  return vacuumed;
}
