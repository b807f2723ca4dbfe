import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebhookEventTable } from '../src/store/schema.js';
import { type DeliveredEvent, deliveryRows, SPAN_MS } from '../src/webhooks/deliveries.js';
import { bearer, startTestApp, type TestApp } from './helpers/app.js';
import { databaseKinds } from './helpers/databases.js';

/**
 * The delivery log (src/webhooks/deliveries.ts) and webhook_events, listed by the API as one list:
 * newest first, each event once, page after page, whatever the rows' spans.
 */
describe('delivery log rows', () => {
  it('are cut where their events span a minute of id time, and list each event once', () => {
    const at = Date.UTC(2026, 10, 27, 12);
    const event = (ms: number): DeliveredEvent => [`evt_${ulid(ms)}`, 'msg_x', 'delivered', null, null, ms];
    const events = [event(at), event(at + 10), event(at + SPAN_MS + 5), event(at + 20)];
    const rows = deliveryRows([
      {
        tenantId: 'ten_a',
        url: 'https://x.example/h',
        attemptedAt: at,
        statusCode: 204,
        durationMs: 3.6,
        events,
      },
    ]);
    expect(rows.map((r) => JSON.parse(r.events).map((e: DeliveredEvent) => e[0]))).toEqual([
      [events[0]![0], events[1]![0], events[3]![0]],
      [events[2]![0]],
    ]);
    expect(rows.map((r) => [r.id, r.last_event_id, r.status_code, r.duration_ms])).toEqual([
      [events[0]![0], events[3]![0], 204, 4],
      [events[2]![0], events[2]![0], 204, 4],
    ]);
  });
});

describe.each(databaseKinds)('webhook events listed from both tables on $name', (kind) => {
  let t: TestApp;
  let apiKey: string;
  const all: { id: string; status: string; messageId: string }[] = [];

  beforeAll(async () => {
    t = await startTestApp(kind);
    const tenant = await t.tenant('Merged');
    apiKey = tenant.apiKey;
    const other = await t.tenant('Other');
    const base = Date.now() - 3_600_000;
    // Enough rows that a page of 500 takes more than one read of the log (20 rows each).
    const ids = Array.from({ length: 100 }, (_, i) => `evt_${ulid(base + i * 1000)}`);
    const messageIds = ids.map((_, i) => `msg_${ulid(base + i * 1000 - 500)}`);
    const messageId = (i: number) => messageIds[i]!;
    // Every third event has a row (pending or failed); the others are in the log, in rows of three,
    // and one row holds the oldest and the newest logged event, spanning all the others.
    const rowed = ids.filter((_, i) => i % 3 === 0);
    const logged = ids.filter((_, i) => i % 3 !== 0);
    const spanning = [logged[0]!, logged.at(-1)!];
    const rest = logged.slice(1, -1);
    const groups = [spanning];
    for (let i = 0; i < rest.length; i += 3) groups.push(rest.slice(i, i + 3));
    const indexOf = (id: string) => ids.indexOf(id);
    const webhookRows: WebhookEventTable[] = rowed.map((id) => ({
      id,
      tenant_id: tenant.id,
      message_id: messageId(indexOf(id)),
      type: 'message.status',
      url: 'https://hooks.example.com/x',
      payload: '{}',
      status: indexOf(id) % 2 === 0 ? 'pending' : 'failed',
      attempts: 1,
      next_attempt_at: base,
      last_error: 'HTTP 500',
      created_at: base,
      delivered_at: null,
      delivered_status_code: null,
      delivered_duration_ms: null,
    }));
    const deliveries = groups.flatMap((g) =>
      deliveryRows([
        {
          tenantId: tenant.id,
          url: 'https://hooks.example.com/x',
          attemptedAt: base + 50_000,
          statusCode: 200,
          durationMs: 4,
          events: g.map((id) => [id, messageId(indexOf(id)), 'delivered', null, null, base]),
        },
      ]),
    );
    // The same ids for another tenant: never listed to the first.
    const foreign = deliveryRows([
      {
        tenantId: other.id,
        url: 'https://other.example.com/x',
        attemptedAt: base,
        statusCode: 200,
        durationMs: 4,
        events: [[`evt_${ulid(base + 500)}`, 'msg_other', 'delivered', null, null, base]],
      },
    ]);
    await t.app.store.write(async (trx) => {
      await trx.insertInto('webhook_events').values(webhookRows).execute();
      await trx
        .insertInto('webhook_deliveries')
        .values([...deliveries, ...foreign])
        .execute();
      // The status history that names each event, as status changes write it.
      await trx
        .insertInto('message_events')
        .values(
          ids.map((id, i) => ({
            message_id: messageId(i),
            status: 'delivered' as const,
            at: base,
            error_code: null,
            detail: null,
            webhook_event_id: id,
          })),
        )
        .execute();
    });
    for (const id of [...ids].reverse()) {
      const row = webhookRows.find((r) => r.id === id);
      all.push({ id, status: row ? row.status : 'delivered', messageId: messageId(indexOf(id)) });
    }
  });
  afterAll(() => t.close());

  async function pages(query: string, limit: number) {
    const seen: { id: string; status: string; message_id: string }[] = [];
    let cursor: string | null = null;
    for (let n = 0; n < 100; n++) {
      const res = await t.app.http.inject({
        url: `/v1/webhook-events?limit=${limit}${query}${cursor ? `&cursor=${cursor}` : ''}`,
        headers: bearer(apiKey),
      });
      expect(res.statusCode).toBe(200);
      const body = res.json();
      seen.push(...body.data);
      cursor = body.next_cursor;
      if (!cursor) break;
    }
    return seen;
  }

  it('pages through both, newest first, each event once', async () => {
    for (const limit of [1, 4, 7, 500]) {
      const seen = await pages('', limit);
      expect(seen.map((e) => [e.id, e.status])).toEqual(all.map((e) => [e.id, e.status]));
    }
  });

  it('filters by status: the log holds delivered events only', async () => {
    expect((await pages('&status=delivered', 5)).map((e) => e.id)).toEqual(
      all.filter((e) => e.status === 'delivered').map((e) => e.id),
    );
    expect((await pages('&status=pending', 5)).map((e) => e.id)).toEqual(
      all.filter((e) => e.status === 'pending').map((e) => e.id),
    );
  });

  it('filters by message, through the status history', async () => {
    for (const e of [all[0]!, all[1]!, all[2]!, all.at(-1)!]) {
      const seen = await pages(`&message_id=${e.messageId}`, 10);
      expect(seen.map((s) => [s.id, s.status, s.message_id])).toEqual([[e.id, e.status, e.messageId]]);
    }
  });

  it('shows a logged event by id, to its tenant only', async () => {
    const e = all.find((x) => x.status === 'delivered')!;
    const res = await t.app.http.inject({ url: `/v1/webhook-events/${e.id}`, headers: bearer(apiKey) });
    expect(res.json()).toMatchObject({ id: e.id, status: 'delivered', attempts: 1, message_id: e.messageId });
    // Its message is not in this database: the payload cannot be made again.
    expect(res.json().payload).toBeNull();
    const unknown = await t.app.http.inject({
      url: `/v1/webhook-events/evt_${ulid()}`,
      headers: bearer(apiKey),
    });
    expect(unknown.statusCode).toBe(404);
  });
});
