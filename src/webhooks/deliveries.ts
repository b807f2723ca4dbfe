import { statusPayload } from '../messages/status.js';
import { idTime } from '../retention/history-tables.js';
import { idFloor } from '../shared/ids.js';
import { insertRows } from '../store/insert-rows.js';
import type { MessageStatus, WebhookDeliveryTable } from '../store/schema.js';
import type { Db, Trx } from '../store/store.js';

/**
 * The delivery log: handed-over events (src/webhooks/handovers.ts) that their first attempt
 * delivered get no webhook_events row. The request that delivered them writes one webhook_deliveries
 * row instead, listing them compactly with what the API shows of them; their payload is made again
 * from the message when asked for (the same text the sender signed: statusPayload). Nearly every
 * event of the carrier path ends here, so each costs a few bytes of one row instead of a row with
 * its payload in four B-trees (measured: docs/benchmarks.md, "delivery log").
 *
 * A row's events span at most SPAN_MS of id time (rows are cut to keep it so), which bounds every
 * search by event id: the row holding event E has `id <= E <= last_event_id < E + SPAN_MS`, a range
 * of the (tenant_id, last_event_id, id) index.
 */

/** One event a row lists: [event id, message id, status, error code, error reason, created at]. */
export type DeliveredEvent = [
  id: string,
  messageId: string,
  status: MessageStatus,
  errorCode: string | null,
  errorReason: string | null,
  createdAt: number,
];

/** An event of the log, with the request that delivered it. */
export interface LoggedEvent {
  event: DeliveredEvent;
  row: Omit<WebhookDeliveryTable, 'events'>;
}

export const SPAN_MS = 60_000;

/** One request's delivered events (all of one tenant and URL), as the attempt recorded them. */
export interface DeliveredRequest {
  tenantId: string;
  url: string;
  attemptedAt: number;
  statusCode: number;
  durationMs: number;
  events: DeliveredEvent[];
}

/** Rows for these requests: one per request, cut where its events span more than SPAN_MS or MAX_EVENTS. */
export function deliveryRows(requests: DeliveredRequest[]): WebhookDeliveryTable[] {
  const rows: WebhookDeliveryTable[] = [];
  for (const r of requests) {
    const events = [...r.events].sort((a, b) => (a[0] < b[0] ? -1 : 1));
    let start = 0;
    // Ids compare as their times do: one bound per row, not a decoded time per event.
    let end = events.length > 0 ? spanEnd(events[0]![0]) : '';
    for (let i = 1; i <= events.length; i++) {
      const cut = i === events.length || i - start >= MAX_EVENTS || events[i]![0] >= end;
      if (!cut) continue;
      const part = events.slice(start, i);
      rows.push({
        id: part[0]![0],
        tenant_id: r.tenantId,
        last_event_id: part.at(-1)![0],
        url: r.url,
        attempted_at: r.attemptedAt,
        status_code: r.statusCode,
        duration_ms: Math.round(r.durationMs),
        events: JSON.stringify(part),
      });
      start = i;
      if (i < events.length) end = spanEnd(events[i]![0]);
    }
  }
  return rows;
}

/**
 * SPAN_MS of id time after `id`: no row whose first event is at or below `id` holds an event at or
 * above this (rows are cut there), so neither is its last_event_id.
 */
function spanEnd(id: string): string {
  return idFloor('evt', idTime('evt', id) + SPAN_MS);
}

// A row's text stays within a few tens of KB; batches are at most 1,000 events.
const MAX_EVENTS = 1000;

export async function writeDeliveries(trx: Trx, rows: WebhookDeliveryTable[]): Promise<void> {
  // Few, wide rows: 8 columns each keeps a statement far under SQLite's bound-variable limit.
  for (let i = 0; i < rows.length; i += 100)
    await insertRows(trx, 'webhook_deliveries', rows.slice(i, i + 100));
}

