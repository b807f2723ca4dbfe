/**
 * Loaded into Relais with `node --import` by `npm run bench:e2e -- --statements` (and so into every
 * thread): times every statement of the SQLite thread's connection (statement-times.ts) and writes
 * the summary to $RELAIS_BENCH_STATEMENTS_DIR/statements-<pid>.json every 2 s and at exit.
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { workerData } from 'node:worker_threads';
import type BetterSqlite3 from 'better-sqlite3';
import { SQLITE_THREAD_ROLE } from '../store/sqlite-protocol.js';
import { StatementTimes, timeStatements } from './statement-times.js';

const dir = process.env.RELAIS_BENCH_STATEMENTS_DIR;
// The checkpointer's and the import's threads have connections of their own: Relais's one only.
if (dir && (workerData as { role?: string } | null)?.role === SQLITE_THREAD_ROLE) {
  const times = new StatementTimes();
  timeStatements(createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3, times);
  const write = () =>
    writeFileSync(join(dir, `statements-${process.pid}.json`), JSON.stringify(times.summary()));
  setInterval(write, 2000).unref();
  process.on('exit', write);
}
