import { sql } from 'kysely';
import { groupBy } from '../shared/group-by.js';
import { inList, insertRows, updateRows } from '../store/insert-rows.js';
import type { WebhookEventTable } from '../store/schema.js';
import type { Store, Trx } from '../store/store.js';
import { type DeliveredRequest, deliveryRows, writeDeliveries } from './deliveries.js';
import { deleteHandovers, type HandedOverEvent, liveHandovers, recoverHandovers } from './handovers.js';

export interface DueEvent {
  id: string;
  tenant_id: string;
  url: string;
  payload: string;
  attempts: number;
  created_at: number;
  webhook_secret: string;
  webhook_batch_size: number;
  /**
   * A handed-over message.status event, with no webhook_events row yet (src/webhooks/handovers.ts):
   * its handover row, and the event as that row lists it.
   */
  unwritten?: { handoverId: string; listed: HandedOverEvent };
}

/**
 * The in-process sender, taking events from the transaction that creates them instead of claiming
 * them back from the table (see WebhookHandover in messages/status.ts).
 */
export interface WebhookTaker {
  /** Lease end to write the new events with, or null when the sender has no room: they are due now. */
  lease(): number | null;
  /** The committed events, leased to the sender until the lease given. */
  take(events: DueEvent[]): void;
}

export interface AttemptRecord {
  event: DueEvent;
  attemptedAt: number;
  durationMs: number;
  statusCode: number | null;
  error: string | null;
  /** Final outcome, or `pending` with the time of the next try. */
  outcome: { status: 'delivered' } | { status: 'failed' } | { status: 'pending'; nextAttemptAt: number };
}

/** Storage side of the webhook outbox: lease due events, record attempts. */
export class WebhookOutbox {
  /** Handover rows of this process's sender, with the number of their events still without a row. */
  private readonly unwritten = new Map<string, number>();

  constructor(private readonly store: Store) {}

  /** Handed-over events reach the sender: their handover rows go once they are all written. */
  adopt(events: DueEvent[]): void {
    for (const [id, n] of countByHandover(events)) this.unwritten.set(id, (this.unwritten.get(id) ?? 0) + n);
  }

  /** Writes the events of handovers whose lease ran out as pending rows, due now (a crash). */
  async recoverHandovers(now: number): Promise<number> {
    const ids = await recoverHandovers(this.store, now);
    for (const id of ids) this.unwritten.delete(id);
    return ids.length;
  }

  /**
   * Leases up to `limit` due events by pushing their next_attempt_at past the delivery timeout: if
   * this process dies mid-delivery the event simply comes due again (at-least-once delivery).
   */
  async claimDue(now: number, limit: number, leaseMs: number): Promise<DueEvent[]> {
    const claimed = await this.store.write((trx) =>
      sql<{ id: string }>`
        update webhook_events set next_attempt_at = ${now + leaseMs}
        where ${this.store.anyOf(
          sql.ref('id'),
          sql`
            select id from webhook_events
            where status = 'pending' and next_attempt_at <= ${now}
            order by next_attempt_at
            limit ${limit}
            ${this.store.skipLocked}`,
        )}
        returning id`.execute(trx),
    );
    const ids = claimed.rows.map((r) => r.id);
    if (ids.length === 0) return [];
    return this.store.db
      .selectFrom('webhook_events')
      .innerJoin('tenants', 'tenants.id', 'webhook_events.tenant_id')
      .select([
        'webhook_events.id',
        'webhook_events.tenant_id',
        'webhook_events.url',
        'webhook_events.payload',
        'webhook_events.attempts',
        'webhook_events.created_at',
        'tenants.webhook_secret',
        'tenants.webhook_batch_size',
      ])
      .where(inList(this.store.db, 'webhook_events.id', ids))
      .orderBy('webhook_events.id')
      .execute();
  }

  /**
   * Gives up leases (events handed over to a sender that has stopped, or to a paused endpoint): they
   * are due again at `at`. Handed-over events get their row then, pending.
   */
  async release(events: DueEvent[], at: number): Promise<void> {
    const unwritten = events.filter((e) => e.unwritten !== undefined);
    if (unwritten.length > 0) {
      const rows = unwritten.map((e) => eventRow(e, pendingAt(at), 0));
      await this.writeUnwritten(unwritten, async (trx) => {
        for (let i = 0; i < rows.length; i += 500)
          await insertRows(trx, 'webhook_events', rows.slice(i, i + 500), 'on conflict ("id") do nothing');
      });
    }
    const ids = events.filter((e) => e.unwritten === undefined).map((e) => e.id);
    for (let i = 0; i < ids.length; i += 500) {
      await this.store.write((trx) =>
        trx
          .updateTable('webhook_events')
          .set({ next_attempt_at: at })
          .where(inList(trx, 'id', ids.slice(i, i + 500)))
          .where('status', '=', 'pending')
          .execute(),
      );
    }
  }

