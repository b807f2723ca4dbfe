import { createReadStream, createWriteStream, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Worker } from 'node:worker_threads';
import { isSupportedCountry } from 'libphonenumber-js/max';
import type { Config } from '../config/schema.js';
import type { Clock } from '../shared/clock.js';
import { decodeCursor } from '../shared/cursor.js';
import { RelaisError } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import type { Logger } from '../shared/logger.js';
import { workerScript } from '../shared/worker-script.js';
import type { ImportTable } from '../store/schema.js';
import type { Store } from '../store/store.js';
import type { ChunkSource } from './csv-chunks.js';
import { type CsvLayout, HEADER_MAX_BYTES, readHeader } from './csv-header.js';
import { neutraliseFormula } from './import-rows.js';
import type { WorkerMessage } from './import-worker.js';
import { ImportWriter } from './import-writer.js';
import type { ListService } from './lists.js';
import { type PageRequest, toPage } from './paging.js';

export interface ImportView {
  id: string;
  list_id: string;
  status: ImportTable['status'];
  default_country: string | null;
  phone_column: string | null;
  total: number;
  imported: number;
  invalid: number;
  duplicates: number;
  bytes: number;
  error_code: string | null;
  error: string | null;
  errors_url: string;
  created_at: string;
  updated_at: string;
  completed_at: string | null;
}

export interface UploadOptions {
  contentLength?: number | undefined;
  defaultCountry?: string | undefined;
  phoneColumn?: string | undefined;
}

const iso = (ms: number) => new Date(ms).toISOString();

export function toImportView(row: ImportTable): ImportView {
  return {
    id: row.id,
    list_id: row.list_id,
    status: row.status,
    default_country: row.default_country,
    phone_column: row.phone_column,
    total: Number(row.total),
    imported: Number(row.imported),
    invalid: Number(row.invalid),
    duplicates: Number(row.duplicates),
    bytes: Number(row.bytes),
    error_code: row.error_code,
    error: row.error,
    errors_url: `/v1/imports/${row.id}/errors`,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
    completed_at: row.completed_at === null ? null : iso(row.completed_at),
  };
}

/**
 * Counts the upload's bytes (refusing past the limit) and reads its header from the first bytes
 * before letting anything through, so a file without a phone column is refused at once.
 */
class UploadGuard extends Transform {
  bytes = 0;
  layout: CsvLayout | undefined;
  private head: Buffer[] = [];
  private headBytes = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly phoneColumn: string | undefined,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      done(tooLarge(this.maxBytes));
      return;
    }
    if (this.layout) {
      done(null, chunk);
      return;
    }
    this.head.push(chunk);
    this.headBytes += chunk.length;
    const head = Buffer.concat(this.head);
    this.head = [head];
    if (!headerLineEnded(head) && this.headBytes <= HEADER_MAX_BYTES) done();
    else this.release(done);
  }
  override _flush(done: TransformCallback): void {
    if (this.layout) done();
    else this.release(done);
  }

  private release(done: TransformCallback): void {
    try {
      const head = Buffer.concat(this.head);
      this.layout = readHeader(head, this.phoneColumn);
      this.head = [];
      done(null, head);
    } catch (err) {
      done(err as Error);
    }
  }
}

/** True once the first bytes hold a whole header line (past the BOM and leading blank lines). */
function headerLineEnded(head: Buffer): boolean {
  let i = head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 3 : 0;
  while (head[i] === 0x0a || head[i] === 0x0d) i++;
  return i < head.length && head.indexOf(0x0a, i) >= 0;
}

function tooLarge(maxBytes: number): RelaisError {
  return new RelaisError(
    'import_too_large',
    `the file is larger than ${maxBytes.toLocaleString('en-US')} bytes (imports.max_bytes): split it into several imports`,
  );
}

/**
 * CSV imports into a list (docs/contacts.md). The upload is streamed to DATA_DIR/imports/<id>.csv,
 * answered 202, then read in the background in chunked transactions; a crash resumes at the last
 * committed chunk from the spool file.
 */
