import { type Kysely, sql } from 'kysely';
import { HISTORY_TABLES, type HistoryTable } from '../../retention/history-tables.js';
import { createDefaultPartition, createPartition } from '../../retention/partitions.js';

const DAY_MS = 86_400_000;

/**
 * Retention (src/retention/, docs/retention.md).
 *
 * Both dialects: `redacted_at` on messages and inbound messages — when retention blanked the text.
 *
 * PostgreSQL: the history tables become partitioned by RANGE on their time-ordered id key, so old
 * history leaves by DROP TABLE of a whole partition (no DELETE, no bloat, no vacuum debt). Each table is
 * rebuilt: renamed away, recreated LIKE the old one (columns, defaults) with the key in byte order
 * (COLLATE "C", the order of ULIDs), given a DEFAULT partition and a `_p_legacy` partition holding
 * every row older than today, the rows copied, then the primary key and the old indexes recreated on
 * the parent. The time slices from today on are created by the application (src/retention/) as soon as
 * it starts, at the width `retention.partition_hours` says (a migration has no configuration); rows of
 * today copied here wait in the DEFAULT partition and move into their slice then. Installed
 * bases are small when this runs; new installations run it on empty tables. message_events and
 * webhook_attempts keep their serial id but their primary key becomes (parent id, id).
 *
 * SQLite keeps its tables: retention deletes in chunks there. Its switch to `auto_vacuum = INCREMENTAL`
 * needs a VACUUM, which cannot run inside the migration's transaction: store.ts does it right after.
 */
export async function up(db: Kysely<unknown>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  await db.schema.alterTable('messages').addColumn('redacted_at', 'bigint').execute();
  await db.schema.alterTable('inbound_messages').addColumn('redacted_at', 'bigint').execute();
  if (dialect !== 'postgres') return;
  const now = Date.now();
  // Tables made later (webhook_deliveries, migration 015) are created partitioned by their migration.
  for (const table of HISTORY_TABLES.filter((t) => !LATER_TABLES.has(t.name)))
    await partitionTable(db, table, now);
}

const LATER_TABLES: ReadonlySet<string> = new Set(['webhook_deliveries']);

async function partitionTable(db: Kysely<unknown>, table: HistoryTable, now: number): Promise<void> {
  const name = table.name;
  const old = `${name}_pre006`;
  const key = sql.ref(table.key);
  await sql`alter table ${sql.table(name)} alter column ${key} type text collate "C"`.execute(db);
  const { rows: indexes } = await sql<{ indexdef: string }>`
    select pg_get_indexdef(i.indexrelid) as indexdef
    from pg_index i
    where i.indrelid = ${name}::regclass and not i.indisprimary
    order by i.indexrelid`.execute(db);
  const { rows: sequences } = await sql<{ column: string; seq: string | null }>`
    select a.attname as column, pg_get_serial_sequence(${name}, a.attname) as seq
    from pg_attribute a
    where a.attrelid = ${name}::regclass and a.attnum > 0 and not a.attisdropped`.execute(db);
  // Index names live in the schema namespace: the old ones must go before the new ones are created.
  await sql`alter table ${sql.table(name)} rename to ${sql.table(old)}`.execute(db);
  await sql`create table ${sql.table(name)} (like ${sql.table(old)} including defaults)
    partition by range (${key})`.execute(db);
  await createDefaultPartition(db, table);
  const today = Math.floor(now / DAY_MS) * DAY_MS;
  await createPartition(db, table, null, today, `${name}_p_legacy`);
  await sql`insert into ${sql.table(name)} select * from ${sql.table(old)}`.execute(db);
  for (const s of sequences) {
    if (s.seq === null) continue;
    // The serial's sequence belongs to the old table and would be dropped with it.
    await sql`alter sequence ${sql.raw(s.seq)} owned by ${sql.table(name)}.${sql.ref(s.column)}`.execute(db);
  }
  await sql`drop table ${sql.table(old)}`.execute(db);
  await sql`alter table ${sql.table(name)} add constraint ${sql.ref(`${name}_pkey`)}
    primary key (${sql.join(table.primaryKey.map((c) => sql.ref(c)))})`.execute(db);
  // Read before the rename, the definitions name the table by its original name: the new parent.
  for (const { indexdef } of indexes) await sql.raw(indexdef).execute(db);
}
