import { sql } from 'kysely';
import { type StatusEventMessage, statusEvent } from '../messages/status.js';
import { groupBy } from '../shared/group-by.js';
import { inList, insertRows } from '../store/insert-rows.js';
import type { MessageStatus, WebhookEventTable } from '../store/schema.js';
import type { Store, Trx } from '../store/store.js';
import { findLogged } from './deliveries.js';

/**
 * Handed-over webhook events: the carrier path's message.status events that go from their
 * transaction straight to the in-process sender (WebhookHandover in messages/status.ts) are not
 * written to webhook_events then. Their row is written once, after their first attempt, as that
 * attempt leaves it (WebhookOutbox.recordAttempts): an INSERT, where a row written pending and then
 * updated cost an INSERT, an UPDATE and both their index entries (on PostgreSQL the update could
 * never be heap-only). End to end on PostgreSQL: +15.4%; SQLite: no change within the noise
 * (docs/benchmarks.md, "webhook events written once, after their first attempt").
 *
 * What makes them durable until then is one webhook_handovers row per transaction, listing its events
 * in a few bytes each, leased to the sender. It is deleted with the last of its events' rows. After a
 * crash its lease runs out, and recoverHandovers writes its events that have no row yet as pending
 * webhook_events, due at once, their payload made again from the message: the same text, since the
 * columns it shows do not change after a status change but the status and error it names here.
 */

/** One event as its handover row lists it: [event id, message id, status, error code, error reason]. */
export type HandedOverEvent = [
  id: string,
  messageId: string,
  status: MessageStatus,
  errorCode: string | null,
  errorReason: string | null,
];

/** Writes the handover row of the events a transaction hands over. */
export async function writeHandover(
  trx: Trx,
  id: string,
  leasedUntil: number,
  createdAt: number,
  events: HandedOverEvent[],
): Promise<void> {
  await trx
    .insertInto('webhook_handovers')
    .values({ id, leased_until: leasedUntil, created_at: createdAt, events: JSON.stringify(events) })
    .execute();
}

/**
 * The handover rows still there among `ids`, locked on PostgreSQL (`for update`): a recovery
 * running now (it skips locked rows) cannot turn their events into rows meanwhile.
 */
export async function liveHandovers(trx: Trx, ids: string[], postgres: boolean): Promise<Set<string>> {
  const live = new Set<string>();
  for (let i = 0; i < ids.length; i += CHUNK) {
    const rows = await trx
      .selectFrom('webhook_handovers')
      .select('id')
      .where(inList(trx, 'id', ids.slice(i, i + CHUNK)))
      .$if(postgres, (q) => q.forUpdate())
      .execute();
    for (const r of rows) live.add(r.id);
  }
  return live;
}

/** Deletes the handover rows whose events all have their webhook_events row now. */
export async function deleteHandovers(trx: Trx, ids: string[]): Promise<void> {
  for (let i = 0; i < ids.length; i += CHUNK)
    await trx
      .deleteFrom('webhook_handovers')
      .where(inList(trx, 'id', ids.slice(i, i + CHUNK)))
      .execute();
}

/**
 * Turns the handovers whose lease has run out (their sender died, or never recorded them) into
 * pending webhook_events, due at `now`, and deletes them. Events that already have their row (the
 * sender wrote some before it stopped) keep it. Returns the ids of the handovers recovered.
 */
export async function recoverHandovers(store: Store, now: number, limit = 20): Promise<string[]> {
  // A read first: most polls find none, and need not wait for the writer.
  const any = await store.db
    .selectFrom('webhook_handovers')
    .select('id')
    .where('leased_until', '<=', now)
    .limit(1)
    .executeTakeFirst();
  if (!any) return [];
  return store.write(async (trx) => {
    const expired = await sql<{ id: string; created_at: number; events: string }>`
      select id, created_at, events from webhook_handovers
      where leased_until <= ${now}
      order by leased_until
      limit ${limit}
      ${store.skipLocked}`.execute(trx);
    if (expired.rows.length === 0) return [];
    const listed = expired.rows.flatMap((h) =>
      (JSON.parse(h.events) as HandedOverEvent[]).map((event) => ({
        event,
        createdAt: Number(h.created_at),
      })),
    );
    const messages = await messagesOf(
      trx,
      listed.map((l) => l.event[1]),
    );
    const logged = await loggedAmong(trx, listed, messages);
    const rows: WebhookEventTable[] = [];
    for (const { event, createdAt } of listed) {
      const [id, messageId, status, errorCode, errorReason] = event;
      const m = messages.get(messageId);
      // Gone (a tenant deleted with its data) or no URL left to call: nothing to deliver.
      if (!m?.url) continue;
      // Delivered before the crash (src/webhooks/deliveries.ts): not sent again.
      if (logged.has(id)) continue;
      const changed = { ...m, id: messageId, status, error_code: errorCode, error_reason: errorReason };
      const row = statusEvent(id, changed, m.url, createdAt, new Date(createdAt).toISOString());
      rows.push({ ...row, next_attempt_at: now });
    }
    for (let i = 0; i < rows.length; i += CHUNK)
      await insertRows(trx, 'webhook_events', rows.slice(i, i + CHUNK), 'on conflict ("id") do nothing');
    const ids = expired.rows.map((h) => h.id);
    await deleteHandovers(trx, ids);
    return ids;
  });
}

/** The ids among the listed events that the delivery log holds already. */
async function loggedAmong(
  trx: Trx,
  listed: { event: HandedOverEvent }[],
  messages: Map<string, { tenant_id: string }>,
): Promise<Set<string>> {
  const byTenant = groupBy(
    listed.filter((l) => messages.has(l.event[1])),
    (l) => messages.get(l.event[1])!.tenant_id,
  );
  const out = new Set<string>();
  for (const [tenantId, events] of byTenant) {
    const found = await findLogged(
      trx,
      tenantId,
      events.map((l) => l.event[0]),
    );
    for (const id of found.keys()) out.add(id);
  }
  return out;
}

type PayloadColumns = Pick<StatusEventMessage, 'tenant_id' | 'to_number' | 'client_ref' | 'segments'>;

/** The messages' columns a status payload shows, and the URL to call: theirs, or their tenant's. */
async function messagesOf(
  trx: Trx,
  ids: string[],
): Promise<Map<string, PayloadColumns & { url: string | null }>> {
  const unique = [...new Set(ids)];
  const out = new Map<string, PayloadColumns & { url: string | null }>();
  for (let i = 0; i < unique.length; i += CHUNK) {
    const rows = await trx
      .selectFrom('messages')
      .innerJoin('tenants', 'tenants.id', 'messages.tenant_id')
      .select([
        'messages.id',
        'messages.tenant_id',
        'messages.to_number',
        'messages.client_ref',
        'messages.segments',
        'messages.callback_url',
        'tenants.webhook_url',
      ])
      .where(inList(trx, 'messages.id', unique.slice(i, i + CHUNK)))
      .execute();
    for (const r of rows) out.set(r.id, { ...r, url: r.callback_url ?? r.webhook_url });
  }
  return out;
}

// Keeps every statement under SQLite's 32,766 bound-variable limit with room to spare.
const CHUNK = 500;
