import type { Config } from '../config/schema.js';
import type { Metrics } from '../observability/metrics.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { Store } from '../store/store.js';
import { nextRetryDelayMs, shouldGiveUp } from './backoff.js';
import { DeliveryPool } from './delivery-pool.js';
import { EndpointBreakers, type EndpointOutcome } from './endpoint-breakers.js';
import type { DeliveryResult } from './http-delivery.js';
import { type AttemptRecord, type DueEvent, WebhookOutbox, type WebhookTaker } from './outbox.js';
import { SIGNATURE_HEADER, signPayload } from './signature.js';

/**
 * Delivers the webhook outbox: leases due events, POSTs each signed body, and records every attempt
 * with its outcome. Deliveries are pipelined: a slot freed by a fast endpoint is refilled at once,
 * and an endpoint that keeps failing is paused (EndpointBreakers), so a customer endpoint that hangs
 * until the timeout cannot hold back everyone else's events for long. Wakes on
 * `notify()` when new events are committed, and polls as a fallback (events from other processes,
 * retries coming due).
 */
export class WebhookSender implements WebhookTaker {
  private readonly outbox: WebhookOutbox;
  private readonly breakers: EndpointBreakers;
  private running = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private pendingWake = false;
  /** The table may hold due events this sender has not leased (set by notify, the poll, a full claim). */
  private tableMayHaveDue = true;
  private inFlight = new Set<Promise<void>>();
  /** Deliveries waiting for a free slot: leased from the table, or handed over by take(). */
  private waiting: DueEvent[][] = [];
  /** Waiting deliveries still open to more events, by tenant and URL (batching tenants only). */
  private open = new Map<string, DueEvent[]>();
  private waitingEvents = 0;
  private flushTimer: NodeJS.Timeout | null = null;
  private unrecorded: AttemptRecord[] = [];
  /** Events of deliveries the thread dropped at stop, before they started. */
  private notAttempted: DueEvent[] = [];
  /** When to look next for handovers whose lease ran out (a crashed sender's events). */
  private recoverAt = 0;
  private recording: Promise<void> = Promise.resolve();
  private readonly http: DeliveryPool;
  /**
   * Deliveries handed to the thread at once: HANDED_OVER_PER_EXCHANGE times the exchanges it runs,
   * so the next ones already wait there when an exchange ends. With only as many as it runs, each
   * slot also waited for a round trip through this thread's event loop, which the carrier path's
   * transactions hold for milliseconds: with one event per request, the carrier-path benchmark got
   * 2,447 msg/s that way, 3,077 with twice as many and 3,198 with four times (medians of 3 pairs,
   * docs/benchmarks.md).
   */
  private readonly slots: number;

  constructor(
    store: Store,
    private readonly clock: Clock,
    private readonly config: Config['webhooks'],
    private readonly log: Logger,
    private readonly metrics?: Metrics,
  ) {
    this.outbox = new WebhookOutbox(store);
    this.http = new DeliveryPool(config.concurrency);
    this.slots = config.concurrency * HANDED_OVER_PER_EXCHANGE;
    this.breakers = new EndpointBreakers(config.timeout_ms);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.tableMayHaveDue = true;
    this.loop = this.run();
  }

  /** Stops leasing new events, waits for deliveries in flight and records them. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    this.http.dropWaiting();
    await Promise.all(this.inFlight);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    await this.recording;
    await this.flushRecords();
    // Handed over or leased, never attempted: due again at once for whoever runs next.
    const left = [...this.waiting.flat(), ...this.notAttempted.splice(0)];
    this.waiting = [];
    this.open.clear();
    this.waitingEvents = 0;
    await this.releaseLeases(left);
    await this.http.close();
  }

  /** New events were committed. The sender waits 10 ms first, so one claim gathers a burst of them. */
  notify(): void {
    this.tableMayHaveDue = true;
    if (this.pendingWake) return;
    this.pendingWake = true;
    setTimeout(() => this.wake?.(), this.running ? 10 : 0);
  }

  /**
   * Lease for events created by this process (the carrier path's outcomes): while fewer than a few
   * claims' worth of events wait here, new ones are written leased to this sender and handed over
   * by take(), with no claim statement. Past that they are written due, and claimed in their turn.
   */
  lease(): number | null {
    if (!this.running || this.waitingEvents >= this.slots * MAX_CLAIM_PER_SLOT) return null;
    return this.clock.now() + this.leaseMs();
  }

