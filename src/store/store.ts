import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, type RawBuilder, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { databaseTarget } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { type DialectName, LATEST_MIGRATION, migrationProvider } from './migrations/index.js';
import type { Database } from './schema.js';

/** A handle bound to one open write transaction. */
export type Trx = Kysely<Database>;
export type Db = Kysely<Database>;

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
  migrate(): Promise<string[]>;
  /** True when every known migration has been applied. */
  isMigrated(): Promise<boolean>;
  /**
   * Appended to the inner SELECT of a claim (`UPDATE … WHERE id IN (SELECT … LIMIT n <here>)`):
   * FOR UPDATE SKIP LOCKED on PostgreSQL so concurrent nodes take different rows; nothing on SQLite,
   * whose single writer already makes the statement atomic.
   */
  readonly skipLocked: RawBuilder<unknown>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export function openStore(config: Config): Store {
  const target = databaseTarget(config);
  return target.kind === 'postgres'
    ? openPostgres(target.url, config.postgres.pool_size)
    : openSqlite(target.path, config);
}

function openSqlite(path: string, config: Config): Store {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const sqlite = new SqliteDatabase(path);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma(`synchronous = ${config.sqlite.synchronous}`);
  sqlite.pragma(`busy_timeout = ${config.sqlite.busy_timeout_ms}`);
  sqlite.pragma('foreign_keys = ON');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
  // Kysely's SQLite transactions start DEFERRED; a reader that later writes can then fail with
  // SQLITE_BUSY when another process (the CLI) holds the write lock. IMMEDIATE waits busy_timeout.
  const write = <T>(fn: (trx: Trx) => Promise<T>): Promise<T> =>
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
  return {
    db,
    dialect: 'sqlite',
    write,
    skipLocked: sql``,
    // Kysely takes no lock on SQLite; one IMMEDIATE transaction around the whole run makes it atomic
    // and serialises a server and a CLI started together on a new install.
    migrate: () => write((conn) => runMigrations(conn, 'sqlite')),
    isMigrated: () => isMigrated(db),
    async ping() {
      await sql`select 1`.execute(db);
    },
    async close() {
      await db.destroy();
    },
  };
}

function openPostgres(url: string, poolSize: number): Store {
  // BIGINT columns hold epoch milliseconds, well inside Number's exact range: parse them as numbers.
  const types = {
    getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
      oid === 20
        ? (v: string) => Number(v)
        : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
  };
  const pool = new pg.Pool({ connectionString: url, max: poolSize, types });
  // An idle client losing its connection (server restart, failover) must not crash the process: the
  // pool drops it and the next query opens a new one.
  pool.on('error', () => {});
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    dialect: 'postgres',
    write: (fn) => db.transaction().execute(fn),
    skipLocked: sql`for update skip locked`,
    migrate: () => runMigrations(db, 'postgres'),
    isMigrated: () => isMigrated(db),
    async ping() {
      await sql`select 1`.execute(db);
    },
    async close() {
      await db.destroy();
    },
  };
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
