import { parse } from 'csv-parse/sync';
import { RelaisError } from '../shared/errors.js';

/**
 * The header row of an uploaded CSV, read before anything is stored: which separator the file uses,
 * which column holds the phone number, and what every other column becomes.
 */

/** A header line longer than this is not a header (binary data, or a file without newlines). */
export const HEADER_MAX_BYTES = 64 * 1024;

export type ColumnRole = 'phone' | 'first_name' | 'last_name' | 'timezone' | 'attribute' | 'ignored';

export interface CsvLayout {
  delimiter: ',' | ';' | '\t';
  /** Header names as written (trimmed, BOM removed). */
  names: string[];
  roles: ColumnRole[];
  phoneIndex: number;
}

const PHONE_ALIASES = new Set([
  'phone',
  'phone_number',
  'phonenumber',
  'mobile',
  'mobile_number',
  'mobile_phone',
  'msisdn',
  'number',
  'telephone',
  'tel',
  'cell',
  'cellphone',
  'cell_phone',
  'gsm',
]);
const FIELD_ALIASES: Record<string, ColumnRole> = {
  first_name: 'first_name',
  firstname: 'first_name',
  given_name: 'first_name',
  last_name: 'last_name',
  lastname: 'last_name',
  surname: 'last_name',
  family_name: 'last_name',
  timezone: 'timezone',
  time_zone: 'timezone',
  tz: 'timezone',
};

/** "First Name", "first-name" and "first_name" are one column. */
const canonical = (name: string) =>
  name
    .trim()
    .toLowerCase()
    .replace(/[\s-]+/g, '_');

/** The separator used most in the header line, outside quotes (`;` is Excel's in much of Europe). */
export function detectDelimiter(line: string): CsvLayout['delimiter'] {
  const counts = { ',': 0, ';': 0, '\t': 0 };
  let quoted = false;
  for (const ch of line) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && (ch === ',' || ch === ';' || ch === '\t')) counts[ch]++;
  }
  if (counts[';'] > counts[','] && counts[';'] >= counts['\t']) return ';';
  if (counts['\t'] > counts[','] && counts['\t'] > counts[';']) return '\t';
  return ',';
}

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads the header from the first bytes of the upload. `head` holds at least the first line (or the
 * whole file when shorter); `phoneColumn` is the customer's `phone_column=`, else aliases are tried.
 */
export function readHeader(head: Buffer, phoneColumn: string | undefined): CsvLayout {
  let start = head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 3 : 0;
  // Blank lines before the header are tolerated.
  while (start < head.length && (head[start] === 0x0a || head[start] === 0x0d)) start++;
  if (start >= head.length) {
    throw new RelaisError(
      'invalid_csv',
      'the file is empty: send a header row with a phone column, then one row per contact',
    );
  }
  const newline = head.indexOf(0x0a, start);
  if (newline < 0 && head.length > HEADER_MAX_BYTES) {
    throw new RelaisError(
      'invalid_csv',
      `the first line is longer than ${HEADER_MAX_BYTES / 1024} KiB: this is not a CSV header`,
    );
  }
  const lineBytes = head.subarray(start, newline < 0 ? head.length : newline);
  if (lineBytes.includes(0)) {
    throw new RelaisError(
      'invalid_csv',
      'the file holds binary data (NUL bytes): send a UTF-8 CSV text file',
    );
  }
  let line: string;
  try {
    line = fatalUtf8.decode(lineBytes).replace(/\r$/, '');
  } catch {
    throw new RelaisError('invalid_csv', 'the header row is not valid UTF-8: save the file as "CSV UTF-8"');
  }
  const delimiter = detectDelimiter(line);
  let names: string[];
  try {
    const rows = parse(line, { delimiter, relax_quotes: true, relax_column_count: true }) as string[][];
    names = (rows[0] ?? []).map((n) => n.trim());
  } catch (err) {
    throw new RelaisError('invalid_csv', `the header row cannot be read: ${(err as Error).message}`);
  }
  if (names.length > 1000) throw new RelaisError('invalid_csv', 'the header has more than 1,000 columns');
  const roles = names.map(
    (name): ColumnRole => (name === '' ? 'ignored' : (FIELD_ALIASES[canonical(name)] ?? 'attribute')),
  );
  const phoneIndex =
    phoneColumn === undefined
      ? names.findIndex((n) => PHONE_ALIASES.has(canonical(n)))
      : names.findIndex((n) => n.toLowerCase() === phoneColumn.trim().toLowerCase());
  if (phoneIndex < 0) {
    const seen =
      names.length > 0
        ? names
            .slice(0, 20)
            .map((n) => `"${n}"`)
            .join(', ')
        : 'none';
    throw new RelaisError(
      'csv_missing_phone_column',
      phoneColumn === undefined
        ? `no phone column in the header (columns: ${seen}); name it "phone" (or mobile, msisdn, number, telephone) or pass phone_column=`
        : `no column "${phoneColumn}" in the header (columns: ${seen})`,
      'phone_column',
    );
  }
  roles[phoneIndex] = 'phone';
  return { delimiter, names, roles, phoneIndex };
}