  take(events: DueEvent[]): void {
    this.outbox.adopt(events);
    if (!this.running) {
      void this.releaseLeases(events);
      return;
    }
    this.enqueue(events);
    this.wake?.();
  }

  /** One synchronous pass, for tests and tools: deliver what is due now, record it, return the count. */
  async deliverDue(): Promise<number> {
    await this.outbox.recoverHandovers(this.clock.now());
    const events = await this.outbox.claimDue(
      this.clock.now(),
      this.claimSize(this.config.concurrency),
      this.leaseMs(),
    );
    const records = await Promise.all(groupDeliveries(events).map((d) => this.attempt(d)));
    await this.outbox.recordAttempts(records.flat());
    return events.length;
  }

  /** Claims enough events to fill `slots` deliveries when tenants batch (up to MAX_CLAIM_PER_SLOT each). */
  private claimSize(slots: number): number {
    return slots * MAX_CLAIM_PER_SLOT;
  }

  // The lease must outlast a delivery's wait in the thread (behind at most HANDED_OVER_PER_EXCHANGE - 1
  // rounds of exchanges, each ending by its timeout), its own exchange, and the time to record it.
  private leaseMs(): number {
    return this.config.timeout_ms * HANDED_OVER_PER_EXCHANGE + 5_000;
  }

  private async run(): Promise<void> {
    while (this.running) {
      this.pendingWake = false;
      await this.fill();
      if (!this.running) break;
      // A full claim means more may be due: go on as soon as a slot is free.
      if (this.tableMayHaveDue && this.inFlight.size < this.slots) continue;
      await this.sleep();
    }
  }

  /**
   * Leases due events from the table when it may hold some (and not too many wait here already),
   * then starts waiting deliveries, oldest first, while slots are free.
   */
  private async fill(): Promise<void> {
    await this.recoverHandovers();
    const free = this.slots - this.inFlight.size;
    if (this.tableMayHaveDue && this.waiting.length < Math.max(free, 1)) {
      this.tableMayHaveDue = false;
      try {
        const limit = this.claimSize(Math.max(free, 1));
        const events = await this.outbox.claimDue(this.clock.now(), limit, this.leaseMs());
        this.enqueue(events);
        if (events.length === limit) this.tableMayHaveDue = true;
      } catch (err) {
        this.log.error({ err }, 'webhook sender could not lease events');
      }
    }
    const deferred = new Map<number, DueEvent[]>();
    const now = this.clock.now();
    while (this.waiting.length > 0 && this.inFlight.size < this.slots) {
      const delivery = this.waiting.shift()!;
      this.waitingEvents -= delivery.length;
      const key = deliveryKey(delivery[0]!);
      if (this.open.get(key) === delivery) this.open.delete(key);
      const until = this.breakers.deferUntil(key, now);
      if (until === null) this.launch(delivery);
      else {
        const events = deferred.get(until) ?? [];
        for (const e of delivery) events.push(e);
        deferred.set(until, events);
      }
    }
    // A paused endpoint's events are due again when its pause ends: not attempted, not counted.
    for (const [until, events] of deferred) await this.releaseLeases(events, until);
  }

  /** Every poll interval: handovers whose lease ran out become pending events (see handovers.ts). */
  private async recoverHandovers(): Promise<void> {
    const now = this.clock.now();
    if (now < this.recoverAt) return;
    this.recoverAt = now + this.config.poll_interval_ms;
    try {
      if ((await this.outbox.recoverHandovers(now)) > 0) this.tableMayHaveDue = true;
    } catch (err) {
      this.log.error({ err }, 'webhook sender could not recover handed-over events');
    }
  }

  /** Events join the waiting deliveries: a batching tenant's go into its open batch while it has room. */
  private enqueue(events: DueEvent[]): void {
    this.waitingEvents += events.length;
    addToDeliveries(this.waiting, this.open, events);
  }

  /** The events are due again at `at` (now by default) for whoever runs then. */
  private async releaseLeases(events: DueEvent[], at = this.clock.now()): Promise<void> {
    if (events.length === 0) return;
    try {
      await this.outbox.release(events, at);
    } catch (err) {
      // The leases then run out on their own.
      this.log.warn({ err, events: events.length }, 'could not give back webhook leases');
    }
  }

