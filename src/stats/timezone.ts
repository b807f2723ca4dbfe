import { RelaisError } from '../shared/errors.js';

/**
 * Local calendar days of an IANA zone, for bucketing hourly rollups into days. One formatter per zone
 * (building an Intl.DateTimeFormat costs far more than using it).
 */
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    // Bounded: only zones that passed validation get here, and there are a few hundred of them.
    formatters.set(tz, f);
  }
  return f;
}

/** The zone's canonical name (`europe/paris` → `Europe/Paris`), or a 400 for an unknown zone. */
export function checkTimeZone(tz: string): string {
  // Intl also takes offsets like "+02:00"; only IANA names (and UTC) are documented and accepted.
  if (!/^[A-Za-z][A-Za-z0-9_+\-/]*$/.test(tz) || tz.length > 64) throw badZone(tz);
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: tz }).resolvedOptions().timeZone;
  } catch {
    throw badZone(tz);
  }
}

function badZone(tz: string): RelaisError {
  return new RelaisError(
    'invalid_timezone',
    `"${tz.slice(0, 64)}" is not an IANA time zone (for example Europe/Paris or UTC)`,
    'tz',
  );
}

interface LocalParts {
  y: number;
  m: number;
  d: number;
  h: number;
  min: number;
  s: number;
}

function localParts(tz: string, at: number): LocalParts {
  const p: Record<string, number> = {};
  for (const part of formatter(tz).formatToParts(at)) {
    if (part.type !== 'literal') p[part.type] = Number(part.value);
  }
  return { y: p.year!, m: p.month!, d: p.day!, h: p.hour!, min: p.minute!, s: p.second! };
}

/** The zone's offset from UTC at an instant, in ms (Paris in summer: +7,200,000). */
function offsetAt(tz: string, at: number): number {
  const l = localParts(tz, at);
  return Date.UTC(l.y, l.m - 1, l.d, l.h, l.min, l.s) - (at - (at % 1000));
}

/** The local date (YYYY-MM-DD) of an instant in a zone. */
export function localDay(tz: string, at: number): string {
  const l = localParts(tz, at);
  return `${l.y}-${String(l.m).padStart(2, '0')}-${String(l.d).padStart(2, '0')}`;
}

/**
 * The instant of local midnight starting a date in a zone. Two passes settle the offset around a DST
 * change; a midnight that does not exist (rare zones skip 00:00) lands on the first instant after it.
 */
export function localMidnight(tz: string, y: number, m: number, d: number): number {
  const wall = Date.UTC(y, m - 1, d);
  let at = wall - offsetAt(tz, wall);
  at = wall - offsetAt(tz, at);
  return at;
}
