import { type Compilable, CompiledQuery, type Expression, type Insertable, type SqlBool, sql } from 'kysely';
import type { Database } from './schema.js';
import type { Db, Trx } from './store.js';

/**
 * A multi-row INSERT written without Kysely's query builder. The builder makes and freezes an
 * operation node for every value, then compiles them all: for the carrier path's inserts (hundreds
 * of rows of up to 17 columns, many times a second) that was the biggest share of Kysely's own time
 * and of the garbage collector's (profiled). Column names come from the first row — our own objects,
 * typed by the table, never request input — and every value is a bound parameter.
 *
 * PostgreSQL gets the rows as one JSON parameter (pgRecordset) instead of a VALUES list with a
 * parameter per value: 500 messages were 10,500 parameters for the server to parse and bind.
 * Inserting 100,000 message rows in batches of 500 took 3.0 s with VALUES and 1.6 s with one array
 * parameter per column (unnest), the server's share halved (measured on this project's bench
 * machine); JSON then cut the client's share (pgRecordset).
 *
 * `onConflict`: a trailing ON CONFLICT clause, the same text on both dialects.
 *
 * On SQLite the INSERT is `insert or fail` (see sqliteOrFail): the caller's transaction is what
 * makes it all or nothing.
 */
export async function insertRows<T extends keyof Database & string>(
  trx: Trx,
  table: T,
  rows: readonly Insertable<Database[T]>[],
  onConflict = '',
): Promise<void> {
  if (rows.length === 0) return;
  const tail = onConflict ? ` ${onConflict}` : '';
  if (!isPostgres(trx)) {
    await sqliteInsert(trx, 'insert or fail', table, rows, tail);
    return;
  }
  const columns = Object.keys(rows[0]!);
  const source = await pgRecordset(trx, table, columns);
  const text = `insert into "${table}" (${quotedNames(columns)}) select * from ${source}${tail}`;
  await trx.executeQuery(CompiledQuery.raw(text, [rowsJson(rows)]));
}

/**
 * insertRows with an `on conflict … do update` clause, for rows that are almost always new (the parts
 * of submitted messages: a part is there already only when it is sent again after a crash).
 *
 * Why: on SQLite an upsert keeps a statement journal whatever its conflict clause (sqliteOrFail);
 * with carrier ids filed at random places of their index, it copied a page per row or so. So the
 * rows first go in by `insert or ignore`, which needs none, and only when fewer went in than were
 * given does the upsert run, over all of them: the rows just inserted take the same values again,
 * and a row that breaks NOT NULL, skipped by the first statement, fails the second. Measured apart
 * (batches of 100 parts with random carrier ids, 200,000 parts there already): 14–19 µs a part as
 * an upsert, 5.2–6.0 this way. PostgreSQL: the upsert alone.
 */
export async function upsertRows<T extends keyof Database & string>(
  trx: Trx,
  table: T,
  rows: readonly Insertable<Database[T]>[],
  onConflict: string,
): Promise<void> {
  if (rows.length === 0) return;
  if (!isPostgres(trx) && (await sqliteInsert(trx, 'insert or ignore', table, rows, '')) === rows.length)
    return;
  await insertRows(trx, table, rows, onConflict);
}

/** SQLite: `rows` by one multi-row INSERT (`verb` into `table` … `tail`); the rows it inserted. */
async function sqliteInsert(
  trx: Trx,
  verb: 'insert or fail' | 'insert or ignore',
  table: string,
  rows: readonly object[],
  tail: string,
): Promise<number> {
  const columns = Object.keys(rows[0]!);
  const head = `${verb} into "${table}" (${quotedNames(columns)}) values `;
  const text = sqliteValuesText(head, columns.length, rows.length, tail);
  const { numAffectedRows } = await trx.executeQuery(CompiledQuery.raw(text, sqliteParams(rows, columns)));
  return Number(numAffectedRows ?? 0);
}

/** `"a","b",…`: column names (our own, never request input) quoted for SQL. */
export const quotedNames = (columns: readonly string[]) => columns.map((c) => `"${c}"`).join(',');

