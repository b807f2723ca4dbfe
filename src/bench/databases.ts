import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { filesystemOf } from './proc.js';

/**
 * A fresh, empty database per run: SQLite in a new temp data dir, or a new PostgreSQL database created
 * through the admin URL (RELAIS_BENCH_PG_URL, default the local server's `test` database) and dropped
 * afterwards.
 */
export const PG_ADMIN_URL = process.env.RELAIS_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const STATUS_QUERY = 'select status, count(*) as n from messages group by status order by status';

export interface BenchDatabase {
  kind: 'sqlite' | 'postgres';
  dataDir: string;
  /** DATABASE_URL for Relais; undefined for SQLite at DATA_DIR/relais.db. */
  databaseUrl: string | undefined;
  /** Where the data lives, for logs. */
  describe: string;
  /** The storage as the report shows it: filesystem, or server version and durability settings. */
  settings(): Promise<string>;
  /** Rows of `messages` per status, read from outside Relais (after it has stopped). */
  messageStatuses(): Promise<Record<string, number>>;
  drop(): Promise<void>;
}

export function sqliteDatabase(): BenchDatabase {
  const dataDir = mkdtempSync(join(tmpdir(), 'relais-bench-'));
  const file = join(dataDir, 'relais.db');
  return {
    kind: 'sqlite',
    dataDir,
    databaseUrl: undefined,
    describe: file,
    async settings() {
      return `a fresh temp dir on ${filesystemOf(dataDir)}`;
    },
    async messageStatuses() {
      const db = new Database(file, { readonly: true, fileMustExist: true });
      try {
        const rows = db.prepare(STATUS_QUERY).all() as { status: string; n: number }[];
        return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
      } finally {
        db.close();
      }
    },
    async drop() {
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Null when the PostgreSQL server answers, else why not. */
export async function postgresUnreachable(): Promise<string | null> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return null;
  } catch (err) {
    return (err as Error).message || String(err);
  } finally {
    await client.end().catch(() => {});
  }
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function postgresDatabase(): Promise<BenchDatabase> {
  const name = `relais_bench_${process.pid}_${randomBytes(3).toString('hex')}`;
  await admin((c) => c.query(`create database ${name}`));
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  const databaseUrl = url.toString();
  // Relais still needs a data dir of its own, even when the data is in PostgreSQL.
  const dataDir = mkdtempSync(join(tmpdir(), 'relais-bench-'));
  const safeUrl = new URL(databaseUrl);
  safeUrl.password = '';
  return {
    kind: 'postgres',
    dataDir,
    databaseUrl,
    describe: safeUrl.toString(),
    async settings() {
      return admin(async (c) => {
        const show = async (name: string) =>
          ((await c.query(`show ${name}`)).rows[0] as Record<string, string>)[name];
        return (
          `a fresh database on the local PostgreSQL ${(await show('server_version'))?.split(' ')[0]} ` +
          `(fsync ${await show('fsync')}, synchronous_commit ${await show('synchronous_commit')}, ` +
          `shared_buffers ${await show('shared_buffers')})`
        );
      });
    },
    async messageStatuses() {
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      try {
        const { rows } = await client.query<{ status: string; n: string }>(STATUS_QUERY);
        return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
      } finally {
        await client.end();
      }
    },
    async drop() {
      rmSync(dataDir, { recursive: true, force: true });
      await admin((c) => c.query(`drop database if exists ${name} with (force)`));
    },
  };
}
