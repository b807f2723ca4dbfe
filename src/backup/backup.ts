import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { databaseTarget } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { RelaisError } from '../shared/errors.js';

export interface BackupResult {
  file: string;
  bytes: number;
  dialect: 'sqlite' | 'postgres';
  durationMs: number;
}

/**
 * A consistent online backup while traffic flows.
 * - SQLite: `VACUUM INTO` writes a compacted copy from one read transaction — a snapshot of the
 *   moment it starts, taken without blocking writers (WAL). (The page-by-page backup API restarts
 *   whenever another connection writes, so under steady traffic it may never finish.)
 * - PostgreSQL: `pg_dump --format=custom`, which also reads one snapshot.
 */
export async function backupDatabase(config: Config, toDir: string, now = new Date()): Promise<BackupResult> {
  const started = Date.now();
  const dir = resolve(toDir);
  mkdirSync(dir, { recursive: true });
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  const target = databaseTarget(config);
  if (target.kind === 'sqlite') {
    if (!existsSync(target.path)) throw new RelaisError('not_found', `no database at ${target.path}`);
    const file = join(dir, `relais-${stamp}.db`);
    const partial = `${file}.partial`;
    rmSync(partial, { force: true });
    const db = new SqliteDatabase(target.path, { readonly: true });
    try {
      db.pragma(`busy_timeout = ${config.sqlite.busy_timeout_ms}`);
      db.prepare('vacuum into ?').run(partial);
    } finally {
      db.close();
    }
    // Renamed only once complete: a file named relais-*.db is always a whole backup.
    renameSync(partial, file);
    return { file, bytes: statSync(file).size, dialect: 'sqlite', durationMs: Date.now() - started };
  }
  const file = join(dir, `relais-${stamp}.pgdump`);
  await run('pg_dump', ['--format=custom', '--no-owner', `--file=${file}.partial`, target.url]);
  renameSync(`${file}.partial`, file);
  return { file, bytes: statSync(file).size, dialect: 'postgres', durationMs: Date.now() - started };
}

/**
 * Restores a backup made by backupDatabase into the configured database. Relais must be stopped.
 * SQLite: the file is checked (integrity_check) before it replaces the database; the previous
 * database is kept beside it as relais.db.before-restore. PostgreSQL: pg_restore --clean.
 */
export async function restoreDatabase(config: Config, fromFile: string): Promise<{ dialect: string }> {
  const file = resolve(fromFile);
  if (!existsSync(file)) throw new RelaisError('not_found', `no backup file at ${file}`);
  const target = databaseTarget(config);
  if (target.kind === 'sqlite') {
    const check = new SqliteDatabase(file, { readonly: true, fileMustExist: true });
    try {
      const result = check.pragma('integrity_check', { simple: true });
      if (result !== 'ok') throw new RelaisError('invalid_request', `${file} is damaged: ${String(result)}`);
    } catch (err) {
      if (err instanceof RelaisError) throw err;
      throw new RelaisError(
        'invalid_request',
        `${file} is not a Relais SQLite backup: ${(err as Error).message}`,
      );
    } finally {
      check.close();
    }
    mkdirSync(resolve(target.path, '..'), { recursive: true });
    if (existsSync(target.path)) renameSync(target.path, `${target.path}.before-restore`);
    for (const suffix of ['-wal', '-shm']) rmSync(`${target.path}${suffix}`, { force: true });
    copyFileSync(file, target.path);
    return { dialect: 'sqlite' };
  }
  await run('pg_restore', ['--clean', '--if-exists', '--no-owner', `--dbname=${target.url}`, file]);
  return { dialect: 'postgres' };
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', (err) =>
      reject(
        new RelaisError(
          'unavailable',
          `${command} could not be started (${err.message}); install the PostgreSQL client tools`,
        ),
      ),
    );
    child.on('exit', (code) =>
      code === 0
        ? resolvePromise()
        : reject(new RelaisError('internal_error', `${command} failed (${code}): ${stderr.trim()}`)),
    );
  });
}
