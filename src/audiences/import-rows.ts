import { RelaisError } from '../shared/errors.js';
import { ATTRIBUTE_LIMITS, type Attributes, contactNumber, NAME_MAX } from './contact-fields.js';
import type { CsvLayout } from './csv-header.js';
import { isValidTimezone } from './timezones.js';

/** One CSV data row turned into a contact, or the reason it cannot be one. */

export interface ImportRow {
  phone: string;
  country: string | null;
  first_name: string | null;
  last_name: string | null;
  /** Only when the file gives one: a derived zone never overwrites an existing contact's. */
  timezone: string | null;
  attributes: Attributes;
}

export interface RowError {
  line: number;
  value: string | null;
  reason: string;
}

/**
 * A chunk's rows in the two groups its writes need: a zone given by the file overwrites an existing
 * contact's, a derived one does not. Empty groups are left out.
 */
export function groupsByZone(rows: readonly ImportRow[]): { zoneGiven: boolean; rows: ImportRow[] }[] {
  return [true, false]
    .map((zoneGiven) => ({ zoneGiven, rows: rows.filter((r) => (r.timezone !== null) === zoneGiven) }))
    .filter((g) => g.rows.length > 0);
}

export type RowResult = { row: ImportRow } | { error: RowError };

const REPLACEMENT = '\uFFFD';

/** `line`: where the record starts in the file. */
export function readRow(
  record: string[],
  line: number,
  layout: CsvLayout,
  defaultCountry: string | undefined,
): RowResult {
  const fail = (reason: string, value: string | null = record[layout.phoneIndex] ?? null): RowResult => ({
    error: { line, value: value === null ? null : value.slice(0, 200), reason },
  });
  if (record.length > layout.names.length) {
    return fail(
      `${record.length} fields but the header has ${layout.names.length} (a separator inside an unquoted value?)`,
    );
  }
  const raw = record[layout.phoneIndex];
  if (raw === undefined || raw.trim() === '') return fail('no phone number', raw ?? null);
  let number: { e164: string; country: string | null };
  try {
    number = contactNumber(raw, defaultCountry);
  } catch (err) {
    if (err instanceof RelaisError) return fail(err.message);
    throw err;
  }
  const row: ImportRow = {
    phone: number.e164,
    country: number.country,
    first_name: null,
    last_name: null,
    timezone: null,
    attributes: {},
  };
  let attributeCount = 0;
  for (let i = 0; i < record.length; i++) {
    const role = layout.roles[i];
    if (role === 'phone' || role === 'ignored') continue;
    const value = record[i]!.trim();
    // Empty cells never erase what a contact already has.
    if (value === '') continue;
    if (value.includes(REPLACEMENT) || value.includes('\0')) {
      return fail(
        `column "${layout.names[i]}" is not UTF-8 text (binary data, or a file saved in another encoding)`,
      );
    }
    if (role === 'attribute') {
      if (value.length > ATTRIBUTE_LIMITS.valueLength)
        return fail(`column "${layout.names[i]}" is longer than ${ATTRIBUTE_LIMITS.valueLength} characters`);
      if (++attributeCount > ATTRIBUTE_LIMITS.keys)
        return fail(`more than ${ATTRIBUTE_LIMITS.keys} attributes`);
      row.attributes[layout.names[i]!.slice(0, ATTRIBUTE_LIMITS.keyLength)] = value;
    } else if (role === 'timezone') {
      if (!isValidTimezone(value))
        return fail(`"${value.slice(0, 64)}" is not an IANA time zone (like Europe/Paris)`);
      row.timezone = value;
    } else if (role !== undefined) {
      if (value.length > NAME_MAX) return fail(`${role} is longer than ${NAME_MAX} characters`);
      row[role] = value;
    }
  }
  return { row };
}

/** Later non-empty values win, as they would over an existing contact. */
export function mergeRow(into: ImportRow, later: ImportRow): void {
  if (later.first_name !== null) into.first_name = later.first_name;
  if (later.last_name !== null) into.last_name = later.last_name;
  if (later.timezone !== null) into.timezone = later.timezone;
  Object.assign(into.attributes, later.attributes);
}

/**
 * A value written to the errors CSV must not run as a formula when opened in a spreadsheet
 * (CSV injection): it gets a leading apostrophe. Phone-like values (+33 6…) are left as they are.
 */
export function neutraliseFormula(value: string): string {
  if (/^[=@\t\r]/.test(value)) return `'${value}`;
  if (/^[+-]/.test(value) && !/^[+-][\d\s().-]*$/.test(value)) return `'${value}`;
  return value;
}
