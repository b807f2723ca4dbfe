import ct from 'countries-and-timezones';

/**
 * A contact's time zone, derived from its number's country when not given. Countries spanning
 * several zones get their main one (where most people live) from this hand-kept table; a customer
 * who knows better sets `timezone` on the contact (or a `timezone` column in a CSV).
 */
const MAIN_ZONE: Record<string, string> = {
  US: 'America/New_York',
  CA: 'America/Toronto',
  BR: 'America/Sao_Paulo',
  RU: 'Europe/Moscow',
  AU: 'Australia/Sydney',
  MX: 'America/Mexico_City',
  ID: 'Asia/Jakarta',
  AR: 'America/Argentina/Buenos_Aires',
  CL: 'America/Santiago',
  CN: 'Asia/Shanghai',
  CD: 'Africa/Kinshasa',
  DE: 'Europe/Berlin',
  EC: 'America/Guayaquil',
  ES: 'Europe/Madrid',
  GL: 'America/Nuuk',
  KZ: 'Asia/Almaty',
  MN: 'Asia/Ulaanbaatar',
  MY: 'Asia/Kuala_Lumpur',
  NZ: 'Pacific/Auckland',
  PT: 'Europe/Lisbon',
  PF: 'Pacific/Tahiti',
  UA: 'Europe/Kyiv',
  UZ: 'Asia/Tashkent',
  CY: 'Asia/Nicosia',
  PG: 'Pacific/Port_Moresby',
  KI: 'Pacific/Tarawa',
  FM: 'Pacific/Pohnpei',
  MH: 'Pacific/Majuro',
  EG: 'Africa/Cairo',
};

const byCountry = new Map<string, string | null>();

/** The IANA zone for an ISO 3166 country, or null when the country is unknown. */
export function countryTimezone(country: string | null): string | null {
  if (!country) return null;
  let zone = byCountry.get(country);
  if (zone === undefined) {
    const zones = ct.getCountry(country)?.timezones ?? [];
    zone = MAIN_ZONE[country] ?? (zones.length > 0 ? zones[0]! : null);
    byCountry.set(country, zone);
  }
  return zone;
}

const known = new Map<string, boolean>();

/** True for a zone name this runtime's ICU knows (Europe/Paris, UTC…). */
export function isValidTimezone(zone: string): boolean {
  let ok = known.get(zone);
  if (ok === undefined) {
    try {
      new Intl.DateTimeFormat('en', { timeZone: zone });
      ok = zone.length <= 64;
    } catch {
      ok = false;
    }
    if (known.size < 10_000) known.set(zone, ok);
  }
  return ok;
}
