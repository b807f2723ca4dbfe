import { decodeCursor, encodeCursor } from '../shared/cursor.js';
import { isWellFormedId } from '../shared/ids.js';
import type { WebhookEventTable } from '../store/schema.js';
import type { Db } from '../store/store.js';
import { findLogged, type LoggedEvent, listLogged, loggedDetail, loggedSummary } from './deliveries.js';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function summary(e: WebhookEventTable) {
  return {
    id: e.id,
    type: e.type,
    message_id: e.message_id,
    url: e.url,
    status: e.status,
    attempts: e.attempts,
    next_attempt_at: e.status === 'pending' ? iso(e.next_attempt_at) : null,
    last_error: e.last_error,
    created_at: new Date(e.created_at).toISOString(),
    delivered_at: iso(e.delivered_at),
  };
}

/**
 * A tenant's webhook events, newest first: the rows of webhook_events and the events of the delivery
 * log (src/webhooks/deliveries.ts), merged by id.
 */
export async function listWebhookEvents(
  db: Db,
  tenantId: string,
  q: {
    message_id?: string | undefined;
    status?: WebhookEventTable['status'] | undefined;
    cursor?: string | undefined;
    limit: number;
  },
) {
  const before = q.cursor ? decodeCursor(q.cursor, 'evt') : undefined;
  let query = db.selectFrom('webhook_events').selectAll().where('tenant_id', '=', tenantId);
  if (q.message_id) query = query.where('message_id', '=', q.message_id);
  if (q.status) query = query.where('status', '=', q.status);
  if (before) query = query.where('id', '<', before);
  const rows = await query
    .orderBy('id', 'desc')
    .limit(q.limit + 1)
    .execute();
  // The log holds delivered events only.
  const logged =
    q.status !== undefined && q.status !== 'delivered'
      ? []
      : q.message_id
        ? (await loggedOfMessage(db, tenantId, q.message_id)).filter((e) => !before || e.event[0] < before)
        : await listLogged(db, tenantId, before, q.limit + 1);
  const merged = [...rows.map(summary), ...logged.map(loggedSummary)]
    .sort((a, b) => (a.id < b.id ? 1 : -1))
    .slice(0, q.limit + 1);
  const page = merged.slice(0, q.limit);
  return {
    data: page,
    next_cursor: merged.length > q.limit ? encodeCursor(page.at(-1)!.id) : null,
  };
}

/** The logged events of one message, found through its status history. */
async function loggedOfMessage(db: Db, tenantId: string, messageId: string): Promise<LoggedEvent[]> {
  const history = await db
    .selectFrom('message_events')
    .select('webhook_event_id')
    .where('message_id', '=', messageId)
    .where('webhook_event_id', 'is not', null)
    .execute();
  const ids = history.map((h) => h.webhook_event_id!);
  const found = await findLogged(db, tenantId, ids);
  return [...found.values()];
}

export async function getWebhookEvent(db: Db, tenantId: string, id: string) {
  const event = await db
    .selectFrom('webhook_events')
    .selectAll()
    .where('id', '=', id)
    .where('tenant_id', '=', tenantId)
    .executeTakeFirst();
  if (!event) {
    if (!isWellFormedId('evt', id)) return undefined;
    const logged = (await findLogged(db, tenantId, [id])).get(id);
    return logged && loggedDetail(db, logged);
  }
  const attempts = await db
    .selectFrom('webhook_attempts')
    .select(['attempted_at', 'duration_ms', 'status_code', 'error'])
    .where('event_id', '=', id)
    .orderBy('id')
    .execute();
  const log = attempts.map((a) => ({ ...a, attempted_at: new Date(a.attempted_at).toISOString() }));
  // The delivering attempt lives on the event (events delivered before migration 010 have a row).
  if (event.delivered_at !== null && event.delivered_status_code !== null) {
    log.push({
      attempted_at: new Date(event.delivered_at).toISOString(),
      duration_ms: event.delivered_duration_ms ?? 0,
      status_code: event.delivered_status_code,
      error: null,
    });
  }
  return { ...summary(event), payload: JSON.parse(event.payload) as unknown, attempt_log: log };
}
