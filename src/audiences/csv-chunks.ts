import { createReadStream } from 'node:fs';
import { parse } from 'csv-parse';
import type { CsvLayout } from './csv-header.js';
import { type ImportRow, mergeRow, type RowError, readRow } from './import-rows.js';
import type { ColumnGroup } from './pg-columns.js';

/** A record longer than this is an unmatched quote swallowing the file, not a contact. */
export const MAX_RECORD_BYTES = 1024 * 1024;

export interface CsvChunk {
  /** Valid rows, one per number (a number repeated inside the chunk is merged into its first row). */
  rows: ImportRow[];
  errors: RowError[];
  /** Data rows read, whatever became of them. */
  records: number;
  duplicatesInChunk: number;
}

/** A chunk as the writer takes it: valid rows as objects (SQLite) or as column literals (PostgreSQL). */
export interface PreparedChunk extends Omit<CsvChunk, 'rows'> {
  rows: ImportRow[];
  groups: ColumnGroup[] | null;
}

export interface ChunkSource {
  path: string;
  layout: CsvLayout;
  defaultCountry: string | undefined;
  /** Data rows already committed by an earlier run: read past, not returned. */
  skip: number;
  chunkRows: number;
  /** PostgreSQL: the worker hands over column literals (pg-columns.ts) instead of row objects. */
  columnGroups?: boolean;
}

/** The file cannot be read past `line`: the rows before it are good. */
export class CsvBroken extends Error {
  constructor(
    readonly line: number,
    readonly reason: string,
  ) {
    super(`line ${line}: ${reason}; the rows before it were imported`);
  }
}

/**
 * Reads a spooled CSV as chunks of checked rows. Line numbers are counted here (csv-parse's own
 * count drifts on CRLF inside quoted values): a record starts on the line after the previous one
 * ended, plus the newlines inside its values.
 */
export async function* readCsvChunks(source: ChunkSource): AsyncGenerator<CsvChunk> {
  const { layout, defaultCountry, skip, chunkRows } = source;
  const file = createReadStream(source.path);
  const parser = parse({
    delimiter: layout.delimiter,
    bom: true,
    relax_column_count: true,
    relax_quotes: true,
    max_record_size: MAX_RECORD_BYTES,
  });
  file.on('error', (err) => parser.destroy(err));
  file.pipe(parser);
  let chunk = emptyChunk();
  let pending = new Map<string, ImportRow>();
  let line = 1;
  let header = true;
  let seen = 0;
  try {
    for await (const record of parser as AsyncIterable<string[]>) {
      const start = line;
      line += 1 + newlinesIn(record);
      if (record.length === 1 && record[0] === '') continue; // a blank line
      if (header) {
        header = false;
        continue;
      }
      if (++seen <= skip) continue;
      const result = readRow(record, start, layout, defaultCountry);
      if ('error' in result) chunk.errors.push(result.error);
      else {
        const earlier = pending.get(result.row.phone);
        if (earlier) {
          mergeRow(earlier, result.row);
          chunk.duplicatesInChunk++;
        } else pending.set(result.row.phone, result.row);
      }
      if (++chunk.records >= chunkRows) {
        chunk.rows = [...pending.values()];
        yield chunk;
        chunk = emptyChunk();
        pending = new Map();
      }
    }
  } catch (err) {
    chunk.rows = [...pending.values()];
    if (chunk.records > 0) yield chunk;
    throw new CsvBroken(line, describeParseError(err as Error & { code?: string }));
  } finally {
    file.destroy();
  }
  chunk.rows = [...pending.values()];
  if (chunk.records > 0) yield chunk;
}

function emptyChunk(): CsvChunk {
  return { rows: [], errors: [], records: 0, duplicatesInChunk: 0 };
}

function newlinesIn(record: string[]): number {
  let n = 0;
  for (const field of record) {
    for (let i = field.indexOf('\n'); i >= 0; i = field.indexOf('\n', i + 1)) n++;
  }
  return n;
}

function describeParseError(err: Error & { code?: string }): string {
  switch (err.code) {
    case 'CSV_QUOTE_NOT_CLOSED':
      return 'a quoted value is never closed (an unmatched ")';
    case 'CSV_MAX_RECORD_SIZE':
      return `a row is longer than ${MAX_RECORD_BYTES / 1024} KiB (an unmatched " swallowing the rest of the file?)`;
    default:
      return `the file cannot be read as CSV (${err.message})`;
  }
}
