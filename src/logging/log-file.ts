import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import { readdir, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import pinoRoll, { type RollStream } from 'pino-roll';
import type { Config } from '../config/schema.js';

export interface LogFileOptions {
  /** Absolute path; rotated files are named `<stem>.<yyyy-MM-dd>.<n>.<ext>` beside it. */
  file: string;
  maxFileBytes: number;
  /** Files kept, the one being written included. */
  maxFiles: number;
  /** Bytes all log files may hold together, the one being written included. */
  maxTotalBytes: number;
}

/** The log file options of a configuration, or null for stdout. A relative `log.file` is under data_dir. */
export function logFileOptions(config: Config): LogFileOptions | null {
  const { file, max_file_bytes, max_files, max_total_bytes } = config.log;
  if (!file) return null;
  return {
    file: resolve(config.data_dir, file),
    maxFileBytes: max_file_bytes,
    maxFiles: max_files,
    maxTotalBytes: max_total_bytes,
  };
}

/** Lines held while a rotation is pending, at most; beyond, lines are dropped (and counted). */
const HOLD_LIMIT_BYTES = 4 * 1024 * 1024;
/** SonicBoom's own buffer cap: a failing disk (ENOSPC) must not grow memory without bound. */
const BUFFER_LIMIT_BYTES = 16 * 1024 * 1024;
/** A rotation not done by then (disk error) lets held lines through rather than holding them forever. */
const GATE_TIMEOUT_MS = 1000;
const ERROR_REPORT_INTERVAL_MS = 60_000;
const CLOSE_WAIT_MS = 2000;

/**
 * The log file Relais writes when `log.file` is set: a pino destination rotated by pino-roll (by size,
 * daily, keeping `max_files`). Writes are asynchronous (SonicBoom, sync: false): a log line costs the
 * event loop its serialisation only, never a disk wait.
 *
 * Written by hand, because pino-roll lacks it:
 * - the cap on total bytes (pino-roll only counts files), and pruning files left by earlier runs
 *   (pino-roll only removes files it created itself, so restarts would accumulate them);
 * - a gate that makes size rotation happen under sustained logging: pino-roll rolls on SonicBoom's
 *   'drain', which never comes while lines keep arriving — measured: a 20 KiB cap let one file grow to
 *   88 MB in 3 s. Once the file reaches its size, new lines wait in memory until the rotation is done.
 */
export class RotatingLogFile {
  private fileBytes = 0;
  private currentFile: string;
  private held: string[] | null = null;
  private heldBytes = 0;
  private gateTimer: NodeJS.Timeout | null = null;
  private longestLine = 0;
  private pruning: Promise<void> = Promise.resolve();
  private lastErrorReport = 0;
  private closed = false;
  private readonly pattern: RegExp;
  /** Lines lost to a full hold buffer or a failing disk. */
  dropped = 0;
  /** Write errors (ENOSPC…) since start; logging carries on and retries. */
  errors = 0;

  private constructor(
    private readonly stream: RollStream,
    private readonly options: LogFileOptions,
    initialBytes: number,
  ) {
    this.currentFile = stream.file ?? options.file;
    this.fileBytes = initialBytes;
    const { stem, ext } = splitName(basename(options.file));
    this.pattern = new RegExp(
      `^${escapeRegExp(stem)}\\.(\\d{4}-\\d{2}-\\d{2})\\.(\\d+)\\.${escapeRegExp(ext)}$`,
    );
    stream.on('ready', () => this.onOpened());
    stream.on('drop', () => this.dropped++);
    stream.on('error', (err: Error) => this.onError(err));
    process.once('exit', this.flushOnExit);
  }

  static async open(options: LogFileOptions): Promise<RotatingLogFile> {
    mkdirSync(dirname(options.file), { recursive: true });
    const stream = await pinoRoll({
      file: options.file,
      size: `${options.maxFileBytes}b`,
      frequency: 'daily',
      dateFormat: 'yyyy-MM-dd',
      // pino-roll counts the files besides the one being written.
      limit: { count: Math.max(1, options.maxFiles - 1) },
      symlink: true,
      mkdir: true,
      sync: false,
      maxLength: BUFFER_LIMIT_BYTES,
    });
    await once(stream, 'ready');
    const file = new RotatingLogFile(stream, options, await sizeOf(stream.file ?? options.file));
    await file.prune();
    return file;
  }

  /** The file being written now. */
  get current(): string {
    return this.currentFile;
  }

  /** pino's destination interface. */
  write(line: string): boolean {
    if (this.closed) return true;
    const bytes = Buffer.byteLength(line);
    if (bytes > this.longestLine) {
      // The current file may end one line past its size: the budget of older files leaves room for it.
      this.longestLine = bytes;
      this.schedulePrune();
    }
    if (this.held) {
      if (this.heldBytes + bytes > HOLD_LIMIT_BYTES) this.dropped++;
      else {
        this.held.push(line);
        this.heldBytes += bytes;
      }
      return true;
    }
    this.fileBytes += bytes;
    this.stream.write(line);
    if (this.fileBytes >= this.options.maxFileBytes) this.hold();
    return true;
  }

  flush(cb?: (err?: Error) => void): void {
    this.stream.flush(cb);
  }

  /**
   * Writes what is pending (held lines still go through rotation, for at most CLOSE_WAIT_MS), closes
   * the file and waits for a pruning pass in progress.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    const deadline = Date.now() + CLOSE_WAIT_MS;
    while (this.held && Date.now() < deadline) {
      await Promise.race([once(this.stream, 'ready'), new Promise((r) => setTimeout(r, 50))]);
    }
    if (this.gateTimer) clearTimeout(this.gateTimer);
    this.dropped += this.held?.length ?? 0;
    this.held = null;
    this.closed = true;
    process.removeListener('exit', this.flushOnExit);
    const closing = once(this.stream, 'close');
    this.stream.end();
    // A stream ended while pino-roll rotates it (between its flush and its reopen, as at midnight)
    // never closes: shutdown waited forever (test/logging.test.ts). What was written before is on
    // disk; the file is closed by force once the wait is over.
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      closing.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), CLOSE_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
    if (!closed) this.stream.destroy();
    await this.pruning;
  }

  /**
   * Deletes the oldest rotated files beyond `max_files` or beyond the byte budget. Only files named as
   * this log rotates them are touched, never the one being written.
   */
  prune(): Promise<void> {
    // Passes run one after the other; each caller waits for a pass that started after its call.
    const pass = this.pruning
      .then(() => this.prunePass())
      .catch((err: Error) => this.report(`log pruning failed: ${err.message}`));
    this.pruning = pass;
    return pass;
  }

  private async prunePass(): Promise<void> {
    const dir = dirname(this.options.file);
    const current = basename(this.currentFile);
    const rotated: { path: string; bytes: number; date: string; n: number }[] = [];
    for (const name of await readdir(dir)) {
      const match = this.pattern.exec(name);
      if (name === current || !match) continue;
      const info = await stat(join(dir, name)).catch(() => null);
      if (info?.isFile())
        rotated.push({ path: join(dir, name), bytes: info.size, date: match[1]!, n: Number(match[2]) });
    }
    // Newest first: by the date, then the number pino-roll gives each file of a day.
    rotated.sort((a, b) => b.date.localeCompare(a.date) || b.n - a.n);
    const budget = this.options.maxTotalBytes - this.options.maxFileBytes - this.longestLine;
    let kept = 0;
    let keptBytes = 0;
    for (const file of rotated) {
      if (kept < this.options.maxFiles - 1 && keptBytes + file.bytes <= budget) {
        kept++;
        keptBytes += file.bytes;
      } else {
        // Older than a file beyond either cap: deleted too, so "oldest first" holds.
        kept = this.options.maxFiles;
        await unlink(file.path).catch(() => {});
      }
    }
  }

  private hold(): void {
    this.held = [];
    this.heldBytes = 0;
    this.gateTimer = setTimeout(() => {
      // No rotation came (the disk refuses writes?): let the lines through, try again one size later.
      this.fileBytes = 0;
      this.release();
    }, GATE_TIMEOUT_MS);
    this.gateTimer.unref();
  }

  private release(): void {
    if (this.gateTimer) clearTimeout(this.gateTimer);
    this.gateTimer = null;
    const lines = this.held;
    this.held = null;
    for (const line of lines ?? []) this.write(line);
  }

  /** SonicBoom opened a file: after a rotation, a new one. */
  private onOpened(): void {
    const file = this.stream.file;
    if (!file || file === this.currentFile) return;
    this.currentFile = file;
    this.fileBytes = 0;
    // The new file gets its lines once older files are pruned to the budget: the total stays capped
    // even when lines arrive faster than rotations.
    if (!this.held) this.hold();
    void this.prune().finally(() => this.release());
  }

  private schedulePrune(): void {
    if (!this.closed) void this.prune();
  }

  private onError(err: Error): void {
    this.errors++;
    this.report(`log file write failed (${(err as NodeJS.ErrnoException).code ?? err.message}); retrying`);
  }

  /** The log file itself may be what fails: problems with it go to stderr, at most once a minute. */
  private report(text: string): void {
    const now = Date.now();
    if (now - this.lastErrorReport < ERROR_REPORT_INTERVAL_MS) return;
    this.lastErrorReport = now;
    process.stderr.write(`relais: ${text}\n`);
  }

  private readonly flushOnExit = (): void => {
    try {
      // No rotation can happen any more: held lines are lost rather than overfilling the file.
      this.dropped += this.held?.length ?? 0;
      this.held = null;
      this.stream.flushSync();
    } catch {
      // Exiting: nothing more can be done for the last lines.
    }
  };
}

/** `relais.log` → stem `relais`, ext `log`, as pino-roll splits it (no extension means `log`). */
function splitName(name: string): { stem: string; ext: string } {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? { stem: name.slice(0, dot), ext: name.slice(dot + 1) } : { stem: name, ext: 'log' };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

async function sizeOf(path: string): Promise<number> {
  return (await stat(path).catch(() => null))?.size ?? 0;
}
