import type { MessagePort } from 'node:worker_threads';
import type { Trx } from './store.js';

/** What the main thread and the SQLite thread (sqlite-thread.ts, sqlite-worker.ts) send each other. */

export const Op = {
  /** One statement: rows when it reads, changes when it writes. */
  Query: 0,
  /** SQL run as text, several statements allowed (a pragma whose every step must run). */
  Exec: 1,
  /** `pragma <text>`, its single value as the row `{ value }`. */
  Pragma: 2,
  /** ROLLBACK, only when a transaction is open (SQLite may have rolled back already on an error). */
  RollbackIfOpen: 3,
  /** Closes the connection; the thread ends after answering. */
  Close: 4,
  /** A whole transaction of thread-transactions.ts, by name, with its arguments (`params`). */
  Transaction: 5,
} as const;
export type Op = (typeof Op)[keyof typeof Op];

/** `text`: the SQL, or the transaction's name; `args`: the statement's parameters, or its arguments. */
export type SqliteRequest = [id: number, op: Op, text: string, args: unknown];

/** An error of the SQLite thread, rebuilt on the main thread with the same message and code. */
export interface ThreadSqliteError {
  message: string;
  /** SQLite's extended result code, e.g. SQLITE_CONSTRAINT_UNIQUE. */
  code?: string | undefined;
  name?: string;
}

export type SqliteResult = [
  /** A reading statement's rows; a transaction's result. */
  rows: unknown,
  changes: number,
  lastInsertRowid: number | bigint | null,
];

export type SqliteReply = [id: number, ...result: SqliteResult, error: ThreadSqliteError | null];

/** The SQLite thread's `workerData.role`: how code loaded into every thread recognises it. */
export const SQLITE_THREAD_ROLE = 'relais-sqlite';

export interface SqliteThreadData {
  role: typeof SQLITE_THREAD_ROLE;
  path: string;
  /** Run in order once the database is open, e.g. `journal_mode = WAL`. */
  pragmas: string[];
  /** The main thread waits on its first int for the answers of Query … Close, which come on `port`. */
  signal: SharedArrayBuffer;
  port: MessagePort;
}

/**
 * A write transaction the SQLite thread runs whole, from BEGIN IMMEDIATE to COMMIT, while the main
 * thread goes on with other work (Store.writeCommittedIn). `run` gets the same Kysely handle as any
 * other transaction, so PostgreSQL runs it unchanged; its arguments and result cross threads by
 * structured cloning (plain data only). Listed in thread-transactions.ts, where the thread finds it.
 */
export interface ThreadTransaction<A, R> {
  readonly name: string;
  run(trx: Trx, args: A): Promise<R>;
}