  /**
   * Runs `write`, which writes the rows of these handed-over events, in a transaction that also
   * deletes the handover rows it completes; counts them written once it has committed.
   */
  private async writeUnwritten(events: DueEvent[], write: (trx: Trx) => Promise<void>): Promise<void> {
    const written = countByHandover(events);
    const complete = [...written].filter(([id, n]) => (this.unwritten.get(id) ?? 0) <= n).map(([id]) => id);
    await this.store.write(async (trx) => {
      await write(trx);
      await deleteHandovers(trx, complete);
    });
    for (const [id, n] of written) {
      const left = (this.unwritten.get(id) ?? 0) - n;
      if (left > 0) this.unwritten.set(id, left);
      else this.unwritten.delete(id);
    }
  }

  /**
   * Records a batch of attempts and their outcomes in one transaction. A failed attempt gets a row in
   * webhook_attempts; the one that delivers is written on the event (delivered_status_code,
   * delivered_duration_ms), with no row of its own. A handed-over event that its first attempt
   * delivered goes into the delivery log (src/webhooks/deliveries.ts); any other gets its row here,
   * as its first attempt leaves it (src/webhooks/handovers.ts). So does one whose handover was
   * recovered meanwhile (its lease ran out): its row is there already, pending.
   *
   * The events of one batched request share their attempt's time, answer and outcome: each such
   * group is one UPDATE by id (measured apart, 3.5 µs an event against 5.4 through updateRows). Events
   * each with their own outcome (one event per request) go through updateRows, one statement per 500
   * events, where an UPDATE per outcome would be one per event.
   */
  async recordAttempts(records: AttemptRecord[]): Promise<void> {
    if (records.length === 0) return;
    const failed = records.filter((r) => r.outcome.status !== 'delivered');
    const first = records.filter((r) => r.event.unwritten !== undefined);
    const { shared, single } = groupByOutcome(records.filter((r) => r.event.unwritten === undefined));
    await this.writeUnwritten(
      first.map((r) => r.event),
      async (trx) => {
        const live = await liveHandovers(
          trx,
          [...new Set(first.map((r) => r.event.unwritten!.handoverId))],
          this.store.dialect === 'postgres',
        );
        const logged = first.filter(
          (r) => r.outcome.status === 'delivered' && live.has(r.event.unwritten!.handoverId),
        );
        await writeDeliveries(trx, deliveryRows(byRequest(logged)));
        // The other handed-over events: their row, written once, as their first attempt leaves them.
        const inLog = new Set(logged);
        const rowed = logged.length === 0 ? first : first.filter((r) => !inLog.has(r));
        for (let i = 0; i < rowed.length; i += 500) {
          const rows = rowed.slice(i, i + 500).map((r) => eventRow(r.event, eventAfter(r), 1));
          await insertRows(trx, 'webhook_events', rows, FIRST_ATTEMPT_ON_CONFLICT);
        }
        for (let i = 0; i < failed.length; i += 500) {
          await insertRows(
            trx,
            'webhook_attempts',
            failed.slice(i, i + 500).map((r) => ({
              event_id: r.event.id,
              attempted_at: r.attemptedAt,
              duration_ms: Math.round(r.durationMs),
              status_code: r.statusCode,
              error: r.error,
            })),
          );
        }
        for (const { after, ids } of shared) {
          for (let i = 0; i < ids.length; i += 500) {
            await trx
              .updateTable('webhook_events')
              .set((eb) => ({ ...after, attempts: eb('attempts', '+', 1) }))
              .where(inList(trx, 'id', ids.slice(i, i + 500)))
              .execute();
          }
        }
        for (let i = 0; i < single.length; i += 500) {
          await updateRows(trx, 'webhook_events', 'id', single.slice(i, i + 500), ATTEMPTED);
        }
      },
    );
  }
}

/** Outcomes shared by this many events or more are written by one UPDATE by id. */
const SHARED_OUTCOME = 8;

type EventAfter = ReturnType<typeof eventAfter>;

/** The events of the records, grouped by what the attempt sets on them (see recordAttempts). */
function groupByOutcome(records: AttemptRecord[]): {
  shared: { after: Omit<EventAfter, 'id'>; ids: string[] }[];
  single: EventAfter[];
} {
  // No rest or spread copies here, and the only free text last: V8's object copies and
  // JSON.stringify of each outcome were 3% of the main thread (profiled).
  const groups = groupBy(
    records.map(eventAfter),
    (e) =>
      `${e.status}|${e.next_attempt_at}|${e.delivered_at}|${e.delivered_status_code}|${e.delivered_duration_ms}|${e.last_error}`,
  );
  const shared: { after: Omit<EventAfter, 'id'>; ids: string[] }[] = [];
  const single: EventAfter[] = [];
  for (const group of groups.values()) {
    if (group.length < SHARED_OUTCOME) {
      for (const e of group) single.push(e);
      continue;
    }
    const e = group[0]!;
    const after = {
      status: e.status,
      next_attempt_at: e.next_attempt_at,
      last_error: e.last_error,
      delivered_at: e.delivered_at,
      delivered_status_code: e.delivered_status_code,
      delivered_duration_ms: e.delivered_duration_ms,
    };
    shared.push({ after, ids: group.map((g) => g.id) });
  }
  return { shared, single };
}

