import { parsePhoneNumberFromString } from 'libphonenumber-js/min';
import { countryTimezone, isValidTimezone } from '../audiences/timezones.js';
import { RelaisError } from '../shared/errors.js';

export const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Day = (typeof DAYS)[number];

/** Hours during which recipients may be messaged, in each recipient's own time zone. */
export interface SendWindow {
  /** "HH:MM", inclusive. */
  start: string;
  /** "HH:MM", exclusive; earlier than `start` for a window across midnight (20:00–08:00). */
  end: string;
  /** Days (local to the recipient) on which the window opens; all days when absent. */
  days?: Day[] | undefined;
}

const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;

function minutesOf(hhmm: string, field: string): number {
  const m = HHMM.exec(hhmm);
  if (!m)
    throw new RelaisError('invalid_window', `${field} must be a time "HH:MM" from 00:00 to 23:59`, field);
  return Number(m[1]) * 60 + Number(m[2]);
}

/** Checks a window from the API; throws `invalid_window` naming the field. */
export function validateWindow(w: SendWindow): SendWindow {
  const start = minutesOf(w.start, 'window/start');
  const end = minutesOf(w.end, 'window/end');
  if (start === end) {
    throw new RelaisError(
      'invalid_window',
      'window/start and window/end are equal: the window is empty',
      'window',
    );
  }
  if (w.days !== undefined) {
    if (w.days.length === 0) throw new RelaisError('invalid_window', 'window/days is empty', 'window/days');
    for (const d of w.days) {
      if (!(DAYS as readonly string[]).includes(d)) {
        throw new RelaisError(
          'invalid_window',
          `"${d}" is not a day (mon, tue, wed, thu, fri, sat, sun)`,
          'window/days',
        );
      }
    }
    if (new Set(w.days).size !== w.days.length) {
      throw new RelaisError('invalid_window', 'window/days lists a day twice', 'window/days');
    }
  }
  return { start: w.start, end: w.end, ...(w.days ? { days: w.days } : {}) };
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(zone, f);
  }
  return f;
}

/** Local day and minute of the day of `at` in `zone`. */
export function localTime(at: number, zone: string): { day: Day; minute: number } {
  let day: Day = 'sun';
  let hour = 0;
  let minute = 0;
  for (const p of formatter(zone).formatToParts(at)) {
    if (p.type === 'weekday') day = p.value.slice(0, 3).toLowerCase() as Day;
    else if (p.type === 'hour') hour = Number(p.value);
    else if (p.type === 'minute') minute = Number(p.value);
  }
  return { day, minute: hour * 60 + minute };
}

/**
 * Whether the window is open at `at` in `zone`. For a window across midnight the day checked is the
 * local day of the moment itself (20:00–08:00 with days [fri] is open Friday evening and Friday
 * early morning).
 */
export function isWindowOpen(w: SendWindow, zone: string, at: number): boolean {
  const { day, minute } = localTime(at, zone);
  if (w.days && !w.days.includes(day)) return false;
  const start = minutesOf(w.start, 'window/start');
  const end = minutesOf(w.end, 'window/end');
  return start < end ? minute >= start && minute < end : minute >= start || minute < end;
}

/**
 * A recipient's time zone: the contact's own (contacts.timezone), else its country's main zone
 * (contacts.country, else the phone number's; src/audiences/timezones.ts, shared with imports), else UTC.
 */
export function recipientZone(contact: {
  timezone: string | null;
  country: string | null;
  phone: string;
}): string {
  if (contact.timezone && isValidTimezone(contact.timezone)) return contact.timezone;
  const country = contact.country ?? parsePhoneNumberFromString(contact.phone)?.country ?? null;
  const zone = countryTimezone(country?.toUpperCase() ?? null);
  return zone && isValidTimezone(zone) ? zone : 'UTC';
}
