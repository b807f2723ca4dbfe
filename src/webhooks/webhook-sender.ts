import type { Config } from '../config/schema.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { Store } from '../store/store.js';
import { nextRetryDelayMs, shouldGiveUp } from './backoff.js';
import { deliverWebhook } from './http-delivery.js';
import { type AttemptRecord, type DueEvent, WebhookOutbox } from './outbox.js';
import { SIGNATURE_HEADER, signPayload } from './signature.js';

/**
 * Delivers the webhook outbox: leases due events, POSTs each signed body, and records every attempt
 * with its outcome. Deliveries are pipelined: a slot freed by a fast endpoint is refilled at once, so
 * one slow customer endpoint (up to the timeout) cannot hold back everyone else's events. Wakes on
 * `notify()` when new events are committed, and polls as a fallback (events from other processes,
 * retries coming due).
 */
export class WebhookSender {
  private readonly outbox: WebhookOutbox;
  private running = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private pendingWake = false;
  private inFlight = new Set<Promise<void>>();
  private unrecorded: AttemptRecord[] = [];
  private recording: Promise<void> = Promise.resolve();

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

  /** Stops leasing new events, waits for deliveries in flight and records them. */
  async stop(): Promise<void> {
    this.running = false;
    this.notify();
    await this.loop;
    await Promise.all(this.inFlight);
    await this.flushRecords();
  }

  notify(): void {
    this.pendingWake = true;
    this.wake?.();
  }

  /** One synchronous pass, for tests and tools: deliver what is due now, record it, return the count. */
  async deliverDue(): Promise<number> {
    const events = await this.outbox.claimDue(this.clock.now(), this.config.concurrency, this.leaseMs());
    const records = await Promise.all(events.map((e) => this.attempt(e)));
    await this.outbox.recordAttempts(records);
    return events.length;
  }

  // The lease must outlast one delivery at its timeout plus the time to record it.
  private leaseMs(): number {
    return this.config.timeout_ms * 2 + 5_000;
  }

  private async run(): Promise<void> {
    while (this.running) {
      this.pendingWake = false;
      const free = this.config.concurrency - this.inFlight.size;
      const claimed = free > 0 ? await this.fill(free) : 0;
      if (!this.running) break;
      // Every free slot taken means more may be due: go on as soon as a slot is free.
      const mayHaveMore = free > 0 && claimed === free;
      if ((mayHaveMore || this.pendingWake) && this.inFlight.size < this.config.concurrency) continue;
      await this.sleep();
    }
  }

  private async fill(free: number): Promise<number> {
    try {
      const events = await this.outbox.claimDue(this.clock.now(), free, this.leaseMs());
      for (const event of events) this.launch(event);
      return events.length;
    } catch (err) {
      this.log.error({ err }, 'webhook sender could not lease events');
      return 0;
    }
  }

  private launch(event: DueEvent): void {
    const delivery: Promise<void> = this.attempt(event)
      .then((record) => {
        this.unrecorded.push(record);
        this.recording = this.recording.then(() => this.flushRecords());
      })
      .finally(() => {
        this.inFlight.delete(delivery);
        this.wake?.();
      });
    this.inFlight.add(delivery);
  }

  /** Attempts finished since the last flush are recorded together, in one transaction. */
  private async flushRecords(): Promise<void> {
    if (this.unrecorded.length === 0) return;
    const batch = this.unrecorded;
    this.unrecorded = [];
    try {
      await this.outbox.recordAttempts(batch);
    } catch (err) {
      // Not recorded: the leases run out and the events are attempted again (at-least-once).
      this.log.error({ err, events: batch.length }, 'could not record webhook attempts');
    }
  }

  /** Until notified, a delivery frees its slot, or the poll interval passes. */
  private sleep(): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, this.config.poll_interval_ms);
      this.wake = done;
    });
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
}
