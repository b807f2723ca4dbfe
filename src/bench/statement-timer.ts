/**
 * Loaded into Relais with `node --import` by `npm run bench:e2e -- --statements`: times every SQLite
 * statement of the main thread (statement-times.ts) and writes the summary to
 * $RELAIS_BENCH_STATEMENTS_DIR/statements-<pid>.json every 2 s and at exit.
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import type BetterSqlite3 from 'better-sqlite3';
import { StatementTimes, timeStatements } from './statement-times.js';

const dir = process.env.RELAIS_BENCH_STATEMENTS_DIR;
// The checkpointer's and the import's threads have connections of their own: the main one only.
if (dir && isMainThread) {
  const times = new StatementTimes();
  timeStatements(createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3, times);
  const write = () =>
    writeFileSync(join(dir, `statements-${process.pid}.json`), JSON.stringify(times.summary()));
  setInterval(write, 2000).unref();
  process.on('exit', write);
}
