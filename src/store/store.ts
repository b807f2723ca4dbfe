import { mkdirSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, type RawBuilder, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { databaseTarget } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { Checkpointer } from './checkpointer.js';
import { type DialectName, LATEST_MIGRATION, migrationProvider } from './migrations/index.js';
import type { Database } from './schema.js';

/** A handle bound to one open write transaction. */
export type Trx = Kysely<Database>;
export type Db = Kysely<Database>;

/** A committed write: its result, and when it is on disk (Store.writeCommitted). */
export interface Committed<T> {
  result: T;
  durable: Promise<void>;
}

/**
 * The one door to storage. Everything is written through Kysely, shared by both dialects; the few
 * places where SQLite and PostgreSQL must differ (opening, write transactions, claim locking) are
 * methods here, so domain modules never branch on the dialect.
 */
export interface Store {
  readonly db: Db;
  readonly dialect: DialectName;
  /** A write transaction: BEGIN IMMEDIATE on SQLite (no lock upgrade deadlocks), plain BEGIN on PostgreSQL. */
  write<T>(fn: (trx: Trx) => Promise<T>): Promise<T>;
  /**
   * The same, for the urgent lanes' intake and claims: on SQLite it goes before every ordinary write
   * still waiting for the single connection; on PostgreSQL it uses a small pool of its own, so an OTP
   * never queues behind bulk work for a connection.
   */
  writeUrgent<T>(fn: (trx: Trx) => Promise<T>): Promise<T>;
  /**
   * A write transaction (urgent or not, as above) that resolves as soon as it has committed, with
   * `durable`: resolved once it is on disk. For work the process goes on with at once, and answers
   * to outsiders only once durable. A process that dies (kill -9) cannot lose a committed
   * transaction: SQLite has written it to the log, in the kernel's hands. A power cut or a kernel
   * crash can lose those not yet durable, and every later one with them (the log is replayed in
   * order up to the first missing frame). PostgreSQL: durable at commit.
   */
  writeCommitted<T>(urgent: boolean, fn: (trx: Trx) => Promise<T>): Promise<Committed<T>>;
  /**
   * For `fn` issuing exactly one statement: on PostgreSQL it runs outside any explicit transaction (a
   * statement is atomic on its own: no BEGIN/COMMIT round trips), on the urgent pool when `urgent`;
   * on SQLite it is an ordinary write (urgent ones first).
   */
  writeStatement<T>(urgent: boolean, fn: (db: Db) => Promise<T>): Promise<T>;
  /**
   * Serialises transactions that work on the same `key` until the caller's transaction ends: a
   * transaction-scoped advisory lock on PostgreSQL; nothing on SQLite, whose writes are serial anyway.
   */
  lockKey(trx: Trx, key: string): Promise<void>;
  migrate(): Promise<string[]>;
  /** True when every known migration has been applied. */
  isMigrated(): Promise<boolean>;
  /**
   * Appended to the inner SELECT of a claim (`UPDATE … WHERE id IN (SELECT … LIMIT n <here>)`):
   * FOR UPDATE SKIP LOCKED on PostgreSQL so concurrent nodes take different rows; nothing on SQLite,
   * whose single writer already makes the statement atomic.
   */
  readonly skipLocked: RawBuilder<unknown>;
  /**
   * `column` is one of the values `subquery` selects, for an UPDATE that claims the rows a locking
   * subquery picked. PostgreSQL: `= any(array(subquery))`, so the subquery runs once as an init plan
   * and the rows are fetched through the index; with `in (subquery)` the planner hashed the subquery
   * and scanned the whole queue for every claim (profiled: the carrier path's costliest statement).
   * SQLite: `in (subquery)`.
   */
  anyOf(column: RawBuilder<unknown>, subquery: RawBuilder<unknown>): RawBuilder<unknown>;
  /**
   * Run in a claim's transaction before its bulk statements (WorkQueue.claim). PostgreSQL: no bitmap
   * scans for the rest of it, so a claim walks an index in claim order and stops at its limit. The queue grows from empty to hundreds of
   * thousands of rows in seconds, faster than autovacuum analyses it; with the statistics of an
   * emptier table the planner put a tenant's bulk backlog at one row and chose a bitmap scan and a
   * sort of all of it (EXPLAIN ANALYZE during the throughput benchmark: 22–95 ms per claim, against
   * 0.5–1.6 ms for the index walk at the same moment). SQLite: nothing.
   */
  walkIndexes(trx: Trx): Promise<void>;
  /**
   * SQLite: hands up to `pages` free pages back to the file system (auto_vacuum = INCREMENTAL) in one
   * short write transaction, and returns how many free pages are left. PostgreSQL: nothing to do, 0.
   */
  incrementalVacuum(pages: number): Promise<number>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export function openStore(config: Config): Store {
  const target = databaseTarget(config);
  return target.kind === 'postgres'
    ? openPostgres(target.url, config.postgres.pool_size, config.postgres.urgent_pool_size)
    : openSqlite(target.path, config);
}

const SQLITE_PAGE_SIZE = 32_768;
const CHECKPOINT_INTERVAL_MS = 1000;
/** 128 MiB of 32 KiB pages: four times SQLite's default of 1000 pages (32 MiB with these pages). */
const FALLBACK_AUTOCHECKPOINT_PAGES = 4000;

function openSqlite(path: string, config: Config): Store {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const sqlite = new SqliteDatabase(path);
  // Retention deletes old history in chunks; INCREMENTAL lets it hand the freed pages back to the file
  // system a few at a time (src/retention/). Takes effect on a new file only: see migrate below.
  // New files only (it is fixed once the first table exists). Each commit writes every page it
  // touched to the write-ahead log, one frame per page: with 32 KiB pages the carrier path's commits
  // wrote fewer, fuller frames (end to end 6,384 → 7,323 msg/s; 4 KiB, 8, 16, 32 and 64 KiB measured).
  sqlite.pragma(`page_size = ${SQLITE_PAGE_SIZE}`);
  sqlite.pragma('auto_vacuum = INCREMENTAL');
  sqlite.pragma('journal_mode = WAL');
  // FULL is kept by WalSync below, off the event loop: SQLite itself only writes the log at commit.
  sqlite.pragma('synchronous = NORMAL');
  const walSync =
    config.sqlite.synchronous === 'FULL' && path !== ':memory:' ? new WalSync(`${path}-wal`) : null;
  sqlite.pragma(`busy_timeout = ${config.sqlite.busy_timeout_ms}`);
  // SQLite's default page cache is 2 MiB: the history's indexes outgrow it within minutes, and every
  // insert then reads B-tree pages back through the kernel (profiled: most of an import's time).
  sqlite.pragma(`cache_size = -${config.sqlite.cache_mib * 1024}`);
  sqlite.pragma('foreign_keys = ON');
  // Checkpoints copy ahead on a thread of their own (checkpointer.ts); this connection's checkpoint,
  // later than SQLite's default, restarts the log and bounds it.
  const checkpointer = path === ':memory:' ? null : new Checkpointer(path, CHECKPOINT_INTERVAL_MS);
  if (checkpointer) sqlite.pragma(`wal_autocheckpoint = ${FALLBACK_AUTOCHECKPOINT_PAGES}`);
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
  // Kysely's SQLite transactions start DEFERRED; a reader that later writes can then fail with
  // SQLITE_BUSY when another process (the CLI) holds the write lock. IMMEDIATE waits busy_timeout.
  const transaction = <T>(fn: (trx: Trx) => Promise<T>): Promise<T> =>
    db.connection().execute(async (conn) => {
      await sql`begin immediate`.execute(conn);
      try {
        const result = await fn(conn);
        await sql`commit`.execute(conn);
        return result;
      } catch (err) {
        if (sqlite.inTransaction) await sql`rollback`.execute(conn);
        throw err;
      }
    });
  const gate = new PriorityGate();
  // The connection is free for the next transaction as soon as this one has committed; its caller
  // hears back once the log is on disk.
  const writeCommitted = async <T>(urgent: boolean, fn: (trx: Trx) => Promise<T>): Promise<Committed<T>> => {
    const result = await gate.run(urgent, () => transaction(fn));
    return { result, durable: walSync ? walSync.sync() : Promise.resolve() };
  };
  const run = async <T>(urgent: boolean, fn: (trx: Trx) => Promise<T>): Promise<T> => {
    const { result, durable } = await writeCommitted(urgent, fn);
    await durable;
    return result;
  };
  const write = <T>(fn: (trx: Trx) => Promise<T>): Promise<T> => run(false, fn);
  const writeUrgent = <T>(fn: (trx: Trx) => Promise<T>): Promise<T> => run(true, fn);
  return {
    db,
    dialect: 'sqlite',
    write,
    writeUrgent,
    writeCommitted,
    writeStatement: run,
    lockKey: async () => {},
    skipLocked: sql``,
    anyOf: (column, subquery) => sql`${column} in (${subquery})`,
    walkIndexes: async () => {},
    incrementalVacuum: (pages) =>
      write(async () => {
        // Through the raw handle: a prepared statement's run() steps this pragma once, freeing one page.
        sqlite.exec(`pragma incremental_vacuum(${Math.max(1, Math.floor(pages))})`);
        return sqlite.pragma('freelist_count', { simple: true }) as number;
      }),
    // Kysely takes no lock on SQLite; one IMMEDIATE transaction around the whole run makes it atomic
    // and serialises a server and a CLI started together on a new install.
    migrate: async () => {
      const applied = await write((conn) => runMigrations(conn, 'sqlite'));
      enableIncrementalVacuum(sqlite);
      return applied;
    },
    isMigrated: () => isMigrated(db),
    async ping() {
      await sql`select 1`.execute(db);
    },
    async close() {
      await checkpointer?.stop();
      await db.destroy();
      await walSync?.close();
    },
  };
}

function openPostgres(url: string, poolSize: number, urgentPoolSize: number): Store {
  // BIGINT columns hold epoch milliseconds, well inside Number's exact range: parse them as numbers.
  const types = {
    getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
      oid === 20
        ? (v: string) => Number(v)
        : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
  };
  const pool = new pg.Pool({ connectionString: url, max: poolSize, types });
  const urgentPool = new pg.Pool({ connectionString: url, max: urgentPoolSize, types });
  // An idle client losing its connection (server restart, failover) must not crash the process: the
  // pool drops it and the next query opens a new one.
  pool.on('error', () => {});
  urgentPool.on('error', () => {});
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const urgentDb = new Kysely<Database>({ dialect: new PostgresDialect({ pool: urgentPool }) });
  return {
    db,
    dialect: 'postgres',
    write: (fn) => db.transaction().execute(fn),
    writeUrgent: (fn) => urgentDb.transaction().execute(fn),
    writeCommitted: async (urgent, fn) => ({
      result: await (urgent ? urgentDb : db).transaction().execute(fn),
      durable: Promise.resolve(),
    }),
    writeStatement: (urgent, fn) => fn(urgent ? urgentDb : db),
    async lockKey(trx, key) {
      await sql`select pg_advisory_xact_lock(hashtextextended(${key}, 0))`.execute(trx);
    },
    skipLocked: sql`for update skip locked`,
    anyOf: (column, subquery) => sql`${column} = any(array(${subquery}))`,
    async walkIndexes(trx) {
      await sql`set local enable_bitmapscan = off`.execute(trx);
    },
    incrementalVacuum: async () => 0,
    migrate: () => runMigrations(db, 'postgres'),
    isMigrated: () => isMigrated(db),
    async ping() {
      await sql`select 1`.execute(db);
    },
    async close() {
      await Promise.all([db.destroy(), urgentDb.destroy()]);
    },
  };
}

/**
 * A file created before auto_vacuum was set keeps NONE until a VACUUM rebuilds it; VACUUM cannot run
 * inside the migrations' transaction, so it runs here, once (installations upgraded by migration 006).
 */
function enableIncrementalVacuum(sqlite: SqliteDatabase.Database): void {
  const INCREMENTAL = 2;
  if (sqlite.pragma('auto_vacuum', { simple: true }) === INCREMENTAL) return;
  sqlite.pragma('auto_vacuum = INCREMENTAL');
  sqlite.exec('vacuum');
}

/**
 * Kysely prepares every query anew; with better-sqlite3 that was 8% of the CPU of batch intake
 * (profiled). The same SQL text maps to the same prepared statement; an LRU keeps the memory bounded
 * (multi-row inserts of varying sizes produce many distinct texts).
 */
function withStatementCache(sqlite: SqliteDatabase.Database, size = 256) {
  const cache = new Map<string, SqliteDatabase.Statement>();
  return {
    prepare(text: string) {
      let stmt = cache.get(text);
      if (stmt) {
        cache.delete(text);
      } else {
        stmt = sqlite.prepare(text);
        if (cache.size >= size) cache.delete(cache.keys().next().value!);
      }
      cache.set(text, stmt);
      return stmt;
    },
    close() {
      cache.clear();
      sqlite.close();
    },
  };
}

async function runMigrations(db: Db, dialect: DialectName): Promise<string[]> {
  const migrator = new Migrator({ db, provider: migrationProvider(dialect) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

async function isMigrated(db: Db): Promise<boolean> {
  try {
    const rows = await sql<{
      name: string;
    }>`select name from kysely_migration order by name desc limit 1`.execute(db);
    return rows.rows[0]?.name === LATEST_MIGRATION;
  } catch {
    return false;
  }
}

/**
 * `synchronous = FULL` without the wait on the event loop. SQLite's FULL fsyncs the write-ahead log
 * inside COMMIT, and better-sqlite3 runs COMMIT on the main thread: the carrier-path profile showed
 * about 1 ms per commit, a fifth of the process's time, during which nothing else ran. Instead the
 * connection runs NORMAL (COMMIT writes the log, does not sync it) and each write's caller waits for
 * an fdatasync of the log file on libuv's thread pool, started after its COMMIT. Writes committed
 * while one runs share the next, so a burst costs one or two syncs. Whoever is answered after a
 * write has it on disk, exactly as with FULL; checkpoints and log resets are synced by SQLite itself
 * under NORMAL.
 */
export class WalSync {
  private file: FileHandle | null = null;
  private current: Promise<void> | null = null;
  private next: Promise<void> | null = null;
  /** fdatasync calls made (for tests). */
  syncs = 0;

  constructor(private readonly walPath: string) {}

  /** Resolves once a sync started after this call has finished. */
  sync(): Promise<void> {
    if (this.next) return this.next;
    if (!this.current) return this.start();
    const after = this.current.catch(() => {});
    this.next = after.then(() => {
      this.next = null;
      return this.start();
    });
    return this.next;
  }

  async close(): Promise<void> {
    await this.next?.catch(() => {});
    await this.current?.catch(() => {});
    await this.file?.close();
    this.file = null;
  }

  private start(): Promise<void> {
    this.current = this.datasync().finally(() => {
      this.current = null;
    });
    return this.current;
  }

  private async datasync(): Promise<void> {
    this.file ??= await open(this.walPath, 'r');
    this.syncs++;
    await this.file.datasync();
  }
}

/**
 * Hands SQLite's single connection to one write at a time, urgent ones first: an OTP's commit or
 * claim waits for the transaction in progress, not for every bulk batch, receipt batch and webhook
 * update queued before it. (Kysely's own connection mutex is first come, first served.)
 */
class PriorityGate {
  private busy = false;
  private readonly urgent: (() => void)[] = [];
  private readonly normal: (() => void)[] = [];

  async run<T>(urgent: boolean, task: () => Promise<T>): Promise<T> {
    if (this.busy) await new Promise<void>((resolve) => (urgent ? this.urgent : this.normal).push(resolve));
    this.busy = true;
    try {
      return await task();
    } finally {
      const next = this.urgent.shift() ?? this.normal.shift();
      if (next) next();
      else this.busy = false;
    }
  }
}
