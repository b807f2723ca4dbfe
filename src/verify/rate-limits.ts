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

/** One counter: hits of `key` in `scope` per fixed window of `windowMs`. */
export interface Counter {
  scope: string;
  key: string;
  windowMs: number;
  /** How long the row is kept after its window starts (default: the window itself). */
  retainMs?: number;
}

/** A counter with its limit; `what` ends the refusal's sentence ("to +33…", "for your account"). */
export interface LimitCheck {
  scope: string;
  key: string;
  limit: WindowLimit;
  what: string;
}

export interface Hits {
  hits: number;
  windowStart: number;
}

/**
 * Fixed-window counters in the database, so that every node of a cluster counts against the same
 * limit: one row per (scope, key, window start), all incremented by one multi-row upsert (one round
 * trip) in the caller's write transaction. When the caller refuses the request (throws), the
 * transaction rolls back and the refused request is not counted. Returns each count including this
 * hit, in the order given.
 */
export async function hitAll(trx: Trx, counters: readonly Counter[], now: number): Promise<Hits[]> {
  if (counters.length === 0) return [];
  const rows = counters.map((c) => {
    const windowStart = Math.floor(now / c.windowMs) * c.windowMs;
    return {
      scope: c.scope,
      key: c.key,
      window_start: windowStart,
      hits: 1,
      expires_at: windowStart + (c.retainMs ?? c.windowMs),
    };
  });
  const counted = await trx
    .insertInto('rate_limits')
    .values(rows)
    .onConflict((oc) =>
      oc
        .columns(['scope', 'key', 'window_start'])
        .doUpdateSet((eb) => ({ hits: eb('rate_limits.hits', '+', 1) })),
    )
    .returning(['scope', 'key', 'hits'])
    .execute();
  const byCounter = new Map(counted.map((r) => [`${r.scope}\u0000${r.key}`, Number(r.hits)]));
  return rows.map((r) => ({
    hits: byCounter.get(`${r.scope}\u0000${r.key}`) ?? 1,
    windowStart: r.window_start,
  }));
}

/**
 * Counts one hit on every enabled check (limit 0 is off) and on `alsoCount`, then throws
 * `429 rate_limited` (with the seconds until its window ends) for the first check past its limit.
 * Returns the hits of `alsoCount`.
 */
export async function enforceAll(
  trx: Trx,
  checks: readonly LimitCheck[],
  now: number,
  alsoCount: readonly Counter[] = [],
): Promise<Hits[]> {
  const enabled = checks.filter((c) => c.limit.limit > 0);
  const hits = await hitAll(
    trx,
    [
      ...enabled.map((c) => ({ scope: c.scope, key: c.key, windowMs: c.limit.window_seconds * 1000 })),
      ...alsoCount,
    ],
    now,
  );
  enabled.forEach((check, i) => {
    const { hits: n, windowStart } = hits[i]!;
    if (n <= check.limit.limit) return;
    const windowMs = check.limit.window_seconds * 1000;
    throw new RetryLaterError(
      'rate_limited',
      `too many verification SMS ${check.what}: at most ${check.limit.limit} per ${check.limit.window_seconds} s`,
      Math.max(1, Math.ceil((windowStart + windowMs - now) / 1000)),
    );
  });
  return hits.slice(enabled.length);
}

/** Counter rows whose window has ended. */
export async function purgeRateLimits(db: Db | Trx, now: number): Promise<number> {
  const result = await db.deleteFrom('rate_limits').where('expires_at', '<=', now).executeTakeFirst();
  return Number(result.numDeletedRows);
}
