/**
 * The SQLite connection's own thread (see sqlite-thread.ts): opens the database, runs each statement
 * the main thread sends and answers at once (the main thread waits), and runs whole transactions of
 * thread-transactions.ts while the main thread goes on.
 */
import { parentPort, workerData } from 'node:worker_threads';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import type { Database } from './schema.js';
import {
  Op,
  type SqliteReply,
  type SqliteRequest,
  type SqliteResult,
  type SqliteThreadData,
  type ThreadSqliteError,
} from './sqlite-protocol.js';
import { THREAD_TRANSACTIONS } from './thread-transactions.js';

const { path, pragmas, signal, port: answers } = workerData as SqliteThreadData;
const flag = new Int32Array(signal);
const port = parentPort!;

let sqlite: SqliteDatabase.Database | null = null;
// Answered to every request: the main thread's callers see why the database could not be opened.
let openError: ThreadSqliteError | null = null;
try {
  sqlite = new SqliteDatabase(path);
  for (const pragma of pragmas) sqlite.pragma(pragma);
} catch (err) {
  openError = errorOf(err);
}

/**
 * Kysely prepares every query anew; with better-sqlite3 that was 8% of the CPU of batch intake
 * (profiled). The same SQL text maps to the same prepared statement; an LRU keeps the memory bounded
 * (multi-row inserts of varying sizes produce many distinct texts).
 */
const STATEMENT_CACHE_SIZE = 256;
const statements = new Map<string, SqliteDatabase.Statement>();

function prepare(conn: SqliteDatabase.Database, text: string): SqliteDatabase.Statement {
  let stmt = statements.get(text);
  if (stmt) {
    statements.delete(text);
  } else {
    stmt = conn.prepare(text);
    if (statements.size >= STATEMENT_CACHE_SIZE) statements.delete(statements.keys().next().value!);
  }
  statements.set(text, stmt);
  return stmt;
}

// The thread's own Kysely over the same connection, for the transactions it runs whole.
const db = sqlite
  ? new Kysely<Database>({
      dialect: new SqliteDialect({
        database: { prepare: (text: string) => prepare(sqlite!, text), close: () => {} },
      }),
    })
  : null;

const NOTHING: SqliteResult = [null, 0, null];

function runStatement(conn: SqliteDatabase.Database, op: Op, text: string, params: unknown): SqliteResult {
  switch (op) {
    case Op.Query: {
      const stmt = prepare(conn, text);
      const values = (params ?? []) as unknown[];
      if (stmt.reader) return [stmt.all(values), 0, null];
      const { changes, lastInsertRowid } = stmt.run(values);
      return [null, changes, lastInsertRowid];
    }
    case Op.Exec:
      conn.exec(text);
      return NOTHING;
    case Op.Pragma:
      return [[{ value: conn.pragma(text, { simple: true }) }], 0, null];
    case Op.RollbackIfOpen:
      if (conn.inTransaction) conn.exec('rollback');
      return NOTHING;
    default:
      statements.clear();
      conn.close();
      sqlite = null;
      return NOTHING;
  }
}

async function runTransaction(name: string, args: unknown): Promise<unknown> {
  const transaction = THREAD_TRANSACTIONS.get(name);
  if (!transaction || !db || !sqlite) throw new Error(`no transaction named ${name}`);
  return db.connection().execute(async (conn) => {
    await sql`begin immediate`.execute(conn);
    try {
      const result = await transaction.run(conn, args as never);
      await sql`commit`.execute(conn);
      return result;
    } catch (err) {
      if (sqlite?.inTransaction) sqlite.exec('rollback');
      throw err;
    }
  });
}

port.on('message', ([id, op, text, args]: SqliteRequest) => {
  if (op === Op.Transaction) {
    runTransaction(text, args).then(
      (result) => port.postMessage([id, result, 0, null, null] satisfies SqliteReply),
      (err) => port.postMessage([id, ...NOTHING, errorOf(err)] satisfies SqliteReply),
    );
    return;
  }
  let reply: SqliteReply;
  if (!sqlite) {
    reply = [id, ...NOTHING, openError ?? { message: 'the database is closed' }];
  } else {
    try {
      reply = [id, ...runStatement(sqlite, op, text, args), null];
    } catch (err) {
      reply = [id, ...NOTHING, errorOf(err)];
    }
  }
  answers.postMessage(reply);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
  if (op === Op.Close) {
    answers.close();
    port.close();
  }
});

function errorOf(err: unknown): ThreadSqliteError {
  if (!(err instanceof Error)) return { message: String(err) };
  return { message: err.message, code: (err as { code?: string }).code, name: err.name };
}