export class ImportService {
  private readonly writer: ImportWriter;
  private readonly jobs = new Map<string, Promise<void>>();
  private closing = false;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly config: Config,
    private readonly lists: ListService,
    private readonly log: Logger,
  ) {
    this.writer = new ImportWriter(store);
  }

  private get dir(): string {
    return join(this.config.data_dir, 'imports');
  }

  private spoolPath(id: string): string {
    return join(this.dir, `${id}.csv`);
  }

  async upload(tenantId: string, listId: string, body: unknown, options: UploadOptions): Promise<ImportView> {
    const country = options.defaultCountry?.toUpperCase();
    if (country !== undefined && !isSupportedCountry(country)) {
      throw new RelaisError(
        'invalid_field',
        `"${options.defaultCountry}" is not an ISO 3166 country code`,
        'default_country',
      );
    }
    await this.lists.require(tenantId, listId);
    if (!(body instanceof Readable)) {
      throw new RelaisError(
        'unsupported_media_type',
        'send the CSV file as the body with Content-Type: text/csv',
      );
    }
    const maxBytes = this.config.imports.max_bytes;
    if (options.contentLength !== undefined && options.contentLength > maxBytes) {
      body.resume();
      throw tooLarge(maxBytes);
    }
    const now = this.clock.now();
    const id = newId('imp', now);
    const path = this.spoolPath(id);
    mkdirSync(this.dir, { recursive: true });
    const guard = new UploadGuard(maxBytes, options.phoneColumn);
    // The request is piped, not handed to pipeline(): on a refusal it is drained, not destroyed, so the
    // client still reads our 413/400 answer.
    body.pipe(guard);
    body.once('error', (err) => guard.destroy(err));
    const file = createWriteStream(path);
    try {
      await pipeline(guard, file);
    } catch (err) {
      body.unpipe(guard);
      body.resume();
      // The file is opened asynchronously: deleting it before the stream has closed could leave it behind.
      if (!file.closed) await new Promise<void>((resolve) => file.once('close', () => resolve()));
      rmSync(path, { force: true });
      if (err instanceof RelaisError) throw err;
      throw new RelaisError('invalid_request', `the upload was interrupted: ${(err as Error).message}`);
    }
    const row: ImportTable = {
      id,
      tenant_id: tenantId,
      list_id: listId,
      status: 'running',
      default_country: country ?? null,
      phone_column: options.phoneColumn ?? null,
      total: 0,
      imported: 0,
      invalid: 0,
      duplicates: 0,
      bytes: guard.bytes,
      error_code: null,
      error: null,
      created_at: now,
      updated_at: now,
      completed_at: null,
    };
    try {
      await this.store.write((trx) => trx.insertInto('imports').values(row).execute());
    } catch (err) {
      rmSync(path, { force: true });
      throw err;
    }
    this.launch(row, guard.layout!);
    return toImportView(row);
  }

  async get(tenantId: string, id: string): Promise<ImportView | undefined> {
    const row = await this.store.db
      .selectFrom('imports')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? toImportView(row) : undefined;
  }

  async list(tenantId: string, page: PageRequest & { list_id?: string | undefined }) {
    let query = this.store.db.selectFrom('imports').selectAll().where('tenant_id', '=', tenantId);
    if (page.list_id) query = query.where('list_id', '=', page.list_id);
    if (page.cursor) query = query.where('id', '<', decodeCursor(page.cursor, 'imp'));
    const rows = await query
      .orderBy('id', 'desc')
      .limit(page.limit + 1)
      .execute();
    return toPage(rows, page.limit, toImportView);
  }

  /** The rejected rows as CSV (`line,value,reason`), read page by page: never all in memory. */
  async *errorsCsv(importId: string): AsyncGenerator<string> {
    yield 'line,value,reason\r\n';
    let after = 0;
    for (;;) {
      const rows = await this.store.db
        .selectFrom('import_errors')
        .select(['line', 'value', 'reason'])
        .where('import_id', '=', importId)
        .where('line', '>', after)
        .orderBy('line')
        .limit(2000)
        .execute();
      if (rows.length === 0) return;
      yield rows
        .map((r) => `${r.line},${csvField(neutraliseFormula(r.value ?? ''))},${csvField(r.reason)}\r\n`)
        .join('');
      after = Number(rows.at(-1)!.line);
    }
  }

  /**
   * At start: imports left `running` by a crash resume from their last committed chunk when their
   * spool file is here; without it they are marked failed (once stale: another node may run them).
   */
  async resumeInterrupted(): Promise<void> {
    const rows = await this.store.db
      .selectFrom('imports')
      .selectAll()
      .where('status', '=', 'running')
      .execute();
    const staleBefore = this.clock.now() - this.config.imports.orphan_after_seconds * 1000;
    for (const row of rows) {
      if (this.jobs.has(row.id)) continue;
      if (existsSync(this.spoolPath(row.id))) {
        try {
          const head = await readHead(this.spoolPath(row.id));
          this.log.info({ import_id: row.id, from_row: row.total }, 'resuming an interrupted import');
          this.launch(row, readHeader(head, row.phone_column ?? undefined));
        } catch (err) {
          await this.finish(
            row.id,
            'failed',
            'import_interrupted',
            `could not resume: ${(err as Error).message}`,
          );
        }
      } else if (row.updated_at <= staleBefore) {
        await this.finish(
          row.id,
          'failed',
          'import_interrupted',
          `the server stopped during the import and its uploaded file is gone; ${Number(row.total)} rows had been processed (counts above): upload the file again`,
        );
      }
    }
  }

  /** Stops background imports between two chunks; they resume at the next start. */
  async stop(): Promise<void> {
    this.closing = true;
    await Promise.allSettled([...this.jobs.values()]);
  }

  private launch(row: ImportTable, layout: CsvLayout): void {
    const job = this.run(row, layout)
      .catch(async (err) => {
        this.log.error({ err, import_id: row.id }, 'import failed');
        // Closing: the import resumes at the next start. Otherwise it must not stay `running` forever.
        if (!this.closing)
          await this.finish(
            row.id,
            'failed',
            'import_failed',
            'the import stopped on an internal error (logged)',
          ).catch(() => {});
      })
      .finally(() => this.jobs.delete(row.id));
    this.jobs.set(row.id, job);
  }

  private async run(row: ImportTable, layout: CsvLayout): Promise<void> {
    const target = { importId: row.id, tenantId: row.tenant_id, listId: row.list_id };
    const source: ChunkSource = {
      path: this.spoolPath(row.id),
      layout,
      defaultCountry: row.default_country ?? undefined,
      skip: Number(row.total),
      chunkRows: this.config.imports.chunk_rows,
      columnGroups: this.store.dialect === 'postgres',
    };
    const worker = new Worker(workerScript(import.meta.url, 'import-worker.js'), { workerData: source });
    const messages = workerMessages(worker);
    try {
      for (;;) {
        const message = await messages.next();
        if (this.closing) return;
        switch (message.type) {
          case 'chunk': {
            const { chunk } = message;
            await this.store.write((trx) => this.writer.writeChunk(trx, target, chunk, this.clock.now()));
            if (this.closing) return;
            worker.postMessage('next');
            break;
          }
          case 'end':
            await this.finish(row.id, 'completed', null, null);
            return;
          case 'broken':
            await this.finish(row.id, 'failed', 'invalid_csv', message.message);
            return;
          case 'error':
            throw new Error(message.message);
        }
      }
    } finally {
      await worker.terminate();
    }
  }

  private async finish(
    id: string,
    status: 'completed' | 'failed',
    code: string | null,
    error: string | null,
  ) {
    const now = this.clock.now();
    await this.store.write((trx) =>
      trx
        .updateTable('imports')
        .set({ status, error_code: code, error, updated_at: now, completed_at: now })
        .where('id', '=', id)
        .execute(),
    );
    rmSync(this.spoolPath(id), { force: true });
  }
}

function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** The first bytes of a spool file: enough for its header row. */
async function readHead(path: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of createReadStream(path, { end: HEADER_MAX_BYTES + 16 })) {
    parts.push(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return Buffer.concat(parts, size);
}

/** The worker's messages as a pull queue; its death or exit becomes an `error` message. */
function workerMessages(worker: Worker): { next(): Promise<WorkerMessage> } {
  const queue: WorkerMessage[] = [];
  let waiting: ((m: WorkerMessage) => void) | null = null;
  const push = (m: WorkerMessage) => {
    if (waiting) {
      const w = waiting;
      waiting = null;
      w(m);
    } else queue.push(m);
  };
  worker.on('message', push);
  worker.on('error', (err) => push({ type: 'error', message: err.message }));
  worker.on('exit', (code) => push({ type: 'error', message: `the import worker exited (${code})` }));
  return {
    next: () =>
      queue.length > 0
        ? Promise.resolve(queue.shift()!)
        : new Promise<WorkerMessage>((resolve) => (waiting = resolve)),
  };
}
