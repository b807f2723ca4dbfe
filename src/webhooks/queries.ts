import { decodeCursor, encodeCursor } from '../shared/cursor.js';
import type { WebhookEventTable } from '../store/schema.js';
import type { Db } from '../store/store.js';

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
  let query = db.selectFrom('webhook_events').selectAll().where('tenant_id', '=', tenantId);
  if (q.message_id) query = query.where('message_id', '=', q.message_id);
  if (q.status) query = query.where('status', '=', q.status);
  if (q.cursor) query = query.where('id', '<', decodeCursor(q.cursor, 'evt'));
  const rows = await query
    .orderBy('id', 'desc')
    .limit(q.limit + 1)
    .execute();
  const page = rows.slice(0, q.limit);
  return {
    data: page.map(summary),
    next_cursor: rows.length > q.limit ? encodeCursor(page.at(-1)!.id) : null,
  };
}

export async function getWebhookEvent(db: Db, tenantId: string, id: string) {
  const event = await db
    .selectFrom('webhook_events')
    .selectAll()
    .where('id', '=', id)
    .where('tenant_id', '=', tenantId)
    .executeTakeFirst();
  if (!event) return undefined;
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
