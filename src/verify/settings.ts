import { isSupportedCountry } from 'libphonenumber-js/max';
import type { Config } from '../config/schema.js';
import type { Clock } from '../shared/clock.js';
import { RelaisError } from '../shared/errors.js';
import type { Store } from '../store/store.js';
import type { Locale } from './templates.js';

export interface VerifySettings {
  /** ISO 3166 codes verifications may be sent to; null: any country. */
  allowed_countries: string[] | null;
  default_locale: Locale;
}

/**
 * Settings read within this long are reused: a verification start then needs no read of them (one
 * round trip less on a code's way to the phone). put() through this process clears them at once;
 * a change made by another node applies there within this delay.
 */
const REUSE_MS = 1000;

/** Per-tenant Verify settings (allowed destination countries, default locale); no row: the defaults. */
export class VerifySettingsStore {
  private readonly recent = new Map<string, { settings: VerifySettings; at: number }>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly config: Config,
  ) {}

  async get(tenantId: string): Promise<VerifySettings> {
    const recent = this.recent.get(tenantId);
    if (recent && performance.now() - recent.at < REUSE_MS) return recent.settings;
    const row = await this.store.db
      .selectFrom('verify_settings')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .executeTakeFirst();
    const settings: VerifySettings = {
      allowed_countries: row?.allowed_countries ? (JSON.parse(row.allowed_countries) as string[]) : null,
      default_locale: (row?.default_locale as Locale | null) ?? this.config.verify.default_locale,
    };
    if (this.recent.size >= 10_000) this.recent.clear();
    this.recent.set(tenantId, { settings, at: performance.now() });
    return settings;
  }

  /** Replaces the tenant's settings: an omitted `default_locale` goes back to the platform default. */
  async put(
    tenantId: string,
    input: { allowed_countries: string[] | null; default_locale?: Locale | undefined },
  ): Promise<VerifySettings> {
    let countries: string[] | null = null;
    if (input.allowed_countries !== null) {
      if (input.allowed_countries.length === 0 || input.allowed_countries.length > 250) {
        throw new RelaisError(
          'invalid_field',
          'allowed_countries lists 1 to 250 countries; null allows every country',
          'allowed_countries',
        );
      }
      countries = input.allowed_countries.map((c, i) => {
        const upper = c.toUpperCase();
        if (!isSupportedCountry(upper)) {
          throw new RelaisError(
            'invalid_field',
            `"${c}" is not an ISO 3166 country code`,
            `allowed_countries/${i}`,
          );
        }
        return upper;
      });
      countries = [...new Set(countries)].sort();
    }
    const values = {
      allowed_countries: countries === null ? null : JSON.stringify(countries),
      default_locale: input.default_locale ?? null,
      updated_at: this.clock.now(),
    };
    await this.store.write((trx) =>
      trx
        .insertInto('verify_settings')
        .values({ tenant_id: tenantId, ...values })
        .onConflict((oc) => oc.column('tenant_id').doUpdateSet(values))
        .execute(),
    );
    this.recent.delete(tenantId);
    return this.get(tenantId);
  }
}
