import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/**
 * The databases every storage-touching suite runs against. SQLite always; PostgreSQL when reachable
 * at RELAIS_TEST_PG_URL (default: the local server, database `test`). On CI (CI=true) an unreachable
 * PostgreSQL fails the run loudly instead of skipping.
 */
export const PG_ADMIN_URL = process.env.RELAIS_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestDatabase {
  /** Value for the `database_url` configuration key. */
  url: string;
  dataDir: string;
  drop(): Promise<void>;
}

export interface DatabaseKind {
  name: 'sqlite' | 'postgres';
  create(): Promise<TestDatabase>;
}

async function postgresReachable(): Promise<string | null> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await client.end().catch(() => {});
  }
}

const sqlite: DatabaseKind = {
  name: 'sqlite',
  async create() {
    const dataDir = mkdtempSync(join(tmpdir(), 'relais-test-'));
    return {
      url: `sqlite:${join(dataDir, 'relais.db')}`,
      dataDir,
      async drop() {
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  },
};

const postgres: DatabaseKind = {
  name: 'postgres',
  async create() {
    const name = `relais_t_${process.pid}_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    await admin.query(`create database ${name}`);
    await admin.end();
    const url = new URL(PG_ADMIN_URL);
    url.pathname = `/${name}`;
    const dataDir = mkdtempSync(join(tmpdir(), 'relais-test-'));
    return {
      url: url.toString(),
      dataDir,
      async drop() {
        rmSync(dataDir, { recursive: true, force: true });
        const c = new pg.Client({ connectionString: PG_ADMIN_URL });
        await c.connect();
        await c.query(`drop database if exists ${name} with (force)`);
        await c.end();
      },
    };
  },
};

const pgProblem = await postgresReachable();
if (pgProblem) {
  const message = `PostgreSQL is not reachable at ${PG_ADMIN_URL} (${pgProblem})`;
  if (process.env.CI) throw new Error(`${message}: on CI the PostgreSQL suite must run`);
  console.warn(`${message}: PostgreSQL suites are SKIPPED on this machine`);
}

export const databaseKinds: DatabaseKind[] = pgProblem ? [sqlite] : [sqlite, postgres];
