import { type ErrorCode, RelaisError } from '../shared/errors.js';
import type { Db, Trx } from '../store/store.js';

/** A refusal the caller may retry later: the HTTP edge sends `Retry-After` with it. */
export class RetryLaterError extends RelaisError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(code, message);
  }
}

export interface WindowLimit {
  limit: number;
  window_seconds: number;
}

/**
 * Fixed-window counters in the database, so that every node of a cluster counts against the same
 * limit: one row per (scope, key, window start), incremented by an atomic upsert in the caller's write
 * transaction. When the caller refuses the request (throws), the transaction rolls back and the
 * refused request is not counted. Returns the count including this hit.
 */
export async function hit(
  trx: Trx,
  scope: string,
  key: string,
  windowMs: number,
  now: number,
  /** How long the row is kept after its window starts (default: the window itself). */
  retainMs = windowMs,
): Promise<{ hits: number; windowStart: number }> {
  const windowStart = Math.floor(now / windowMs) * windowMs;
  const row = await trx
    .insertInto('rate_limits')
    .values({ scope, key, window_start: windowStart, hits: 1, expires_at: windowStart + retainMs })
    .onConflict((oc) =>
      oc
        .columns(['scope', 'key', 'window_start'])
        .doUpdateSet((eb) => ({ hits: eb('rate_limits.hits', '+', 1) })),
    )
    .returning('hits')
    .executeTakeFirstOrThrow();
  return { hits: Number(row.hits), windowStart };
}

/** Counts one hit and throws `429 rate_limited` (with the seconds until the window ends) past the limit. */
export async function enforce(
  trx: Trx,
  scope: string,
  key: string,
  limit: WindowLimit,
  now: number,
  what: string,
): Promise<void> {
  if (limit.limit === 0) return;
  const windowMs = limit.window_seconds * 1000;
  const { hits, windowStart } = await hit(trx, scope, key, windowMs, now);
  if (hits > limit.limit) {
    throw new RetryLaterError(
      'rate_limited',
      `too many verification SMS ${what}: at most ${limit.limit} per ${limit.window_seconds} s`,
      Math.max(1, Math.ceil((windowStart + windowMs - now) / 1000)),
    );
  }
}

/** Counter rows whose window has ended. */
export async function purgeRateLimits(db: Db | Trx, now: number): Promise<number> {
  const result = await db.deleteFrom('rate_limits').where('expires_at', '<=', now).executeTakeFirst();
  return Number(result.numDeletedRows);
}