  private launch(delivery: DueEvent[]): void {
    const running: Promise<void> = this.attempt(delivery)
      .then((records) => {
        this.unrecorded.push(...records);
        this.scheduleFlush();
      })
      .finally(() => {
        this.inFlight.delete(running);
        this.wake?.();
      });
    this.inFlight.add(running);
  }

  /**
   * Attempts are recorded every 20 ms, together: one transaction per delivery made the sender the
   * biggest source of commits in the carrier-path profile (2,200 record transactions per 100k messages).
   */
  private scheduleFlush(): void {
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      this.recording = this.recording.then(() => this.flushRecords());
    }, 20);
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
      const timer = setTimeout(() => {
        this.tableMayHaveDue = true;
        done();
      }, this.config.poll_interval_ms);
      this.wake = done;
    });
  }

  /** One HTTP request: a single event, or a batch of one tenant's events for one URL. */
  private async attempt(events: DueEvent[]): Promise<AttemptRecord[]> {
    const first = events[0]!;
    const attemptedAt = this.clock.now();
    // Stored payloads are JSON texts: a batch body is assembled without parsing them again.
    const batched = first.webhook_batch_size > 0;
    const body = batched
      ? `{"type":"batch","events":[${events.map((e) => e.payload).join(',')}]}`
      : first.payload;
    const signature = signPayload(first.webhook_secret, body, Math.floor(attemptedAt / 1000));
    const headers: Record<string, string> = { [SIGNATURE_HEADER]: signature };
    if (batched) headers['Relais-Batch-Size'] = String(events.length);
    else headers['Relais-Event-Id'] = first.id;
    const result = await this.http.deliver({
      url: first.url,
      body,
      headers,
      timeoutMs: this.config.timeout_ms,
      allowPrivateTargets: this.config.allow_private_targets,
    });
    if (result === null) {
      for (const e of events) this.notAttempted.push(e);
      return [];
    }
    if (this.breakers.record(deliveryKey(first), endpointOutcome(result), this.clock.now())) {
      this.metrics?.webhookEndpointPauses.inc();
      this.log.warn(
        {
          tenant_id: first.tenant_id,
          host: hostOf(first.url),
          status_code: result.statusCode,
          error: result.error,
        },
        'webhook endpoint keeps failing: no requests to it until its pause ends',
      );
    }
    return events.map((event) => {
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
      this.metrics?.webhookAttempts.inc({
        result: outcome.status === 'pending' ? 'retry' : outcome.status,
      });
      return {
        event,
        attemptedAt,
        durationMs: result.durationMs,
        statusCode: result.statusCode,
        error: result.error,
        outcome,
      };
    });
  }
}

/** Deliveries handed to the thread per exchange it may run at once (see `slots`). */
const HANDED_OVER_PER_EXCHANGE = 4;

/** Events claimed per free delivery slot: a batch fills up to this many (tenants' sizes are capped). */
const MAX_CLAIM_PER_SLOT = 20;

/**
 * Groups leased events into HTTP requests: events of tenants that opted in to batching go together
 * per (tenant, URL), up to the tenant's batch size, in event order; every other event alone.
 */
export function groupDeliveries(events: DueEvent[]): DueEvent[][] {
  const deliveries: DueEvent[][] = [];
  addToDeliveries(deliveries, new Map(), events);
  return deliveries;
}

/** groupDeliveries onto existing deliveries: `open` holds the batches that may still take events. */
function addToDeliveries(deliveries: DueEvent[][], open: Map<string, DueEvent[]>, events: DueEvent[]): void {
  for (const event of events) {
    if (event.webhook_batch_size <= 0) {
      deliveries.push([event]);
      continue;
    }
    const key = deliveryKey(event);
    let group = open.get(key);
    if (!group || group.length >= event.webhook_batch_size) {
      group = [];
      open.set(key, group);
      deliveries.push(group);
    }
    group.push(event);
  }
}

function hostOf(url: string): string | null {
  // Only the host is logged: a callback URL's path or query may carry the customer's token.
  return URL.canParse(url) ? new URL(url).host : null;
}

function deliveryKey(event: DueEvent): string {
  return `${event.tenant_id}\u0000${event.url}`;
}

/** What a delivery's result says about its endpoint (EndpointBreakers). */
function endpointOutcome(result: DeliveryResult): EndpointOutcome {
  if (result.local) return 'unknown';
  return !result.ok && result.retryable ? 'failed' : 'ok';
}