/**
 * Updates many rows of `table`, each with its own values, in one statement: every row of `rows`
 * names the row to change by its `key` column, and `assignments` (the SET list, our own text, never
 * request input) reads the row's values as `v."column"`. The columns of `rows` are columns of
 * `table`, so they take its types. Why: the same UPDATE built by Kysely for each row cost one
 * statement to build, compile and run per row; webhook attempts, each with its own time and
 * status code, were one UPDATE per event.
 *
 * PostgreSQL: `update … from json_to_recordset($1::json) as v(…)`, the rows as one JSON parameter,
 * as in insertRows. SQLite (3.33 and later): `with v(…) as (values (?, …), …) update … from v`; its
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
  const names = quotedNames(columns);
  const where = ` where "${table}"."${key}" = "v"."${key}"`;
  if (isPostgres(trx)) {
    const source = await pgRecordset(trx, table, columns);
    const text = `update "${table}" set ${assignments} from ${source}${where}`;
    await trx.executeQuery(CompiledQuery.raw(text, [rowsJson(rows)]));
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

/**
 * PostgreSQL: `json_to_recordset($1::json) as "v" ("column" type, …)`, the rows' columns typed as the
 * table's, for the rows sent as one JSON text (rowsJson). Before, each column was an array parameter
 * (`unnest($1::text[], …)`), which node-postgres turns into an array literal in JavaScript, escaping
 * every element (6% of the main thread in the carrier-path profile on PostgreSQL); JSON.stringify is
 * native. Measured apart, 200,000 webhook-event rows in 500-row inserts: 10.0–10.4 µs of the client's
 * CPU a row with arrays, 6.6–6.7 with JSON, the statements' time the same.
 */
async function pgRecordset(trx: Trx, table: string, columns: string[]): Promise<string> {
  const types = await columnTypes(trx, table, columns);
  const definitions = columns.map((column) => `"${column}" ${types.get(column)}`).join(',');
  return `json_to_recordset($1::json) as "v" (${definitions})`;
}

/**
 * The rows as JSON. A lone UTF-16 surrogate (a text cut inside an emoji) comes out of JSON.stringify
 * as an escape that PostgreSQL refuses to turn into text; node-postgres sent such text as U+FFFD, and
 * so does this. (A backslash of the text itself is escaped, `\\`: the pattern skips those.)
 */
function rowsJson(rows: readonly object[]): string {
  const json = JSON.stringify(rows);
  return json.includes('\\ud') ? json.replace(LONE_SURROGATE, '$1\\ufffd') : json;
}

const LONE_SURROGATE = /(?<!\\)((?:\\\\)*)\\ud[89a-f][0-9a-f]{2}/g;

/**
 * SQLite: `insert …` and `update …` as `insert or fail …` and `update or fail …`, for statements that
 * run inside a write transaction (every write does on SQLite: Store.write and the rest).
 *
 * Why: a statement that writes many rows (a multi-row INSERT or UPDATE) and may stop on a constraint
 * halfway (ABORT, SQLite's default for UNIQUE and NOT NULL) needs a statement journal, so that it
 * can undo its own rows and leave the transaction's earlier statements: SQLite copies every page
 * the statement touches into it first, 32 KiB a page here, spilled to a temp file beyond 64 KiB.
 * That was 3.3% of the main thread in the end-to-end benchmark (perf), and two 500-row inserts of
 * messages and their queue entries per transaction took 17.6–18.6 µs a message with FAIL against
 * 22.6–24.2 with ABORT (measured apart). With FAIL a failing statement keeps the rows it wrote
 * before the failure — and the error rolls the whole transaction back (no caller goes on with a
 * transaction after a failed statement), so nothing of it is ever committed.
 *
 * FAIL does not help a statement that calls a function able to fail (json_array in a RETURNING
 * list, `||`, abs…) or an upsert (ON CONFLICT DO UPDATE): those keep their journal either way
 * (seen with strace, as the journal's temp file, for each statement shape on a copy of the schema).
 */
function sqliteOrFail(text: string): string {
  return text.replace(/^(insert|update) /, '$1 or fail ');
}

/** Runs `statement`, an INSERT or UPDATE built by Kysely, as sqliteOrFail writes it on SQLite. */
export async function executeOrFail(trx: Trx, statement: Compilable<unknown>): Promise<void> {
  const compiled = statement.compile();
  if (isPostgres(trx)) await trx.executeQuery(compiled);
  else await trx.executeQuery(CompiledQuery.raw(sqliteOrFail(compiled.sql), [...compiled.parameters]));
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
