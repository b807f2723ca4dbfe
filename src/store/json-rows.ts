import { type Compilable, CompiledQuery } from 'kysely';
import { isPostgres, quotedNames } from './insert-rows.js';
import type { Trx } from './store.js';

/**
 * Reading many rows of many columns on SQLite, through JSON. better-sqlite3 builds each row as an
 * object, one property at a time: on 500-row reads by primary key, a row of 12 columns took 3.5 µs,
 * of which SQLite's own work was 0.5 µs. The same rows as one `json_group_array` text and one
 * `JSON.parse` took 1.4 µs (measured apart, on a 200,000-message table). Only for columns that
 * hold text, numbers or NULL: SQLite's JSON refuses blobs. PostgreSQL rows are read as they are.
 *
 * Column names are our own (typed by the caller's row), never request input.
 */

/** The rows of `query`, a SELECT of exactly `columns`, in no particular order. */
export async function selectRows<R>(trx: Trx, query: Compilable<R>, columns: readonly (keyof R & string)[]) {
  const compiled = query.compile();
  if (isPostgres(trx)) return (await trx.executeQuery(compiled)).rows as R[];
  const text = `select json_group_array(json_array(${quotedNames(columns)})) as "rows" from (${compiled.sql})`;
  const { rows } = await trx.executeQuery<{ rows: string }>(
    CompiledQuery.raw(text, [...compiled.parameters]),
  );
  return (JSON.parse(rows[0]!.rows) as unknown[][]).map((values) => rowOf<R>(columns, values));
}

/**
 * The rows `statement` (an UPDATE or DELETE, without RETURNING) changes, with `columns` as the
 * statement leaves them. SQLite allows no aggregate in RETURNING: each row comes back as one JSON
 * text, still far cheaper than as an object of its columns.
 */
export async function returningRows<R>(
  trx: Trx,
  statement: Compilable<unknown>,
  columns: readonly (keyof R & string)[],
): Promise<R[]> {
  const compiled = statement.compile();
  if (isPostgres(trx)) {
    const text = `${compiled.sql} returning ${quotedNames(columns)}`;
    return (await trx.executeQuery<R>(CompiledQuery.raw(text, [...compiled.parameters]))).rows;
  }
  const text = `${compiled.sql} returning json_array(${quotedNames(columns)}) as "row"`;
  const { rows } = await trx.executeQuery<{ row: string }>(CompiledQuery.raw(text, [...compiled.parameters]));
  return rows.map((r) => rowOf<R>(columns, JSON.parse(r.row) as unknown[]));
}

function rowOf<R>(columns: readonly string[], values: unknown[]): R {
  const row: Record<string, unknown> = {};
  for (let i = 0; i < columns.length; i++) row[columns[i]!] = values[i];
  return row as R;
}