/** The columns of an event that an attempt sets (besides counting it). */
function eventAfter(r: AttemptRecord) {
  const delivered = r.outcome.status === 'delivered';
  return {
    id: r.event.id,
    status: r.outcome.status,
    next_attempt_at: r.outcome.status === 'pending' ? r.outcome.nextAttemptAt : r.attemptedAt,
    last_error: r.error ?? (r.statusCode !== null && !delivered ? `HTTP ${r.statusCode}` : null),
    delivered_at: delivered ? r.attemptedAt : null,
    delivered_status_code: delivered ? r.statusCode : null,
    delivered_duration_ms: delivered ? Math.round(r.durationMs) : null,
  };
}

/** The SET list of recordAttempts (`v` is the row eventAfter made). */
const ATTEMPTED = `"attempts" = "attempts" + 1, "status" = "v"."status", "next_attempt_at" = "v"."next_attempt_at",
  "last_error" = "v"."last_error", "delivered_at" = "v"."delivered_at",
  "delivered_status_code" = "v"."delivered_status_code", "delivered_duration_ms" = "v"."delivered_duration_ms"`;

/** Delivered handed-over events grouped by the request that delivered them (one tenant and URL each). */
function byRequest(records: AttemptRecord[]): DeliveredRequest[] {
  // The records of one request come one after the other, with the same attempt fields.
  const requests = groupBy(
    records,
    (r) => `${r.attemptedAt}|${r.durationMs}|${r.statusCode}|${r.event.tenant_id}|${r.event.url}`,
    (a, b) =>
      a.attemptedAt === b.attemptedAt &&
      a.durationMs === b.durationMs &&
      a.statusCode === b.statusCode &&
      a.event.tenant_id === b.event.tenant_id &&
      a.event.url === b.event.url,
  );
  return [...requests.values()].map((group) => {
    const { attemptedAt, durationMs, statusCode, event } = group[0]!;
    return {
      tenantId: event.tenant_id,
      url: event.url,
      attemptedAt,
      statusCode: statusCode ?? 0,
      durationMs,
      events: group.map((r) => {
        const [id, messageId, status, errorCode, errorReason] = r.event.unwritten!.listed;
        return [id, messageId, status, errorCode, errorReason, r.event.created_at];
      }),
    };
  });
}

/** How many of the events each handover lists (events with a row already are left out). */
function countByHandover(events: DueEvent[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of events)
    if (e.unwritten) counts.set(e.unwritten.handoverId, (counts.get(e.unwritten.handoverId) ?? 0) + 1);
  return counts;
}

/** A pending event's columns, due at `at`, as eventAfter gives them. */
function pendingAt(at: number): Omit<EventAfter, 'id'> {
  return {
    status: 'pending',
    next_attempt_at: at,
    last_error: null,
    delivered_at: null,
    delivered_status_code: null,
    delivered_duration_ms: null,
  };
}

/** The webhook_events row of a handed-over event, in the state `after`, after `attempts` attempts. */
function eventRow(e: DueEvent, after: Omit<EventAfter, 'id'>, attempts: number): WebhookEventTable {
  return {
    id: e.id,
    tenant_id: e.tenant_id,
    message_id: e.unwritten!.listed[1],
    type: 'message.status',
    url: e.url,
    payload: e.payload,
    status: after.status,
    attempts,
    next_attempt_at: after.next_attempt_at,
    last_error: after.last_error,
    created_at: e.created_at,
    delivered_at: after.delivered_at,
    delivered_status_code: after.delivered_status_code,
    delivered_duration_ms: after.delivered_duration_ms,
  };
}

/**
 * A handed-over event whose handover was recovered meanwhile (its lease ran out) has its row already,
 * pending: the attempt is recorded on it, as on any row. One another sender delivered is left alone.
 */
const FIRST_ATTEMPT_ON_CONFLICT = `on conflict ("id") do update set "attempts" = "webhook_events"."attempts" + 1,
  "status" = excluded."status", "next_attempt_at" = excluded."next_attempt_at",
  "last_error" = excluded."last_error", "delivered_at" = excluded."delivered_at",
  "delivered_status_code" = excluded."delivered_status_code",
  "delivered_duration_ms" = excluded."delivered_duration_ms"
  where "webhook_events"."status" = 'pending'`;
