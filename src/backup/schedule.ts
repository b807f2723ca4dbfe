import { mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { readdir, stat, unlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Counter } from 'prom-client';
import { databaseTarget } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Metrics } from '../observability/metrics.js';
import type { Logger } from '../shared/logger.js';
import { type BackupResult, backupDatabase } from './backup.js';

type Schedule = NonNullable<Config['backup']['schedule']>;

/** Names of the backups the schedule makes: retention deletes these and nothing else. */
const SCHEDULED = /^relais-scheduled-\d{8}-\d{6}-\d{3}\.(db|pgdump)$/;

/** The directory of scheduled backups (relative: under data_dir), or null without a schedule. */
export function backupDirOf(config: Config): string | null {
  const schedule = config.backup.schedule;
  return schedule ? resolve(config.data_dir, schedule.to) : null;
}

/**
 * Periodic backups made by the running server, off the hot path: never two at once; SQLite's
 * `VACUUM INTO` runs in a worker thread (on the main thread it would stall the event loop for the
 * whole copy), PostgreSQL's pg_dump in its own process (backup.ts). The first backup is due one
 * interval after the newest one already in the directory, so restarts do not postpone it forever.
 */
export class BackupScheduler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = true;
  private readonly failures: Counter;
  private lastSuccessSeconds = 0;
  private readonly dir: string;

  constructor(
    private readonly config: Config,
    private readonly schedule: Schedule,
    private readonly log: Logger,
    metrics: Metrics,
    /** Asked before each backup: a reason to skip it (the backup volume is nearly full), or null. */
    private readonly skipReason: () => string | null = () => null,
  ) {
    this.dir = resolve(config.data_dir, schedule.to);
    this.failures = new Counter({
      name: 'relais_backup_failures_total',
      help: 'Scheduled backups that failed',
      registers: [metrics.registry],
    });
    metrics.gauge(
      'relais_backup_last_success_timestamp_seconds',
      'Unix time of the last scheduled backup that succeeded (0: none since start)',
      [],
      (set) => set({}, this.lastSuccessSeconds),
    );
  }

  private get intervalMs(): number {
    return Math.round(this.schedule.interval_hours * 3600_000);
  }

  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    mkdirSync(this.dir, { recursive: true });
    const newest = (await this.listOwn())[0];
    const due = newest ? newest.mtime + this.intervalMs : Date.now();
    // Never at startup itself: the server has other things to do in its first minute.
    this.arm(Math.max(due - Date.now(), Math.min(this.intervalMs, 60_000)));
  }

  /** Waits for a backup in progress, then stops. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One backup now, then retention; resolves with the file, or null if skipped or already running. */
  async runOnce(): Promise<BackupResult | null> {
    if (this.running) return null;
    const skip = this.skipReason();
    if (skip) {
      this.log.warn({ reason: skip }, 'scheduled backup skipped');
      return null;
    }
    let result: BackupResult | null = null;
    this.running = (async () => {
      try {
        result = await this.backup();
        this.lastSuccessSeconds = Math.floor(Date.now() / 1000);
        const removed = await this.applyRetention();
        this.log.info(
          { file: result.file, bytes: result.bytes, duration_ms: result.durationMs, removed },
          'scheduled backup done',
        );
      } catch (err) {
        this.failures.inc();
        this.log.error({ err, dir: this.dir }, 'scheduled backup failed');
      }
    })();
    try {
      await this.running;
    } finally {
      this.running = null;
    }
    return result;
  }

  /** The scheduled backups in the directory, newest first. */
  async listOwn(): Promise<{ file: string; mtime: number }[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const files = await Promise.all(
      names
        .filter((n) => SCHEDULED.test(n))
        .map(async (n) => ({ file: join(this.dir, n), mtime: (await stat(join(this.dir, n))).mtimeMs })),
    );
    return files.sort((a, b) => b.mtime - a.mtime || basename(b.file).localeCompare(basename(a.file)));
  }

  private arm(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.runOnce().finally(() => this.arm(this.intervalMs));
    }, delayMs);
    this.timer.unref();
  }

  private async backup(): Promise<BackupResult> {
    const now = new Date();
    const stamp = now
      .toISOString()
      .replace(/[-:]/g, '')
      .replace('T', '-')
      .replace(/\.(\d{3})Z$/, '-$1');
    const target = databaseTarget(this.config);
    if (target.kind === 'postgres') {
      const made = await backupDatabase(this.config, this.dir, now);
      const file = join(this.dir, `relais-scheduled-${stamp}.pgdump`);
      await this.makeRoom();
      renameSync(made.file, file);
      return { ...made, file };
    }
    const started = Date.now();
    mkdirSync(this.dir, { recursive: true });
    const file = join(this.dir, `relais-scheduled-${stamp}.db`);
    const partial = `${file}.partial`;
    try {
      await vacuumIntoInWorker(target.path, partial, this.config.sqlite.busy_timeout_ms);
      await this.makeRoom();
      renameSync(partial, file); // a file with the final name is always a whole backup
    } finally {
      rmSync(partial, { force: true });
    }
    return { file, bytes: statSync(file).size, dialect: 'sqlite', durationMs: Date.now() - started };
  }

  /** Deletes scheduled backups beyond `keep`, oldest first. Returns how many. */
  private async applyRetention(keep = this.schedule.keep): Promise<number> {
    const own = await this.listOwn();
    const extra = own.slice(keep);
    for (const f of extra) await unlink(f.file).catch(() => {});
    return extra.length;
  }

  /**
   * Once a new backup is whole (still under its temporary name), the oldest make room for it, so
   * that never more than `keep` backups are on the disk, not even for an instant.
   */
  private async makeRoom(): Promise<void> {
    await this.applyRetention(this.schedule.keep - 1);
  }
}

/**
 * The same `VACUUM INTO` as backup.ts (one read transaction: a snapshot that does not block writers),
 * run in a worker thread at the lowest CPU priority. The worker is plain JavaScript given as text: it
 * must load where the TypeScript sources are not compiled (tests), and needs nothing but better-sqlite3.
 */
function vacuumIntoInWorker(source: string, into: string, busyTimeoutMs: number): Promise<void> {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const code = `
    const { workerData } = require('node:worker_threads');
    try {
      // Linux: lowest CPU priority for this thread only, so intake on the main thread wins the cores.
      const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
      require('node:os').setPriority(tid, 19);
    } catch {}
    const Database = require(workerData.driver);
    const db = new Database(workerData.source, { readonly: true, fileMustExist: true });
    try {
      db.pragma('busy_timeout = ' + Number(workerData.busyTimeoutMs));
      db.prepare('vacuum into ?').run(workerData.into);
    } finally {
      db.close();
    }
    // Durable before it is renamed; flushed here, so the main thread's commits do not pay for it.
    const fs = require('node:fs');
    const fd = fs.openSync(workerData.into, 'r+');
    try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }`;
  return new Promise((resolvePromise, reject) => {
    const worker = new Worker(code, { eval: true, workerData: { driver, source, into, busyTimeoutMs } });
    worker.once('error', reject);
    worker.once('exit', (exitCode) =>
      exitCode === 0 ? resolvePromise() : reject(new Error(`backup worker exited with ${exitCode}`)),
    );
  });
}
