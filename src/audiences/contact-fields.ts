import { normaliseDestination } from '../messages/phone.js';
import { RelaisError } from '../shared/errors.js';
import type { ContactTable } from '../store/schema.js';
import { countryTimezone, isValidTimezone } from './timezones.js';

/** Custom fields of a contact: flat, small, typed values only (templates print them as they are). */
export type Attributes = Record<string, string | number | boolean>;

export const ATTRIBUTE_LIMITS = { keys: 100, keyLength: 64, valueLength: 1024 };
export const NAME_MAX = 200;

export interface ContactView {
  id: string;
  phone: string;
  country: string | null;
  first_name: string | null;
  last_name: string | null;
  attributes: Attributes;
  timezone: string | null;
  created_at: string;
  updated_at: string;
}

const iso = (ms: number) => new Date(ms).toISOString();

export function toContactView(row: ContactTable): ContactView {
  return {
    id: row.id,
    phone: row.phone,
    country: row.country,
    first_name: row.first_name,
    last_name: row.last_name,
    attributes: JSON.parse(row.attributes) as Attributes,
    timezone: row.timezone,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

/** E.164 and country of a contact's number; `field` names the input in errors. */
export function contactNumber(phone: string, country: string | undefined, field = 'phone') {
  return normaliseDestination(phone, country, field);
}

/** The zone to store: the one given (checked), else the number's country's main zone. */
export function resolveTimezone(given: string | null | undefined, country: string | null): string | null {
  if (given === undefined || given === null || given === '') return countryTimezone(country);
  if (!isValidTimezone(given)) {
    throw new RelaisError(
      'invalid_field',
      `"${given}" is not an IANA time zone (like Europe/Paris)`,
      'timezone',
    );
  }
  return given;
}

/** Checks attributes given through the API; `null` values are kept (they delete on PATCH). */
export function checkAttributes(
  value: Record<string, unknown>,
): Record<string, string | number | boolean | null> {
  const entries = Object.entries(value);
  if (entries.length > ATTRIBUTE_LIMITS.keys) {
    throw new RelaisError(
      'invalid_field',
      `at most ${ATTRIBUTE_LIMITS.keys} attributes per contact`,
      'attributes',
    );
  }
  for (const [key, v] of entries) {
    const field = `attributes/${key}`;
    if (key.length === 0 || key.length > ATTRIBUTE_LIMITS.keyLength) {
      throw new RelaisError(
        'invalid_field',
        `attribute names are 1 to ${ATTRIBUTE_LIMITS.keyLength} characters`,
        field,
      );
    }
    if (typeof v === 'string' && v.length > ATTRIBUTE_LIMITS.valueLength) {
      throw new RelaisError(
        'invalid_field',
        `attribute values are at most ${ATTRIBUTE_LIMITS.valueLength} characters`,
        field,
      );
    }
    if (typeof v === 'number' && !Number.isFinite(v)) {
      throw new RelaisError('invalid_field', 'attribute numbers must be finite', field);
    }
  }
  return value as Record<string, string | number | boolean | null>;
}

/** A JSON merge: `null` removes a key, anything else sets it. */
export function mergeAttributes(
  current: Attributes,
  patch: Record<string, string | number | boolean | null>,
): Attributes {
  const out: Attributes = { ...current };
  for (const [key, v] of Object.entries(patch)) {
    if (v === null) delete out[key];
    else out[key] = v;
  }
  if (Object.keys(out).length > ATTRIBUTE_LIMITS.keys) {
    throw new RelaisError(
      'invalid_field',
      `at most ${ATTRIBUTE_LIMITS.keys} attributes per contact`,
      'attributes',
    );
  }
  return out;
}

/** Optional text field: trimmed, empty means none. */
export function optionalText(value: string | null | undefined, field: string, max = NAME_MAX): string | null {
  if (value === undefined || value === null) return null;
  const v = value.trim();
  if (v.length > max) throw new RelaisError('invalid_field', `${field} is at most ${max} characters`, field);
  return v === '' ? null : v;
}
