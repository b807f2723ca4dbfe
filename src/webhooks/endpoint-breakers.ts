/** Failures in a row (no answer, or a retryable one) after which an endpoint is paused. */
export const FAILURES_TO_PAUSE = 5;
/** The first pause; each failed probe doubles it, up to MAX_PAUSE_MS. */
export const FIRST_PAUSE_MS = 30_000;
export const MAX_PAUSE_MS = 10 * 60_000;

interface Endpoint {
  failures: number;
  /** While paused: when the next probe may go. */
  pausedUntil: number | null;
  pauseMs: number;
  /** A probe is in flight: the endpoint's other deliveries are put off until it has had time to end. */
  probing: boolean;
}

/**
 * What a delivery said about its endpoint: it answered (`ok`, even with a final error such as 400),
 * it failed in a way worth retrying (`failed`: no answer, 5xx, 408, 429), or nothing (`unknown`: the
 * request failed on our side, when the delivery thread died).
 */
export type EndpointOutcome = 'ok' | 'failed' | 'unknown';

/**
 * Pauses webhook endpoints that keep failing. Why: a hung endpoint holds an exchange for the whole
 * timeout (10 s by default), so a tenant whose endpoint hangs during a campaign would take every
 * exchange, and every other tenant's webhooks would wait behind its backlog. After
 * FAILURES_TO_PAUSE failures in a row (timeouts, refused or reset connections, 5xx, 408, 429), the
 * endpoint gets no requests for FIRST_PAUSE_MS; its events are put off to then, not attempted (their
 * retry window is unchanged). Then one delivery goes as a probe: an answer that is not a retryable
 * failure ends the pause, a failure starts the next, twice as long (up to MAX_PAUSE_MS). The
 * endpoint's other deliveries meanwhile are put off by the time a probe may take, so that they go
 * soon after a probe that succeeds. Kept in memory: a restart starts every endpoint afresh.
 */
export class EndpointBreakers {
  private readonly endpoints = new Map<string, Endpoint>();

  /** `probeMs`: the longest a probe may take (the delivery timeout). */
  constructor(private readonly probeMs: number) {}

  /**
   * Whether a delivery to `key` may go now: null if so (and, when the pause has just ended, it is
   * the probe), otherwise the time to put it off to.
   */
  deferUntil(key: string, now: number): number | null {
    const endpoint = this.endpoints.get(key);
    if (!endpoint || endpoint.pausedUntil === null) return null;
    if (endpoint.probing) return now + this.probeMs;
    if (now < endpoint.pausedUntil) return endpoint.pausedUntil;
    endpoint.probing = true;
    return null;
  }

  /**
   * The outcome of a delivery to `key`. True when this pauses the endpoint (or a failed probe pauses
   * it again). An `unknown` outcome neither counts as a failure nor clears them; a probe that ends
   * so is sent again (the next delivery is the probe).
   */
  record(key: string, outcome: EndpointOutcome, now: number): boolean {
    if (outcome === 'ok') {
      this.endpoints.delete(key);
      return false;
    }
    let endpoint = this.endpoints.get(key);
    if (outcome === 'unknown') {
      if (endpoint) endpoint.probing = false;
      return false;
    }
    if (!endpoint) {
      endpoint = { failures: 0, pausedUntil: null, pauseMs: FIRST_PAUSE_MS, probing: false };
      this.endpoints.set(key, endpoint);
    }
    endpoint.failures++;
    if (endpoint.probing) {
      endpoint.probing = false;
      endpoint.pauseMs = Math.min(endpoint.pauseMs * 2, MAX_PAUSE_MS);
    } else if (endpoint.pausedUntil !== null || endpoint.failures < FAILURES_TO_PAUSE) {
      // Paused already (deliveries that were in flight), or not yet enough failures.
      return false;
    }
    endpoint.pausedUntil = now + endpoint.pauseMs;
    return true;
  }
}
