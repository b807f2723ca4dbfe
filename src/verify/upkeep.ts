import type { Config } from '../config/schema.js';
import type { Clock } from '../shared/clock.js';
import type { Store } from '../store/store.js';
import { writeVerificationEvents } from './events.js';
import { purgeRateLimits } from './rate-limits.js';

export interface VerifyHousekeeping {
  expired: number;
  purged: number;
  rateLimitsPurged: number;
  sealedWiped: number;
}

/** Verify's share of housekeeping: expiry with events, purge, rate-limit counters, sealed texts. */
export class VerifyUpkeep {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly config: Config,
    /** Told when webhook events were committed. */
    private readonly notify: () => void,
  ) {}

  /** Pending verifications past their expiry become `expired`, with their webhook events. */
  async expireDue(limit = 500): Promise<number> {
    const now = this.clock.now();
    const { expired, events } = await this.store.write(async (trx) => {
      const due = await trx
        .selectFrom('verifications')
        .select('id')
        .where('status', '=', 'pending')
        .where('expires_at', '<=', now)
        .orderBy('expires_at')
        .limit(limit)
        .execute();
      if (due.length === 0) return { expired: 0, events: 0 };
      const rows = await trx
        .updateTable('verifications')
        .set({ status: 'expired', status_at: now, updated_at: now })
        .where(
          'id',
          'in',
          due.map((d) => d.id),
        )
        .where('status', '=', 'pending')
        .returning(['id', 'tenant_id', 'to_number', 'country', 'attempts', 'resends', 'status'])
        .execute();
      return { expired: rows.length, events: await writeVerificationEvents(trx, rows, now) };
    });
    if (events > 0) this.notify();
    return expired;
  }

  /**
   * Upkeep, run by Housekeeping: expire what is due; delete verifications whose expiry is older than
   * `verify.purge_after_hours` (whatever their status: nothing can happen to them any more); delete
   * rate-limit counters whose window ended; wipe the sealed texts of messages that left the queue
   * (sent or final: they will not be sent again, so nothing needs to open them).
   */
  async housekeep(): Promise<VerifyHousekeeping> {
    let expired = 0;
    for (let n = await this.expireDue(); n > 0; n = await this.expireDue()) expired += n;
    const now = this.clock.now();
    const cutoff = now - this.config.verify.purge_after_hours * 3600_000;
    return this.store.write(async (trx) => {
      const purged = await trx
        .deleteFrom('verifications')
        .where('expires_at', '<', cutoff)
        .executeTakeFirst();
      const rateLimitsPurged = await purgeRateLimits(trx, now);
      const wiped = await trx
        .updateTable('messages')
        .set({ sealed_body: null })
        .where('sealed_body', 'is not', null)
        .where((eb) =>
          eb.not(
            eb.exists(
              eb
                .selectFrom('queue')
                .select('queue.message_id')
                .whereRef('queue.message_id', '=', 'messages.id'),
            ),
          ),
        )
        .executeTakeFirst();
      return {
        expired,
        purged: Number(purged.numDeletedRows),
        rateLimitsPurged,
        sealedWiped: Number(wiped.numUpdatedRows),
      };
    });
  }
}
