import { type CountryCode, isSupportedCountry, parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { RelaisError } from '../shared/errors.js';

/**
 * The sender of an MO as E.164 when it can be read as a phone number: carriers hand over
 * international numbers without their `+` (TON is not passed on), sometimes with 00, or in national
 * format (read in `defaultCountry`). Anything else (alphanumeric, unknown format) is kept as received.
 */
export function moSender(addr: string, defaultCountry?: string): string {
  const raw = addr.trim();
  const digits = raw.startsWith('+') ? raw.slice(1) : raw.startsWith('00') ? raw.slice(2) : raw;
  if (!/^\d{4,20}$/.test(digits)) return raw;
  const international = parsePhoneNumberFromString(`+${digits}`);
  if (international?.isValid()) return international.number;
  const region = defaultCountry?.toUpperCase();
  if (raw === digits && region && isSupportedCountry(region)) {
    const national = parsePhoneNumberFromString(raw, region as CountryCode);
    if (national?.isValid()) return national.number;
  }
  return raw.startsWith('00') ? `+${digits}` : raw;
}

/**
 * An inbound number or short code as the operator assigns it: digits, with a leading + (or 00) for
 * an international number. Spaces, dots and dashes are dropped.
 */
export function canonicalInboundNumber(raw: string, field = 'number'): string {
  const compact = raw.trim().replace(/[\s.-]/g, '');
  const value = compact.startsWith('00') ? `+${compact.slice(2)}` : compact;
  if (!/^\+?\d{3,15}$/.test(value)) {
    throw new RelaisError(
      'invalid_inbound_number',
      `"${raw}" is not a number or short code (3 to 15 digits, optionally with a leading +)`,
      field,
    );
  }
  return value;
}

/** The forms under which the destination of an MO may have been assigned: with and without the +. */
export function numberForms(destination: string): string[] {
  const value = destination.trim();
  if (value.startsWith('+')) return [value, value.slice(1)];
  if (value.startsWith('00')) return [`+${value.slice(2)}`, value.slice(2), value];
  return [value, `+${value}`];
}
