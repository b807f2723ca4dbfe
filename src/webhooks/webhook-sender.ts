import type { Config } from '../config/schema.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { Store } from '../store/store.js';
import { nextRetryDelayMs, shouldGiveUp } from './backoff.js';
import { deliverWebhook } from './http-delivery.js';
import { type AttemptRecord, type DueEvent, WebhookOutbox } from './outbox.js';
import { SIGNATURE_HEADER, signPayload } from './signature.js';

/**
 * Delivers the webhook outbox: leases due events, POSTs each signed body (bounded concurrency), and
 * records every attempt with its outcome. Wakes on `notify()` when new events are committed, and polls
 * as a fallback (events from other processes, retries coming due).
 */
export class WebhookSender {
  private readonly outbox: WebhookOutbox;
  private running = false;
  private wake: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  private pendingWake = false;

  constructor(
    store: Store,
    private readonly clock: Clock,
    private readonly config: Config['webhooks'],
    private readonly log: Logger,
  ) {
    this.outbox = new WebhookOutbox(store);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.notify();
    await this.loop;
  }

  notify(): void {
    this.pendingWake = true;
    this.wake?.();
  }

  /** One pass: deliver what is due now. Returns the number of events attempted. */
  async deliverDue(): Promise<number> {
    const now = this.clock.now();
    // The lease must outlast a whole batch of deliveries at the timeout, whatever the concurrency.
    const leaseMs = this.config.timeout_ms * 3 + 5_000;
    const events = await this.outbox.claimDue(now, this.config.concurrency * 4, leaseMs);
    if (events.length === 0) return 0;
    const records: AttemptRecord[] = [];
    let next = 0;
    const worker = async () => {
      while (next < events.length) {
        const event = events[next++]!;
        records.push(await this.attempt(event));
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.config.concurrency, events.length) }, worker));
    await this.outbox.recordAttempts(records);
    return events.length;
  }

  private async attempt(event: DueEvent): Promise<AttemptRecord> {
    const attemptedAt = this.clock.now();
    const signature = signPayload(event.webhook_secret, event.payload, Math.floor(attemptedAt / 1000));
    const result = await deliverWebhook({
      url: event.url,
      body: event.payload,
      headers: { [SIGNATURE_HEADER]: signature, 'Relais-Event-Id': event.id },
      timeoutMs: this.config.timeout_ms,
      allowPrivateTargets: this.config.allow_private_targets,
    });
    const attempt = event.attempts + 1;
    let outcome: AttemptRecord['outcome'];
    if (result.ok) {
      outcome = { status: 'delivered' };
    } else if (
      !result.retryable ||
      shouldGiveUp(event.created_at, attemptedAt, this.config.retry_for_hours * 3600_000)
    ) {
      outcome = { status: 'failed' };
      this.log.warn(
        {
          event_id: event.id,
          tenant_id: event.tenant_id,
          attempts: attempt,
          status_code: result.statusCode,
          error: result.error,
        },
        'webhook delivery failed for good',
      );
    } else {
      outcome = { status: 'pending', nextAttemptAt: attemptedAt + nextRetryDelayMs(attempt) };
    }
    return {
      eventId: event.id,
      attemptedAt,
      durationMs: result.durationMs,
      statusCode: result.statusCode,
      error: result.error,
      outcome,
    };
  }

  private async run(): Promise<void> {
    while (this.running) {
      this.pendingWake = false;
      let attempted = 0;
      try {
        attempted = await this.deliverDue();
      } catch (err) {
        this.log.error({ err }, 'webhook sender pass failed');
      }
      if (!this.running) break;
      // A full pass means more may be due: go again at once. Otherwise sleep until notified or polled.
      if (attempted > 0 || this.pendingWake) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.config.poll_interval_ms);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }
}
