import { sql } from 'kysely';
import type { Config } from '../config/schema.js';
import type { Clock } from '../shared/clock.js';
import type { Store } from '../store/store.js';

export const VELOCITY_WINDOW_MS = 60_000;
const iso = (ms: number) => new Date(ms).toISOString();

export interface VelocityAlarms {
  prefix_digits: number;
  threshold_per_minute: number;
  data: { prefix: string; count: number; window_start: string; window_end: string }[];
}

export interface VerifyStats {
  from: string | null;
  until: string | null;
  started: number;
  approved: number;
  failed: number;
  expired: number;
  pending: number;
  /** approved / started, or null when nothing was started. */
  conversion_rate: number | null;
}

/** What a tenant reads about its verifications: velocity alarms and conversion statistics. */
export class VerifyInsights {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly config: Config,
  ) {}

  /** Number prefixes of this tenant over the velocity threshold, this minute or the previous one. */
  async alarms(tenantId: string): Promise<VelocityAlarms> {
    const { prefix_digits, threshold_per_minute } = this.config.verify.velocity;
    const current = Math.floor(this.clock.now() / VELOCITY_WINDOW_MS) * VELOCITY_WINDOW_MS;
    const rows = await this.store.db
      .selectFrom('rate_limits')
      .select(['key', 'window_start', 'hits'])
      .where('scope', '=', `verify_prefix:${tenantId}`)
      .where('window_start', '>=', current - VELOCITY_WINDOW_MS)
      .where('hits', '>', threshold_per_minute)
      .orderBy('hits', 'desc')
      .orderBy('key')
      .execute();
    return {
      prefix_digits,
      threshold_per_minute,
      data: rows.map((r) => ({
        prefix: r.key,
        count: Number(r.hits),
        window_start: iso(r.window_start),
        window_end: iso(r.window_start + VELOCITY_WINDOW_MS),
      })),
    };
  }

  /**
   * Counts of the tenant's verifications created in [from, until), by status, and the conversion rate.
   * A plain aggregate on `verifications` (so only over what housekeeping has not purged yet); rollups
   * come with the retention milestone. Pending ones past their expiry count as expired.
   */
  async stats(tenantId: string, from?: number, until?: number): Promise<VerifyStats> {
    const now = this.clock.now();
    let query = this.store.db
      .selectFrom('verifications')
      .select([
        'status',
        (eb) => eb.fn.countAll<number>().as('n'),
        sql<number>`sum(case when expires_at <= ${now} then 1 else 0 end)`.as('past'),
      ])
      .where('tenant_id', '=', tenantId);
    if (from !== undefined) query = query.where('created_at', '>=', from);
    if (until !== undefined) query = query.where('created_at', '<', until);
    const rows = await query.groupBy('status').execute();
    const counts = { pending: 0, approved: 0, failed: 0, expired: 0 };
    for (const r of rows) {
      const n = Number(r.n);
      if (r.status === 'pending') {
        counts.expired += Number(r.past);
        counts.pending += n - Number(r.past);
      } else counts[r.status] += n;
    }
    const started = counts.pending + counts.approved + counts.failed + counts.expired;
    return {
      from: from === undefined ? null : iso(from),
      until: until === undefined ? null : iso(until),
      started,
      ...counts,
      conversion_rate: started === 0 ? null : Math.round((counts.approved / started) * 10_000) / 10_000,
    };
  }
}
