import { groupsByZone, type ImportRow } from './import-rows.js';
import { countryTimezone } from './timezones.js';

/**
 * A chunk's contacts for PostgreSQL, as the import worker prepares them: one array literal per
 * column, bound as `text[]` parameters. Built in the worker so that the main thread — whose event
 * loop also serves intake — holds a handful of strings per chunk instead of a thousand row objects
 * (which outlived young-generation collections during the statement and grew its heap to 160 MiB).
 */
export interface ColumnGroup {
  /** Rows giving their own time zone (it overwrites an existing contact's) or not. */
  zoneGiven: boolean;
  size: number;
  /** phone, country, first_name, last_name, attributes (JSON), timezone. */
  columns: [string, string, string, string, string, string];
}

export function toColumnGroups(rows: readonly ImportRow[]): ColumnGroup[] {
  return groupsByZone(rows).map(({ zoneGiven, rows: group }) => ({
    zoneGiven,
    size: group.length,
    columns: [
      arrayLiteral(group.map((r) => r.phone)),
      arrayLiteral(group.map((r) => r.country)),
      arrayLiteral(group.map((r) => r.first_name)),
      arrayLiteral(group.map((r) => r.last_name)),
      arrayLiteral(group.map((r) => JSON.stringify(r.attributes))),
      arrayLiteral(group.map((r) => r.timezone ?? countryTimezone(r.country))),
    ],
  }));
}

/**
 * PostgreSQL's text-array input syntax: every element double-quoted with `\` and `"` escaped, NULL
 * bare. The same encoding node-postgres applies to a JS array parameter (written here because the
 * worker has no connection to hand the array to).
 */
export function arrayLiteral(values: readonly (string | null)[]): string {
  const parts = values.map((v) => (v === null ? 'NULL' : `"${v.replace(/[\\"]/g, '\\$&')}"`));
  return `{${parts.join(',')}}`;
}
