import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * Checkpoints of SQLite's write-ahead log, run by a thread of their own on a second connection.
 *
 * SQLite checkpoints from the connection that commits: the COMMIT that takes the log past
 * `wal_autocheckpoint` pages copies every page in it back into the database file and syncs that file,
 * on the main thread, while nothing else runs (the carrier path's commits held about 1.4 s of
 * checkpoint work in a 27 s run). Here a worker runs `wal_checkpoint(PASSIVE)` every `intervalMs`:
 * PASSIVE takes no lock a writer or a reader waits for; it copies the frames no reader still needs.
 * Under steady writes it rarely sees the log whole (commits land while it copies), so the log is
 * restarted by the writing connection's own checkpoint, at a threshold raised to 4,000 pages
 * (store.ts), which then finds most of it copied already. That threshold also bounds the log if this
 * thread stops or lags. (With SQLite's 1,000 pages the thread gained nothing measurable; see
 * docs/architecture.md.)
 *
 * The worker is plain JavaScript given as text, like the backup worker: it must load where the
 * TypeScript sources are not compiled (tests), and needs nothing but better-sqlite3.
 */
export class Checkpointer {
  private worker: Worker | null = null;
  private readonly starting: NodeJS.Timeout;

  constructor(path: string, intervalMs: number) {
    // The thread starts with the first checkpoint: a CLI command done within a second never pays for
    // it (a thread loading the SQLite driver).
    this.starting = setTimeout(() => this.start(path, intervalMs), intervalMs);
    this.starting.unref();
  }

  /** Stops the thread and closes its connection (before the main one closes, so the log is removed). */
  async stop(): Promise<void> {
    clearTimeout(this.starting);
    const worker = this.worker;
    this.worker = null;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    // Unreferenced, the thread would not keep the process alive for its own stop.
    worker.ref();
    worker.postMessage('stop');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
    await worker.terminate();
  }

  private start(path: string, intervalMs: number): void {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const code = `
      const { workerData, parentPort } = require('node:worker_threads');
      const Database = require(workerData.driver);
      const db = new Database(workerData.path, { fileMustExist: true });
      db.pragma('busy_timeout = 0');
      const checkpoint = () => {
        try {
          db.pragma('wal_checkpoint(PASSIVE)');
        } catch (err) {
          // SQLITE_BUSY: the main connection's own checkpoint is running; the next tick catches up.
          if (err && err.code !== 'SQLITE_BUSY' && err.code !== 'SQLITE_LOCKED') throw err;
        }
      };
      checkpoint();
      const timer = setInterval(checkpoint, workerData.intervalMs);
      parentPort.on('message', () => {
        clearInterval(timer);
        db.close();
        parentPort.close();
      });`;
    const worker = new Worker(code, { eval: true, workerData: { driver, path, intervalMs } });
    worker.unref();
    // A failing checkpointer leaves the main connection's own checkpoints in charge: not fatal.
    worker.on('error', () => {});
    this.worker = worker;
  }
}
