import { sql } from 'kysely';
import { type HistoryTable, idBound, idTime } from './history-tables.js';

/**
 * PostgreSQL partitions of the history tables. Bounds are ids (`msg_` + the ULID time of a boundary +
 * zeros), so a lookup by id prunes to one partition and dropping a partition removes one time slice.
 * Besides the time slices each table has a DEFAULT partition (a safety net for ids outside every
 * range) and, on installations upgraded by migration 006, a `_p_legacy` one from MINVALUE.
 */
export interface Partition {
  name: string;
  /** Epoch ms of the lower bound; null for MINVALUE (the legacy partition) and the default one. */
  from: number | null;
  /** Epoch ms of the upper bound; null for the default partition. */
  to: number | null;
  isDefault: boolean;
}

// Any kysely handle works (migrations see Kysely<unknown>, the service Kysely<Database>): raw SQL only.
type AnyDb = Parameters<ReturnType<typeof sql>['execute']>[0];

export async function listPartitions(db: AnyDb, table: HistoryTable): Promise<Partition[]> {
  const { rows } = await sql<{ name: string; bound: string }>`
    select c.relname as name, pg_get_expr(c.relpartbound, c.oid) as bound
    from pg_inherits i
    join pg_class c on c.oid = i.inhrelid
    join pg_class p on p.oid = i.inhparent
    where p.relname = ${table.name} and p.relnamespace = current_schema()::regnamespace`.execute(db);
  return rows.map((r) => parseBound(table, r.name, r.bound));
}

function parseBound(table: HistoryTable, name: string, bound: string): Partition {
  if (bound === 'DEFAULT') return { name, from: null, to: null, isDefault: true };
  const m = /FROM \((.+)\) TO \((.+)\)/.exec(bound);
  if (!m) throw new Error(`unexpected partition bound of ${name}: ${bound}`);
  const time = (v: string) => (v === 'MINVALUE' ? null : idTime(table.prefix, v.replace(/^'|'$/g, '')));
  return { name, from: time(m[1]!), to: time(m[2]!), isDefault: false };
}

/** `messages_p20260101_0000`: the partition starting at that UTC minute. */
export function partitionName(table: HistoryTable, fromMs: number): string {
  const stamp = new Date(fromMs).toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', '_');
  return `${table.name}_p${stamp}`;
}

/**
 * Creates the partition [fromMs, toMs). Rows of that range already sitting in the DEFAULT partition
 * (written while no partition covered them) are moved into it in the same transaction — PostgreSQL
 * refuses to create a partition whose rows the default one holds.
 */
export async function createPartition(
  trx: AnyDb,
  table: HistoryTable,
  fromMs: number | null,
  toMs: number,
  name = partitionName(table, fromMs ?? 0),
): Promise<void> {
  const lo = fromMs === null ? sql.raw('MINVALUE') : sql.lit(idBound(table.prefix, fromMs));
  const hi = sql.lit(idBound(table.prefix, toMs));
  const key = sql.ref(table.key);
  const parent = sql.table(table.name);
  const defaultPart = sql.table(`${table.name}_default`);
  const inRange = fromMs === null ? sql`${key} < ${hi}` : sql`${key} >= ${lo} and ${key} < ${hi}`;
  const stranded = await sql`select 1 from ${defaultPart} where ${inRange} limit 1`.execute(trx);
  const move = stranded.rows.length > 0;
  if (move) {
    await sql`create temp table retention_moving (like ${parent}) on commit drop`.execute(trx);
    await sql`with moved as (delete from ${defaultPart} where ${inRange} returning *)
      insert into retention_moving select * from moved`.execute(trx);
  }
  await sql`create table ${sql.table(name)} partition of ${parent} for values from (${lo}) to (${hi}) ${storage(table)}`.execute(
    trx,
  );
  if (move) await sql`insert into ${parent} select * from retention_moving`.execute(trx);
}

/** The storage parameters a partition of `table` is created with. */
function storage(table: HistoryTable) {
  return table.fillfactor === undefined ? sql`` : sql`with (fillfactor = ${sql.lit(table.fillfactor)})`;
}

export async function createDefaultPartition(trx: AnyDb, table: HistoryTable): Promise<void> {
  await sql`create table ${sql.table(`${table.name}_default`)} partition of ${sql.table(table.name)} default ${storage(table)}`.execute(
    trx,
  );
}

/**
 * The partitions still missing so that `table` is covered up to `untilMs`: from the end of the last
 * one, on the grid of `intervalMs` (UTC midnight for daily partitions). A gap left by a long stop is
 * bridged by one partition up to the current slot instead of many empty ones.
 */
export function missingRanges(
  partitions: Partition[],
  nowMs: number,
  untilMs: number,
  intervalMs: number,
): [number, number][] {
  const ends = partitions.map((p) => p.to).filter((t): t is number => t !== null);
  const slot = Math.floor(nowMs / intervalMs) * intervalMs;
  let end = ends.length > 0 ? Math.max(...ends) : slot;
  const out: [number, number][] = [];
  if (end < slot) {
    out.push([end, slot]);
    end = slot;
  }
  while (end < untilMs) {
    const next = Math.floor(end / intervalMs) * intervalMs + intervalMs;
    out.push([end, next]);
    end = next;
  }
  return out;
}
