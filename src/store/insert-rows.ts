import { CompiledQuery, type Insertable, sql } from 'kysely';
import type { Database } from './schema.js';
import type { Trx } from './store.js';

/**
 * A multi-row INSERT written without Kysely's query builder. The builder makes and freezes an
 * operation node for every value, then compiles them all: for the carrier path's inserts (hundreds
 * of rows of up to 17 columns, many times a second) that was the biggest share of Kysely's own time
 * and of the garbage collector's (profiled). Column names come from the first row — our own objects,
 * typed by the table, never request input — and every value is a bound parameter.
 *
 * `onConflict`: a trailing ON CONFLICT clause, the same text on both dialects.
 */
export async function insertRows<T extends keyof Database & string>(
  trx: Trx,
  table: T,
  rows: readonly Insertable<Database[T]>[],
  onConflict = '',
): Promise<void> {
  if (rows.length === 0) return;
  const columns = Object.keys(rows[0]!);
  const numbered = numberedPlaceholders(trx);
  const params: unknown[] = [];
  const tuples: string[] = [];
  for (const row of rows) {
    const record = row as Record<string, unknown>;
    const marks: string[] = [];
    for (const column of columns) {
      params.push(record[column] ?? null);
      marks.push(numbered ? `$${params.length}` : '?');
    }
    tuples.push(`(${marks.join(',')})`);
  }
  const text = `insert into "${table}" (${columns.map((c) => `"${c}"`).join(',')}) values ${tuples.join(',')}${onConflict ? ` ${onConflict}` : ''}`;
  await trx.executeQuery(CompiledQuery.raw(text, params));
}

const PLACEHOLDER_STYLE = new WeakMap<object, boolean>();

/** PostgreSQL numbers its parameters ($1, $2…), SQLite takes `?`: asked of the dialect's compiler once. */
function numberedPlaceholders(trx: Trx): boolean {
  const key = trx.getExecutor().adapter;
  let numbered = PLACEHOLDER_STYLE.get(key);
  if (numbered === undefined) {
    numbered = sql`select ${1}`.compile(trx).sql.includes('$1');
    PLACEHOLDER_STYLE.set(key, numbered);
  }
  return numbered;
}
