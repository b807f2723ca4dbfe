import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import {
  CompiledQuery as Compiled,
  type CompiledQuery,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  type QueryResult,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from 'kysely';
import { workerScript } from '../shared/worker-script.js';
import {
  Op,
  SQLITE_THREAD_ROLE,
  type SqliteReply,
  type SqliteRequest,
  type SqliteResult,
  type SqliteThreadData,
  type ThreadSqliteError,
} from './sqlite-protocol.js';

/**
 * SQLite's one connection, held by a thread of its own (sqlite-worker.ts). better-sqlite3 runs each
 * statement to its end on the thread that calls it: on the main thread that was more than half of
 * Relais's busy time on the carrier path (profiled: `executeQuery` 52%), time in which no HTTP
 * request, SMPP answer or webhook was handled.
 *
 * Two ways in:
 * - `statement`: one statement, and the main thread waits for its answer (Atomics.wait), as it did
 *   for better-sqlite3 itself. Waiting keeps a transaction's statements together: answered as
 *   messages instead, they interleaved with whatever else the event loop held (a batch of 1,000
 *   messages to validate, say), every transaction held the one connection for longer, and the
 *   carrier path ran slower (measured: 4,103 → 3,163 msg/s end to end).
 * - `transaction`: a transaction of thread-transactions.ts, run whole by the thread while the main
 *   thread goes on; its answer comes as a message. The carrier path's outcomes and receipts go this
 *   way (WorkQueue.recordOutcomes).
 */
export class SqliteThread {
  private readonly worker: Worker;
  private readonly signal = new Int32Array(new SharedArrayBuffer(4));
  private readonly answers: MessagePort;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void }>();
  private failure: Error | null = null;

  constructor(path: string, pragmas: string[]) {
    const { port1, port2 } = new MessageChannel();
    this.answers = port1;
    this.worker = new Worker(workerScript(import.meta.url, 'sqlite-worker.js'), {
      workerData: {
        role: SQLITE_THREAD_ROLE,
        path,
        pragmas,
        signal: this.signal.buffer,
        port: port2,
      } satisfies SqliteThreadData,
      transferList: [port2],
    });
    // Only transactions in flight keep the process alive, like any socket to a database server.
    this.worker.unref();
    this.worker.on('message', (reply: SqliteReply) => this.answer(reply));
    this.worker.on('error', (err) => this.fail(new Error(`the SQLite thread failed: ${err.message}`)));
    this.worker.on('exit', (code) => this.fail(new Error(`the SQLite thread exited (code ${code})`)));
  }

  /** One statement (or another Op but Transaction), answered before this returns. */
  statement(op: Op, sql: string, params: readonly unknown[] | null = null): SqliteResult {
    if (this.failure) throw this.failure;
    Atomics.store(this.signal, 0, 0);
    this.worker.postMessage([this.nextId++, op, sql, params] satisfies SqliteRequest);
    for (;;) {
      // A statement may wait out busy_timeout, or run a long VACUUM: the wait has no end of its own.
      Atomics.wait(this.signal, 0, 0, 1000);
      const received = receiveMessageOnPort(this.answers);
      if (received) {
        const [, rows, changes, lastInsertRowid, error] = received.message as SqliteReply;
        if (error) throw sqliteError(error);
        return [rows, changes, lastInsertRowid];
      }
    }
  }

  /** Runs the named transaction on the thread; resolves with its result once it has committed. */
  transaction<A, R>(name: string, args: A): Promise<R> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    if (this.pending.size === 0) this.worker.ref();
    return new Promise<R>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (r: unknown) => void, reject });
      this.worker.postMessage([id, Op.Transaction, name, args] satisfies SqliteRequest);
    });
  }

  /** Closes the connection (SQLite removes the log when the last one closes) and ends the thread. */
  async close(): Promise<void> {
    if (!this.failure) this.statement(Op.Close, '');
    this.fail(new Error('the database is closed'));
    this.answers.close();
    // Unreferenced, the thread would not keep the process alive until it has ended.
    this.worker.ref();
    await this.worker.terminate();
  }

  private answer([id, result, , , error]: SqliteReply): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.pending.delete(id);
    if (this.pending.size === 0) this.worker.unref();
    if (error) entry.reject(sqliteError(error));
    else entry.resolve(result);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const { reject } of this.pending.values()) reject(err);
    this.pending.clear();
  }
}

/** The thread's error as better-sqlite3 throws it: same message, same `code` (SQLITE_BUSY, …). */
function sqliteError({ message, code, name }: ThreadSqliteError): Error {
  const err = new Error(message) as Error & { code?: string };
  if (name) err.name = name;
  if (code) err.code = code;
  return err;
}

/** Kysely's SQLite dialect over the thread: its compiler, adapter and introspector, this driver. */
export class SqliteThreadDialect implements Dialect {
  constructor(private readonly thread: SqliteThread) {}

  createDriver(): Driver {
    return new SqliteThreadDriver(this.thread);
  }

  createQueryCompiler(): QueryCompiler {
    return new SqliteQueryCompiler();
  }

  createAdapter(): DialectAdapter {
    return new SqliteAdapter();
  }

  createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new SqliteIntrospector(db);
  }
}

class SqliteThreadDriver implements Driver {
  private readonly connection: SqliteThreadConnection;
  // One connection: a transaction holds it from BEGIN to COMMIT, as with Kysely's own SQLite driver.
  private held: Promise<void> | null = null;
  private release: (() => void) | null = null;

  constructor(private readonly thread: SqliteThread) {
    this.connection = new SqliteThreadConnection(thread);
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    while (this.held) await this.held;
    this.held = new Promise<void>((resolve) => (this.release = resolve));
    return this.connection;
  }

  async releaseConnection(): Promise<void> {
    const release = this.release;
    this.held = null;
    this.release = null;
    release?.();
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(Compiled.raw('begin'));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(Compiled.raw('commit'));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(Compiled.raw('rollback'));
  }

  async destroy(): Promise<void> {
    await this.thread.close();
  }
}

class SqliteThreadConnection implements DatabaseConnection {
  constructor(private readonly thread: SqliteThread) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const [rows, changes, lastInsertRowid] = this.thread.statement(Op.Query, query.sql, query.parameters);
    if (rows) return { rows: rows as R[] };
    return {
      numAffectedRows: BigInt(changes),
      insertId: lastInsertRowid === null ? undefined : BigInt(lastInsertRowid),
      rows: [],
    };
  }

  async *streamQuery<R>(query: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    // Nothing streams from SQLite in Relais: the whole result, as one chunk.
    yield await this.executeQuery<R>(query);
  }
}
