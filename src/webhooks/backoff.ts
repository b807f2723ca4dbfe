/** Delay before the first retry. */
export const RETRY_BASE_DELAY_MS = 5_000;
/** Upper bound of a single retry delay. */
export const RETRY_MAX_DELAY_MS = 60 * 60 * 1000;
/** Default retry window: retries continue until the event is this old. */
export const DEFAULT_RETRY_FOR_MS = 24 * 60 * 60 * 1000;

/**
 * Delay before retry number `attempt` (1 = first retry, after the initial delivery failed).
 *
 * Exponential back-off with "equal jitter": cap = min(1 h, 5 s × 2^(attempt−1)); the delay is
 * cap/2 + random × cap/2, i.e. uniformly within [cap/2, cap].
 *
 * Resulting schedule (cumulative = time since the first delivery attempt, ignoring request durations):
 *
 * | retry | delay           | cumulative (min – max)    |
 * |-------|-----------------|---------------------------|
 * | 1     | 2.5 s – 5 s     | 2.5 s – 5 s               |
 * | 2     | 5 s – 10 s      | 7.5 s – 15 s              |
 * | 3     | 10 s – 20 s     | 17.5 s – 35 s             |
 * | 4     | 20 s – 40 s     | 37.5 s – 1 min 15 s       |
 * | 5     | 40 s – 80 s     | 1 min 17.5 s – 2 min 35 s |
 * | 6     | 80 s – 160 s    | 2 min 37.5 s – 5 min 15 s |
 * | 7     | 160 s – 320 s   | 5 min 17.5 s – 10 min 35 s |
 * | 8     | 320 s – 640 s   | 10 min 37.5 s – 21 min 15 s |
 * | 9     | 640 s – 1280 s  | 21 min 17.5 s – 42 min 35 s |
 * | 10    | 1280 s – 2560 s | 42 min 37.5 s – 1 h 25 min |
 * | 11+   | 30 min – 60 min | + 30 – 60 min per retry   |
 *
 * The caller keeps scheduling retries while {@link shouldGiveUp} is false (24 h window by default), so
 * the last retry happens just after the event turns 24 h old: 33 retries if every delay were at its
 * maximum, 57 if every delay were at its minimum, about 41 with average jitter.
 */
export function nextRetryDelayMs(attempt: number, random: () => number = Math.random): number {
  const n = Number.isFinite(attempt) ? Math.max(1, Math.floor(attempt)) : 1;
  // 2^30 × 5 s is far above the cap; clamping the exponent avoids Infinity arithmetic.
  const cap = Math.min(RETRY_MAX_DELAY_MS, RETRY_BASE_DELAY_MS * 2 ** Math.min(n - 1, 30));
  const r = Math.min(1, Math.max(0, random()));
  const half = cap / 2;
  return Math.round(half + r * half);
}

/** True once the event is older than the retry window (`retryForMs`, 24 h by default at the caller). */
export function shouldGiveUp(createdAtMs: number, nowMs: number, retryForMs: number): boolean {
  return nowMs - createdAtMs > retryForMs;
}
