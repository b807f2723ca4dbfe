import { CompiledQuery, type Expression, type Insertable, type SqlBool, sql } from 'kysely';
import type { Database } from './schema.js';
import type { Db, Trx } from './store.js';

/**
 * A multi-row INSERT written without Kysely's query builder. The builder makes and freezes an
 * operation node for every value, then compiles them all: for the carrier path's inserts (hundreds
 * of rows of up to 17 columns, many times a second) that was the biggest share of Kysely's own time
 * and of the garbage collector's (profiled). Column names come from the first row — our own objects,
 * typed by the table, never request input — and every value is a bound parameter.
 *
 * PostgreSQL gets one array parameter per column (`select * from unnest($1::text[], …)`) instead of
 * a VALUES list with a parameter per value: 500 messages were 10,500 parameters for the server to
 * parse and bind. Inserting 100,000 message rows in batches of 500 took 3.0 s with VALUES and 1.6 s
 * with unnest, the server's share halved (measured on this project's bench machine).
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
  const names = columns.map((c) => `"${c}"`).join(',');
  const tail = onConflict ? ` ${onConflict}` : '';
  if (isPostgres(trx)) {
    const { unnest, arrays } = await pgUnnest(trx, table, columns, rows);
    const text = `insert into "${table}" (${names}) select * from ${unnest}${tail}`;
    await trx.executeQuery(CompiledQuery.raw(text, arrays));
    return;
  }
  const text = sqliteValuesText(
    `insert into "${table}" (${names}) values `,
    columns.length,
    rows.length,
    tail,
  );
  await trx.executeQuery(CompiledQuery.raw(text, sqliteParams(rows, columns)));
}

/**
 * Updates many rows of `table`, each with its own values, in one statement: every row of `rows`
 * names the row to change by its `key` column, and `assignments` (the SET list, our own text, never
 * request input) reads the row's values as `v."column"`. The columns of `rows` are columns of
 * `table`, so they take its types. Why: the same UPDATE built by Kysely for each row cost one
 * statement to build, compile and run per row; webhook attempts, each with its own time and
 * status code, were one UPDATE per event.
 *
 * PostgreSQL: `update … from unnest($1::text[], …) as v(…)`, one array parameter per column, as in
 * insertRows. SQLite (3.33 and later): `with v(…) as (values (?, …), …) update … from v`; its
 * planner reads v and finds each row by the key's index.
 */
export async function updateRows<T extends keyof Database & string>(
  trx: Trx,
  table: T,
  key: keyof Database[T] & string,
  rows: readonly Partial<Insertable<Database[T]>>[],
  assignments: string,
): Promise<void> {
  if (rows.length === 0) return;
  const columns = Object.keys(rows[0]!);
  const names = columns.map((c) => `"${c}"`).join(',');
  const where = ` where "${table}"."${key}" = "v"."${key}"`;
  if (isPostgres(trx)) {
    const { unnest, arrays } = await pgUnnest(trx, table, columns, rows);
    const text = `update "${table}" set ${assignments} from ${unnest} as "v" (${names})${where}`;
    await trx.executeQuery(CompiledQuery.raw(text, arrays));
    return;
  }
  const text = sqliteValuesText(
    `with "v" (${names}) as (values `,
    columns.length,
    rows.length,
    `) update "${table}" set ${assignments} from "v"${where}`,
  );
  await trx.executeQuery(CompiledQuery.raw(text, sqliteParams(rows, columns)));
}

/** PostgreSQL: `unnest($1::type[], …)` of the rows, one array parameter per column, typed as the table's. */
async function pgUnnest(
  trx: Trx,
  table: string,
  columns: string[],
  rows: readonly object[],
): Promise<{ unnest: string; arrays: unknown[][] }> {
  const types = await columnTypes(trx, table, columns);
  const arrays = columns.map((column) => rows.map((row) => (row as Record<string, unknown>)[column] ?? null));
  const params = columns.map((column, i) => `$${i + 1}::${types.get(column)}[]`).join(',');
  return { unnest: `unnest(${params})`, arrays };
}

/** SQLite's parameters: every row's values, row after row. */
function sqliteParams(rows: readonly object[], columns: string[]): unknown[] {
  const params: unknown[] = [];
  for (const row of rows) {
    const record = row as Record<string, unknown>;
    for (const column of columns) params.push(record[column] ?? null);
  }
  return params;
}

const SQLITE_TEXTS = new Map<string, string>();

/**
 * The same string for the same statement shape: the store's statement cache is a Map keyed by the
 * text, and a new string of a 500-row insert (about 20 kB) was hashed and compared whole on every
 * lookup (profiled: 0.35 s of a 54 s end-to-end run on the main thread). A string already hashed and
 * found by identity costs nothing. Shapes are few (tables × row counts up to the chunk size).
 */
function sqliteValuesText(head: string, columns: number, count: number, tail: string): string {
  const key = `${head}${count}${tail}`;
  let text = SQLITE_TEXTS.get(key);
  if (text === undefined) {
    if (SQLITE_TEXTS.size >= 4096) SQLITE_TEXTS.clear();
    const marks = `(${'?,'.repeat(columns - 1)}?)`;
    text = `${head}${Array(count).fill(marks).join(',')}${tail}`;
    SQLITE_TEXTS.set(key, text);
  }
  return text;
}

/**
 * `column` is one of `values`: on PostgreSQL `column = any($1)`, one array parameter however many
 * values (the server parses and binds one parameter, not hundreds); on SQLite, which binds no
 * arrays, `column in (?, ?, …)`.
 */
export function inList(db: Db, column: string, values: readonly (string | number)[]): Expression<SqlBool> {
  if (isPostgres(db)) return sql<SqlBool>`${sql.ref(column)} = any(${values})`;
  return sql<SqlBool>`${sql.ref(column)} in (${sql.join(values)})`;
}

const TYPES = new Map<string, Map<string, string>>();

/** SQL types of a table's columns, read from the catalogue once (again if a column is new to us). */
async function columnTypes(trx: Trx, table: string, columns: string[]): Promise<Map<string, string>> {
  const known = TYPES.get(table);
  if (known && columns.every((c) => known.has(c))) return known;
  const { rows } = await sql<{ name: string; type: string }>`
    select attname as name, format_type(atttypid, atttypmod) as type
    from pg_attribute
    where attrelid = to_regclass(${`"${table}"`}) and attnum > 0 and not attisdropped`.execute(trx);
  const types = new Map(rows.map((r) => [r.name, r.type]));
  const missing = columns.filter((c) => !types.has(c));
  if (missing.length > 0) throw new Error(`insertRows: ${table} has no column ${missing.join(', ')}`);
  TYPES.set(table, types);
  return types;
}

const POSTGRES = new WeakMap<object, boolean>();

/** Asked of the dialect's compiler once: PostgreSQL numbers its parameters ($1, $2…), SQLite takes `?`. */
export function isPostgres(db: Db): boolean {
  const key = db.getExecutor().adapter;
  let postgres = POSTGRES.get(key);
  if (postgres === undefined) {
    postgres = sql`select ${1}`.compile(db).sql.includes('$1');
    POSTGRES.set(key, postgres);
  }
  return postgres;
}
