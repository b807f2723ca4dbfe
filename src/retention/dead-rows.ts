import { sql } from 'kysely';
import type { Store } from '../store/store.js';

/** Tables vacuumed or analysed in one housekeeping pass, at most (the busiest first). */
const TABLES_PER_PASS = 4;

/**
 * PostgreSQL: vacuums the tables (leaf partitions included) whose dead rows piled up, and analyses
 * those whose rows changed a lot since their statistics were taken — what autovacuum does, done
 * whether autovacuum is on, off or behind. Seen on a test server with autovacuum off: churn (the
 * queue gains, leases and loses a row per message; statuses rewrite history rows) grew the queue by
 * 4 MiB a minute at 200 msg/s, and partitions never analysed were read by sequential scans (133 rows
 * read per message sent), which made PostgreSQL the bottleneck of the end-to-end benchmark.
 * Thresholds like autovacuum's: `minRows` plus a tenth of the live rows; a table vacuumed (or
 * analysed) by anyone in the last minute is left alone. SQLite reuses freed pages in place and plans
 * without statistics here: nothing to do there. Returns the tables worked on.
 */
export async function vacuumDeadRows(store: Store, minRows: number): Promise<string[]> {
  if (store.dialect !== 'postgres' || minRows <= 0) return [];
  const recently = sql`now() - interval '1 minute'`;
  const due = await sql<{ relname: string; vacuum: boolean }>`
    select relname, vacuum from (
      select s.relname,
        s.n_dead_tup > ${minRows} + s.n_live_tup / 10
          and coalesce(greatest(s.last_vacuum, s.last_autovacuum), '-infinity') < ${recently} as vacuum,
        s.n_mod_since_analyze > ${minRows} + s.n_live_tup / 10
          and coalesce(greatest(s.last_analyze, s.last_autoanalyze), '-infinity') < ${recently} as stale_stats,
        greatest(s.n_dead_tup, s.n_mod_since_analyze) as work
      from pg_stat_user_tables s
      where s.schemaname = current_schema()
    ) t
    where vacuum or stale_stats
    order by work desc
    limit ${TABLES_PER_PASS}`.execute(store.db);
  const done: string[] = [];
  for (const { relname, vacuum } of due.rows) {
    // Outside any transaction (VACUUM refuses one); SKIP_LOCKED: never wait behind a DDL lock.
    if (vacuum) await sql`vacuum (skip_locked, analyze) ${sql.id(relname)}`.execute(store.db);
    else await sql`analyze (skip_locked) ${sql.id(relname)}`.execute(store.db);
    done.push(relname);
  }
  return done;
}