/** The logged events of a tenant among `ids`: one search per run of ids within SPAN_MS of each other. */
export async function findLogged(
  db: Db | Trx,
  tenantId: string,
  ids: readonly string[],
): Promise<Map<string, LoggedEvent>> {
  const out = new Map<string, LoggedEvent>();
  const wanted = new Set(ids);
  const sorted = [...wanted].sort();
  for (let start = 0; start < sorted.length; ) {
    const lo = sorted[start]!;
    let end = start + 1;
    const runEnd = spanEnd(lo);
    while (end < sorted.length && sorted[end]! < runEnd) end++;
    const hi = sorted[end - 1]!;
    const rows = await db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('last_event_id', '>=', lo)
      .where('last_event_id', '<', spanEnd(hi))
      .where('id', '<=', hi)
      .execute();
    for (const row of rows) collect(row, (e) => wanted.has(e[0]), out);
    start = end;
  }
  return out;
}

/**
 * A tenant's logged events below `before` (an event id; all when undefined), newest first: at least
 * `limit` of them when there are, and every logged event above the last one returned.
 */
export async function listLogged(
  db: Db,
  tenantId: string,
  before: string | undefined,
  limit: number,
): Promise<LoggedEvent[]> {
  const found: LoggedEvent[] = [];
  // Rows newest first by their last event: once `limit` events are found, a row whose last event is
  // below the limit-th one cannot add any above it.
  let after: { last: string; id: string } | undefined;
  for (;;) {
    let q = db.selectFrom('webhook_deliveries').selectAll().where('tenant_id', '=', tenantId);
    if (before !== undefined) q = q.where('id', '<', before).where('last_event_id', '<', spanEnd(before));
    if (after !== undefined) {
      const { last, id } = after;
      // A row value: one range of the (tenant_id, last_event_id, id) index on both databases.
      q = q.where(({ eb, refTuple, tuple }) => eb(refTuple('last_event_id', 'id'), '<', tuple(last, id)));
    }
    const rows = await q
      .orderBy('last_event_id', 'desc')
      .orderBy('id', 'desc')
      .limit(ROWS_PER_READ)
      .execute();
    for (const row of rows) {
      if (found.length >= limit) {
        found.sort(newestFirst);
        if (row.last_event_id < found[limit - 1]!.event[0]) return found;
      }
      const into = new Map<string, LoggedEvent>();
      collect(row, (e) => before === undefined || e[0] < before, into);
      for (const e of into.values()) found.push(e);
    }
    if (rows.length < ROWS_PER_READ) break;
    const lastRow = rows.at(-1)!;
    after = { last: lastRow.last_event_id, id: lastRow.id };
  }
  found.sort(newestFirst);
  return found;
}

const ROWS_PER_READ = 20;

const newestFirst = (a: LoggedEvent, b: LoggedEvent) => (a.event[0] < b.event[0] ? 1 : -1);

function collect(
  row: WebhookDeliveryTable,
  keep: (e: DeliveredEvent) => boolean,
  into: Map<string, LoggedEvent>,
): void {
  const { events, ...request } = row;
  for (const e of JSON.parse(events) as DeliveredEvent[])
    if (keep(e)) into.set(e[0], { event: e, row: request });
}

/** A logged event as the API lists it (the shape of queries.ts's summary). */
export function loggedSummary({ event, row }: LoggedEvent) {
  return {
    id: event[0],
    type: 'message.status',
    message_id: event[1],
    url: row.url,
    status: 'delivered' as const,
    attempts: 1,
    next_attempt_at: null,
    last_error: null,
    created_at: new Date(event[5]).toISOString(),
    delivered_at: new Date(Number(row.attempted_at)).toISOString(),
  };
}

/** A logged event with its payload (made again from its message; null once the message is gone) and its attempt. */
export async function loggedDetail(db: Db, logged: LoggedEvent) {
  const [id, messageId, status, errorCode, errorReason, createdAt] = logged.event;
  const m = await db
    .selectFrom('messages')
    .select(['to_number', 'client_ref', 'segments'])
    .where('id', '=', messageId)
    .executeTakeFirst();
  const payload =
    m === undefined
      ? null
      : JSON.parse(
          statusPayload(
            id,
            { ...m, id: messageId, status, error_code: errorCode, error_reason: errorReason },
            new Date(createdAt).toISOString(),
          ),
        );
  return {
    ...loggedSummary(logged),
    payload: payload as unknown,
    attempt_log: [
      {
        attempted_at: new Date(Number(logged.row.attempted_at)).toISOString(),
        duration_ms: logged.row.duration_ms,
        status_code: logged.row.status_code,
        error: null,
      },
    ],
  };
}
