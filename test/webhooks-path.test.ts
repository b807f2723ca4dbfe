import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { applyStatusChanges } from '../src/messages/status.js';
import { ManualClock } from '../src/shared/clock.js';
import { FAILURES_TO_PAUSE, FIRST_PAUSE_MS } from '../src/webhooks/endpoint-breakers.js';
import { type DueEvent, WebhookOutbox } from '../src/webhooks/outbox.js';
import { verifySignature } from '../src/webhooks/signature.js';
import { bearer, startTestApp, type TestApp } from './helpers/app.js';
import { databaseKinds } from './helpers/databases.js';
import { WebhookReceiver } from './helpers/receiver.js';

/**
 * The path from an accepted message to the customer's webhook, driven through the dispatcher's seam
 * (claim, record outcome) exactly as the carrier side will drive it — no fake carrier involved.
 */
describe.each(databaseKinds)('status changes to signed webhooks on $name', (kind) => {
  let t: TestApp;
  let receiver: WebhookReceiver;
  let hookUrl: string;
  const clock = new ManualClock(Date.now());

  beforeAll(async () => {
    receiver = new WebhookReceiver();
    hookUrl = await receiver.start();
    t = await startTestApp(kind, {}, { clock });
  });
  afterAll(async () => {
    await t.close();
    await receiver.stop();
  });
  afterEach(() => {
    receiver.requests.length = 0;
    receiver.script = [];
  });

  async function accept(apiKey: string, extra: Record<string, unknown> = {}): Promise<string> {
    const res = await t.app.http.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: bearer(apiKey),
      payload: { to: '+33612345678', from: 'Pizzeria', text: 'Pizza!', client_ref: 'order-1', ...extra },
    });
    expect(res.statusCode).toBe(202);
    return res.json().id;
  }

  it('claims by lane priority, and a submitted then delivered message reaches the webhook, signed', async () => {
    const tenant = await t.tenant('Hooked', hookUrl);
    const bulk = await accept(tenant.apiKey, { lane: 'bulk' });
    const otp = await accept(tenant.apiKey, { lane: 'otp' });
    const claimed = await t.app.workQueue.claim({ owner: 'test-dispatcher', limit: 10, leaseMs: 30_000 });
    const mine = claimed.filter((c) => c.id === otp || c.id === bulk).map((c) => c.id);
    expect(mine).toEqual([otp, bulk]);
    // A claimed message is not claimed twice while its lease runs.
    const again = await t.app.workQueue.claim({ owner: 'other', limit: 100, leaseMs: 30_000 });
    expect(again.map((c) => c.id)).not.toContain(otp);

    await t.app.workQueue.record([
      {
        messageId: otp,
        status: 'submitted',
        connector: 'carrier-a',
        parts: [{ partNo: 1, connector: 'carrier-a', carrierId: 'abc123', status: 'submitted' }],
      },
    ]);
    await t.app.workQueue.record([
      { messageId: otp, status: 'delivered', parts: [{ partNo: 1, status: 'delivered' }] },
    ]);
    expect(await t.app.webhooks.deliverDue()).toBe(2);
    expect(receiver.requests).toHaveLength(2);

    const statuses = receiver.requests.map((r) => JSON.parse(r.body).data.status);
    expect(statuses.sort()).toEqual(['delivered', 'submitted']);
    for (const req of receiver.requests) {
      const event = JSON.parse(req.body);
      expect(event).toMatchObject({
        type: 'message.status',
        data: { id: otp, to: '+33612345678', client_ref: 'order-1', segments: 1 },
      });
      expect(event.id).toMatch(/^evt_/);
      expect(req.headers['relais-event-id']).toBe(event.id);
      expect(req.headers['content-type']).toBe('application/json');
      const header = String(req.headers['relais-signature']);
      expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
      expect(
        verifySignature(tenant.webhookSecret, req.body, header, { nowSeconds: clock.now() / 1000 }),
      ).toBe(true);
      expect(verifySignature('whsec_wrong', req.body, header, { nowSeconds: clock.now() / 1000 })).toBe(
        false,
      );
    }

    // The message shows its whole history and its part's carrier id; it left the queue when submitted.
    const detail = (
      await t.app.http.inject({ url: `/v1/messages/${otp}`, headers: bearer(tenant.apiKey) })
    ).json();
    expect(detail.status).toBe('delivered');
    expect(detail.history.map((h: { status: string }) => h.status)).toEqual([
      'accepted',
      'submitted',
      'delivered',
    ]);
    expect(detail.parts).toEqual([
      { part_no: 1, connector: 'carrier-a', carrier_id: 'abc123', status: 'delivered', error_code: null },
    ]);
    const inQueue = await t.app.store.db
      .selectFrom('queue')
      .select('message_id')
      .where('message_id', '=', otp)
      .execute();
    expect(inQueue).toEqual([]);
  });

  it('prefers the message callback_url over the tenant default, and sends nothing without either', async () => {
    const withDefault = await t.tenant('Default', hookUrl);
    const id = await accept(withDefault.apiKey, { callback_url: `${hookUrl}?per-message=1` });
    const silent = await t.tenant('NoHook');
    const quiet = await accept(silent.apiKey);
    await t.app.workQueue.record([
      { messageId: id, status: 'failed', errorCode: '0x0B', errorReason: 'invalid destination' },
      { messageId: quiet, status: 'failed', errorCode: '0x0B', errorReason: 'invalid destination' },
    ]);
    expect(await t.app.webhooks.deliverDue()).toBe(1);
    expect(receiver.requests).toHaveLength(1);
    expect(JSON.parse(receiver.requests[0]!.body).data).toMatchObject({
      id,
      status: 'failed',
      error_code: '0x0B',
      error_reason: 'invalid destination',
    });
  });

  it('retries on 5xx and timeouts with back-off, shows every attempt, and stops once delivered', async () => {
    const tenant = await t.tenant('Flaky', hookUrl);
    const id = await accept(tenant.apiKey);
    receiver.script = [500, 503];
    await t.app.workQueue.record([{ messageId: id, status: 'delivered' }]);

    expect(await t.app.webhooks.deliverDue()).toBe(1);
    expect(await t.app.webhooks.deliverDue()).toBe(0); // not due again yet: back-off
    clock.advance(60 * 60_000);
    expect(await t.app.webhooks.deliverDue()).toBe(1);
    clock.advance(60 * 60_000);
    expect(await t.app.webhooks.deliverDue()).toBe(1);
    clock.advance(60 * 60_000);
    expect(await t.app.webhooks.deliverDue()).toBe(0); // delivered: never sent again
    expect(receiver.requests).toHaveLength(3);
    // The same event, the same body, every time: receivers can dedupe on the id.
    expect(new Set(receiver.requests.map((r) => r.body)).size).toBe(1);

    const list = (
      await t.app.http.inject({ url: `/v1/webhook-events?message_id=${id}`, headers: bearer(tenant.apiKey) })
    ).json();
    expect(list.data).toHaveLength(1);
    expect(list.data[0]).toMatchObject({ status: 'delivered', attempts: 3, message_id: id });
    const detail = (
      await t.app.http.inject({
        url: `/v1/webhook-events/${list.data[0].id}`,
        headers: bearer(tenant.apiKey),
      })
    ).json();
    expect(detail.attempt_log.map((a: { status_code: number }) => a.status_code)).toEqual([500, 503, 200]);
    const delivering = detail.attempt_log[2];
    expect(delivering.attempted_at).toBe(detail.delivered_at);
    expect(delivering.error).toBeNull();
    expect(Number.isInteger(delivering.duration_ms) && delivering.duration_ms >= 0).toBe(true);
    // Only the failed attempts have rows; the delivering one is kept on the event.
    const rows = await t.app.store.db
      .selectFrom('webhook_attempts')
      .select('status_code')
      .where('event_id', '=', list.data[0].id)
      .orderBy('id')
      .execute();
    expect(rows.map((r) => r.status_code)).toEqual([500, 503]);
    expect(detail.payload.data.id).toBe(id);
    // Another tenant cannot see this event.
    const other = await t.tenant('Other');
    const hidden = await t.app.http.inject({
      url: `/v1/webhook-events/${list.data[0].id}`,
      headers: bearer(other.apiKey),
    });
    expect(hidden.statusCode).toBe(404);
  });

  it('does not retry a 4xx answer, and gives up after the retry window on a dead endpoint', async () => {
    const tenant = await t.tenant('Gone', hookUrl);
    const rejected = await accept(tenant.apiKey);
    receiver.script = [410];
    await t.app.workQueue.record([{ messageId: rejected, status: 'delivered' }]);
    await t.app.webhooks.deliverDue();
    clock.advance(48 * 3600_000);
    expect(await t.app.webhooks.deliverDue()).toBe(0);
    const event = await t.app.store.db
      .selectFrom('webhook_events')
      .selectAll()
      .where('message_id', '=', rejected)
      .executeTakeFirstOrThrow();
    expect(event).toMatchObject({ status: 'failed', attempts: 1, last_error: 'HTTP 410' });

    // A closed port: connection refused, retried for retry_for_hours (24 h), then failed.
    const dead = await t.tenant('Dead', 'http://127.0.0.1:1/hook');
    const id = await accept(dead.apiKey);
    await t.app.workQueue.record([{ messageId: id, status: 'delivered' }]);
    let attempts = 0;
    for (let hour = 0; hour < 30; hour++) {
      attempts += await t.app.webhooks.deliverDue();
      clock.advance(3600_000);
    }
    const deadEvent = await t.app.store.db
      .selectFrom('webhook_events')
      .selectAll()
      .where('message_id', '=', id)
      .executeTakeFirstOrThrow();
    expect(deadEvent.status).toBe('failed');
    expect(deadEvent.attempts).toBe(attempts);
    expect(attempts).toBeGreaterThanOrEqual(24); // hourly at the cap, for at least 24 hours
    const lastAttempt = await t.app.store.db
      .selectFrom('webhook_attempts')
      .select((eb) => eb.fn.max('attempted_at').as('last'))
      .where('event_id', '=', deadEvent.id)
      .executeTakeFirstOrThrow();
    expect(Number(lastAttempt.last) - deadEvent.created_at).toBeGreaterThanOrEqual(24 * 3600_000);
  });

  it('lists the delivering attempt once for an event delivered before migration 010 (it has a row)', async () => {
    const tenant = await t.tenant('Upgraded', hookUrl);
    const eventId = 'evt_01JBEFORE010AAAAAAAAAAAAAA';
    const at = clock.now();
    await t.app.store.write(async (trx) => {
      await trx
        .insertInto('webhook_events')
        .values({
          id: eventId,
          tenant_id: tenant.id,
          message_id: null,
          type: 'message.status',
          url: hookUrl,
          payload: '{}',
          status: 'delivered',
          attempts: 1,
          next_attempt_at: at,
          last_error: null,
          created_at: at,
          delivered_at: at,
          delivered_status_code: null,
          delivered_duration_ms: null,
        })
        .execute();
      await trx
        .insertInto('webhook_attempts')
        .values({ event_id: eventId, attempted_at: at, duration_ms: 12, status_code: 200, error: null })
        .execute();
    });
    const detail = (
      await t.app.http.inject({ url: `/v1/webhook-events/${eventId}`, headers: bearer(tenant.apiKey) })
    ).json();
    expect(detail.attempt_log).toEqual([
      { attempted_at: new Date(at).toISOString(), duration_ms: 12, status_code: 200, error: null },
    ]);
  });

  it('applies several changes of one message in one batch in order, with one event each', async () => {
    const tenant = await t.tenant('Batched', hookUrl);
    const a = await accept(tenant.apiKey);
    const b = await accept(tenant.apiKey, { text: 'x'.repeat(200) });
    await t.app.workQueue.record([
      { messageId: a, status: 'submitted', parts: [{ partNo: 1, carrierId: 'A1', status: 'submitted' }] },
      {
        messageId: b,
        status: 'submitted',
        parts: [
          { partNo: 1, carrierId: 'B1', status: 'submitted' },
          { partNo: 2, carrierId: 'B2', status: 'submitted' },
        ],
      },
      { messageId: a, status: 'delivered', parts: [{ partNo: 1, status: 'delivered' }] },
      {
        messageId: b,
        status: 'undelivered',
        errorCode: '0x0B',
        parts: [{ partNo: 2, status: 'undelivered', errorCode: '0x0B' }],
      },
      { messageId: a, status: 'failed' }, // after a final status: ignored
    ]);
    const rows = await t.app.store.db
      .selectFrom('messages')
      .select(['id', 'status', 'error_code'])
      .where('id', 'in', [a, b])
      .execute();
    expect(Object.fromEntries(rows.map((r) => [r.id, [r.status, r.error_code]]))).toEqual({
      [a]: ['delivered', null],
      [b]: ['undelivered', '0x0B'],
    });
    const parts = await t.app.store.db
      .selectFrom('message_parts')
      .select(['message_id', 'part_no', 'carrier_id', 'status'])
      .where('message_id', 'in', [a, b])
      .orderBy('message_id')
      .orderBy('part_no')
      .execute();
    expect(parts.map((p) => [p.message_id === a ? 'a' : 'b', p.part_no, p.carrier_id, p.status])).toEqual([
      ['a', 1, 'A1', 'delivered'],
      ['b', 1, 'B1', 'submitted'],
      ['b', 2, 'B2', 'undelivered'],
    ]);
    expect(await t.app.webhooks.deliverDue()).toBe(4);
  });

  it('batches events per endpoint for tenants that opt in, signed over the whole body', async () => {
    const tenant = await t.tenant('Batcher', hookUrl);
    const patched = await t.app.http.inject({
      method: 'PATCH',
      url: '/v1/account',
      headers: bearer(tenant.apiKey),
      payload: { webhook_batch_size: 10 },
    });
    expect(patched.json()).toMatchObject({ webhook_batch_size: 10, webhook_url: hookUrl });
    const ids: string[] = [];
    for (let i = 0; i < 25; i++) ids.push(await accept(tenant.apiKey, { client_ref: `b${i}` }));
    await t.app.workQueue.record(ids.map((id) => ({ messageId: id, status: 'delivered' as const })));
    expect(await t.app.webhooks.deliverDue()).toBe(25);
    expect(receiver.requests.map((r) => r.headers['relais-batch-size'])).toEqual(['10', '10', '5']);
    const delivered: string[] = [];
    for (const r of receiver.requests) {
      const header = String(r.headers['relais-signature']);
      expect(verifySignature(tenant.webhookSecret, r.body, header, { nowSeconds: clock.now() / 1000 })).toBe(
        true,
      );
      const body = JSON.parse(r.body);
      expect(body.type).toBe('batch');
      for (const e of body.events) {
        expect(e).toMatchObject({ type: 'message.status', data: { status: 'delivered' } });
        delivered.push(e.data.id);
      }
    }
    expect(delivered).toEqual(ids);
    const statuses = await t.app.store.db
      .selectFrom('webhook_events')
      .select(['status', 'attempts'])
      .where('message_id', 'in', ids)
      .execute();
    expect(statuses.every((e) => e.status === 'delivered' && e.attempts === 1)).toBe(true);
  });

  it('records a failed batch on each of its events, and the batch that delivers them', async () => {
    const tenant = await t.tenant('Batch retry', hookUrl);
    await t.app.http.inject({
      method: 'PATCH',
      url: '/v1/account',
      headers: bearer(tenant.apiKey),
      payload: { webhook_batch_size: 20 },
    });
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push(await accept(tenant.apiKey));
    await t.app.workQueue.record(ids.map((id) => ({ messageId: id, status: 'delivered' as const })));
    receiver.script = [503];
    expect(await t.app.webhooks.deliverDue()).toBe(12);
    const events = () =>
      t.app.store.db
        .selectFrom('webhook_events')
        .selectAll()
        .where('message_id', 'in', ids)
        .orderBy('id')
        .execute();
    const failed = await events();
    expect(failed).toHaveLength(12);
    for (const e of failed) {
      expect(e).toMatchObject({ status: 'pending', attempts: 1, last_error: 'HTTP 503', delivered_at: null });
      expect(Number(e.next_attempt_at)).toBeGreaterThan(clock.now());
    }
    const attempts = await t.app.store.db
      .selectFrom('webhook_attempts')
      .select(['event_id', 'status_code'])
      .where(
        'event_id',
        'in',
        failed.map((e) => e.id),
      )
      .execute();
    expect(attempts).toHaveLength(12);
    expect(attempts.every((a) => a.status_code === 503)).toBe(true);

    clock.advance(60 * 60_000);
    expect(await t.app.webhooks.deliverDue()).toBe(12);
    expect(receiver.requests.map((r) => r.headers['relais-batch-size'])).toEqual(['12', '12']);
    for (const e of await events()) {
      expect(e).toMatchObject({
        status: 'delivered',
        attempts: 2,
        last_error: null,
        delivered_status_code: 200,
      });
      expect(Number(e.delivered_at)).toBe(clock.now());
    }
  });

  it('ignores changes to a message already in a final state', async () => {
    const tenant = await t.tenant('Final', hookUrl);
    const id = await accept(tenant.apiKey);
    await t.app.workQueue.record([{ messageId: id, status: 'delivered' }]);
    await t.app.workQueue.record([{ messageId: id, status: 'undelivered' }]);
    const row = await t.app.store.db
      .selectFrom('messages')
      .select('status')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(row.status).toBe('delivered');
    expect(await t.app.webhooks.deliverDue()).toBe(1);
  });

  it('expires queued messages whose validity ended, with a webhook', async () => {
    const tenant = await t.tenant('Expiring', hookUrl);
    const id = await accept(tenant.apiKey, { validity_minutes: 5 });
    clock.advance(6 * 60_000);
    const result = await t.app.housekeeping.runOnce();
    expect(result.expired).toBeGreaterThanOrEqual(1);
    await t.app.webhooks.deliverDue();
    const event = receiver.requests.map((r) => JSON.parse(r.body)).find((e) => e.data.id === id);
    expect(event?.data).toMatchObject({ status: 'expired', error_code: 'validity_expired' });
    const claimed = await t.app.workQueue.claim({ owner: 'late', limit: 1000, leaseMs: 1000 });
    expect(claimed.map((c) => c.id)).not.toContain(id);
  });
});

describe.each(databaseKinds)('webhook delivery survives a restart on $name', (kind) => {
  it('delivers events left pending by a previous process', async () => {
    const receiver = new WebhookReceiver();
    const url = await receiver.start();
    const first = await startTestApp(kind);
    const tenant = await first.tenant('Restart', url);
    const res = await first.app.http.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: bearer(tenant.apiKey),
      payload: { to: '+33612345678', from: 'Pizzeria', text: 'x' },
    });
    await first.app.workQueue.record([{ messageId: res.json().id, status: 'delivered' }]);
    // Stop without delivering, keep the database, start a new platform on it with its sender running.
    await first.app.close();
    const { buildApp } = await import('../src/app.js');
    const second = await buildApp(first.config);
    await second.start();
    await receiver.waitFor(1);
    expect(JSON.parse(receiver.requests[0]!.body).data.id).toBe(res.json().id);
    await second.close();
    await first.db.drop();
    await receiver.stop();
  });
});

describe.each(databaseKinds)('the running webhook sender on $name', (kind) => {
  it('takes the events of recorded outcomes from their transaction: logged once, after their attempt', async () => {
    const receiver = new WebhookReceiver();
    const url = await receiver.start();
    const t = await startTestApp(kind, { webhooks: { allow_private_targets: true } }, { listen: true });
    try {
      const tenant = await t.tenant('Handover', url);
      const id = await sendOne(t, tenant.apiKey);
      const before = Date.now();
      receiver.delayMs = 300;
      await t.app.workQueue.recordOutcomes([{ changes: [{ messageId: id, status: 'delivered' }] }]);
      // Committed as a handover row leased to this process's sender, which has the event already: no
      // claim could take it, and its webhook_events row waits for its first attempt.
      const handover = await t.app.store.db
        .selectFrom('webhook_handovers')
        .selectAll()
        .executeTakeFirstOrThrow();
      expect(handover.leased_until).toBeGreaterThan(before + 5_000);
      expect(JSON.parse(handover.events)).toEqual([
        [expect.stringMatching(/^evt_/), id, 'delivered', null, null],
      ]);
      expect(await eventsOf(t, id)).toEqual([]);
      await receiver.waitFor(1);
      const body = JSON.parse(receiver.requests[0]!.body);
      expect(body.id).toBe(handover.events.slice(3, 33));
      expect(body.data).toMatchObject({ id, status: 'delivered' });
      // Delivered at its first attempt: one line of the request's row in the delivery log, no row of its own.
      await expect
        .poll(
          async () => (await t.app.store.db.selectFrom('webhook_deliveries').selectAll().execute()).length,
        )
        .toBe(1);
      const logged = await t.app.store.db
        .selectFrom('webhook_deliveries')
        .selectAll()
        .executeTakeFirstOrThrow();
      expect(logged).toMatchObject({ id: body.id, last_event_id: body.id, tenant_id: tenant.id, url });
      expect(JSON.parse(logged.events)).toEqual([[body.id, id, 'delivered', null, null, expect.any(Number)]]);
      expect(await eventsOf(t, id)).toEqual([]);
      expect(await t.app.store.db.selectFrom('webhook_handovers').selectAll().execute()).toEqual([]);
      const shown = await t.app.http.inject({
        method: 'GET',
        url: `/v1/webhook-events/${body.id}`,
        headers: bearer(tenant.apiKey),
      });
      // The payload is made again from the message: the text that was signed and sent.
      expect(shown.json()).toMatchObject({ status: 'delivered', attempts: 1, url, payload: body });
      expect(JSON.stringify(shown.json().payload)).toBe(receiver.requests[0]!.body);
      expect(shown.json().attempt_log).toEqual([
        { attempted_at: expect.any(String), duration_ms: expect.any(Number), status_code: 200, error: null },
      ]);
      const byMessage = await t.app.http.inject({
        method: 'GET',
        url: `/v1/webhook-events?message_id=${id}`,
        headers: bearer(tenant.apiKey),
      });
      expect(
        byMessage.json().data.map((e: { id: string; status: string }) => [e.id, e.status]),
      ).toContainEqual([body.id, 'delivered']);
    } finally {
      await t.close();
      await receiver.stop();
    }
  });

  it('writes handed-over events pending when the sender stops before their attempt', async () => {
    const t = await startTestApp(kind, {}, { listen: true });
    try {
      const tenant = await t.tenant('Late', 'https://hooks.example.com/relais');
      const id = await sendOne(t, tenant.apiKey);
      const handover = { leasedUntil: Date.now() + 60_000, events: [] as DueEvent[] };
      await t.app.store.write((trx) =>
        applyStatusChanges(trx, [{ messageId: id, status: 'delivered' }], Date.now(), { handover }),
      );
      await t.app.webhooks.stop();
      t.app.webhooks.take(handover.events);
      await expect
        .poll(async () => (await eventsOf(t, id)).map((e) => [e.status, e.next_attempt_at <= Date.now()]))
        .toEqual([['pending', true]]);
      expect((await eventsOf(t, id))[0]!.payload).toBe(handover.events[0]!.payload);
      expect(await t.app.store.db.selectFrom('webhook_handovers').selectAll().execute()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('gives back at once the leases of events handed over after the sender stopped', async () => {
    const t = await startTestApp(kind, {}, { listen: true });
    try {
      const tenant = await t.tenant('Late', 'https://hooks.example.com/relais');
      const leasedUntil = t.app.webhooks.lease();
      expect(leasedUntil).not.toBeNull();
      const event = {
        id: 'evt_handed_late',
        tenant_id: tenant.id,
        url: 'https://hooks.example.com/relais',
        payload: '{}',
        attempts: 0,
        created_at: Date.now(),
      };
      await t.app.store.write((trx) =>
        trx
          .insertInto('webhook_events')
          .values({
            ...event,
            message_id: null,
            type: 'message.status',
            status: 'pending',
            next_attempt_at: leasedUntil!,
            last_error: null,
            delivered_at: null,
          })
          .execute(),
      );
      await t.app.webhooks.stop();
      expect(t.app.webhooks.lease()).toBeNull(); // a stopped sender takes nothing: events are written due
      t.app.webhooks.take([{ ...event, webhook_secret: 'whsec_x', webhook_batch_size: 0 }]);
      await expect
        .poll(async () => {
          const row = await t.app.store.db
            .selectFrom('webhook_events')
            .select('next_attempt_at')
            .where('id', '=', event.id)
            .executeTakeFirstOrThrow();
          return row.next_attempt_at <= Date.now();
        })
        .toBe(true);
    } finally {
      await t.close();
    }
  });

  /**
   * Two tenants: Slow, whose endpoint never answers (the sender must time out, not wait forever),
   * and Fast. `deliver(tenant, n)` creates n messages and records them delivered: one event each.
   */
  async function hungAndFast(webhooks: Record<string, unknown>) {
    const hanging = new Set<ServerResponse>();
    let slowRequests = 0;
    const slow = createServer((_req, res) => {
      slowRequests++;
      hanging.add(res);
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    const fast = new WebhookReceiver();
    const fastUrl = await fast.start();
    const t = await startTestApp(
      kind,
      { webhooks: { allow_private_targets: true, ...webhooks } },
      { listen: true },
    );
    const slowTenant = await t.tenant(
      'Slow',
      `http://127.0.0.1:${(slow.address() as AddressInfo).port}/hook`,
    );
    const fastTenant = await t.tenant('Fast', fastUrl);
    const deliver = async (tenant: { apiKey: string }, n: number) => {
      const ids: string[] = [];
      for (let i = 0; i < n; i++) {
        const res = await t.app.http.inject({
          method: 'POST',
          url: '/v1/messages',
          headers: bearer(tenant.apiKey),
          payload: { to: '+33612345678', from: 'Shop', text: 'x' },
        });
        ids.push(res.json().id as string);
      }
      await t.app.workQueue.record(ids.map((id) => ({ messageId: id, status: 'delivered' as const })));
      return ids;
    };
    return {
      t,
      fast,
      slowTenant,
      fastTenant,
      hanging,
      deliver,
      slowRequests: () => slowRequests,
      slowEvents: () =>
        t.app.store.db
          .selectFrom('webhook_events')
          .select(['status', 'attempts', 'next_attempt_at'])
          .where('tenant_id', '=', slowTenant.id)
          .execute(),
      async close() {
        for (const res of hanging) res.destroy();
        slow.closeAllConnections();
        slow.close();
        await t.close();
        await fast.stop();
      },
    };
  }

  it('keeps delivering to healthy endpoints while another endpoint hangs', async () => {
    const f = await hungAndFast({ timeout_ms: 30_000, concurrency: 4 });
    try {
      await f.deliver(f.slowTenant, 3);
      while (f.hanging.size < 3) await new Promise((r) => setTimeout(r, 10));
      const fastIds = await f.deliver(f.fastTenant, 2);
      await f.fast.waitFor(2);
      expect(f.hanging.size).toBe(3); // the slow deliveries are still pending, yet the fast ones went through
      expect(f.fast.requests.map((r) => JSON.parse(r.body).data.id).sort()).toEqual(fastIds.sort());
    } finally {
      await f.close();
    }
  });

  it('stops without waiting for the requests queued behind hung ones: those events are due again, not attempted', async () => {
    const f = await hungAndFast({ timeout_ms: 60_000, concurrency: 1 });
    try {
      await f.deliver(f.slowTenant, 6);
      await vi.waitFor(() => expect(f.hanging.size).toBe(1));
      const stopping = f.t.app.webhooks.stop();
      // The one exchange under way runs to its end (here, the endpoint's answer).
      await new Promise((r) => setTimeout(r, 200));
      for (const res of f.hanging) res.writeHead(200).end();
      await stopping;
      expect(f.slowRequests()).toBe(1);
      const events = await f.slowEvents();
      // The one delivered is in the delivery log; the others have their row, pending.
      const logged = await f.t.app.store.db.selectFrom('webhook_deliveries').select('events').execute();
      expect(logged.flatMap((r) => JSON.parse(r.events))).toHaveLength(1);
      expect(events).toHaveLength(5);
      const left = events.filter((e) => e.status === 'pending');
      expect(left).toHaveLength(5);
      for (const e of left) {
        expect(e.attempts).toBe(0);
        expect(e.next_attempt_at).toBeLessThanOrEqual(Date.now());
      }
    } finally {
      await f.close();
    }
  });

  it('pauses an endpoint that keeps timing out: its backlog waits, other tenants’ events go at once', async () => {
    const f = await hungAndFast({ timeout_ms: 300, concurrency: 2 });
    try {
      await f.deliver(f.slowTenant, 60);
      await f.deliver(f.fastTenant, 2);
      await f.fast.waitFor(2);
      // Without the pause the 60 events ahead of them would take 60 × 300 ms / 2 = 9 s of timeouts.
      // With it: the failures that paused the endpoint, and what was already in the delivery thread.
      const sentToSlow = f.slowRequests();
      expect(sentToSlow).toBeGreaterThanOrEqual(FAILURES_TO_PAUSE);
      expect(sentToSlow).toBeLessThanOrEqual(FAILURES_TO_PAUSE + 2 * 4);
      // Long enough for the requests still in flight to time out and be recorded.
      await new Promise((r) => setTimeout(r, 1000));
      expect(f.slowRequests()).toBe(sentToSlow);
      const events = await f.slowEvents();
      expect(events).toHaveLength(60);
      expect(events.every((e) => e.status === 'pending')).toBe(true);
      // The events not attempted are put off to the end of the pause, their attempts not counted.
      expect(events.filter((e) => e.attempts > 0)).toHaveLength(sentToSlow);
      const putOff = events.filter((e) => e.attempts === 0);
      expect(putOff).toHaveLength(60 - sentToSlow);
      for (const e of putOff) expect(e.next_attempt_at).toBeGreaterThan(Date.now() + FIRST_PAUSE_MS / 2);
    } finally {
      await f.close();
    }
  });
});

/** Accepts one message for the key's tenant; returns its id. */
async function sendOne(t: TestApp, apiKey: string, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await t.app.http.inject({
    method: 'POST',
    url: '/v1/messages',
    headers: bearer(apiKey),
    payload: { to: '+33612345678', from: 'Shop', text: 'x', ...extra },
  });
  return res.json().id as string;
}

/** The webhook_events rows of a message. */
function eventsOf(t: TestApp, messageId: string) {
  return t.app.store.db
    .selectFrom('webhook_events')
    .selectAll()
    .where('message_id', '=', messageId)
    .execute();
}

describe.each(databaseKinds)('handed-over webhook events after a crash on $name', (kind) => {
  /** Two messages whose status changes were handed over, as by a sender that then died. */
  async function handedOver(t: TestApp, leasedUntil: number, webhookUrl: string) {
    const tenant = await t.tenant('Crashed', webhookUrl);
    const ids: string[] = [];
    for (const extra of [{ client_ref: 'order "42"' }, { callback_url: `${webhookUrl}?mine=1` }]) {
      ids.push(await sendOne(t, tenant.apiKey, extra));
    }
    const handover = { leasedUntil, events: [] as DueEvent[] };
    await t.app.store.write((trx) =>
      applyStatusChanges(
        trx,
        [
          {
            messageId: ids[0]!,
            status: 'undelivered',
            errorCode: '0x0B',
            errorReason: 'Absent "subscriber"',
          },
          { messageId: ids[1]!, status: 'submitted' },
        ],
        Date.now(),
        { handover },
      ),
    );
    return { tenant, ids, events: handover.events };
  }

  it('turns a handover whose lease ran out into pending events with the same payload, and delivers them', async () => {
    const receiver = new WebhookReceiver();
    const url = await receiver.start();
    const t = await startTestApp(kind);
    try {
      const { tenant, ids, events } = await handedOver(t, Date.now() + 200, url);
      // Still leased: left to the sender that holds it, and counted in the backlog.
      expect(await t.app.webhooks.deliverDue()).toBe(0);
      expect(await eventsOf(t, ids[0]!)).toEqual([]);
      const metrics = await t.app.http.inject({ url: '/metrics', remoteAddress: '127.0.0.1' });
      expect(metrics.body).toMatch(/relais_webhook_backlog 2\n/);
      await new Promise((r) => setTimeout(r, 250));
      expect(await t.app.webhooks.deliverDue()).toBe(2);
      expect(receiver.requests.map((r) => r.body).sort()).toEqual(events.map((e) => e.payload).sort());
      expect(receiver.requests.map((r) => r.url).sort()).toEqual(['/hook', '/hook?mine=1']);
      for (const r of receiver.requests)
        expect(
          verifySignature(tenant.webhookSecret, r.body, r.headers['relais-signature'] as string, {
            nowSeconds: Date.now() / 1000,
          }),
        ).toBe(true);
      for (const id of ids)
        expect((await eventsOf(t, id)).map((e) => [e.status, e.attempts])).toEqual([['delivered', 1]]);
      expect(await t.app.store.db.selectFrom('webhook_handovers').selectAll().execute()).toEqual([]);
    } finally {
      await t.close();
      await receiver.stop();
    }
  });

  it('keeps the rows a sender wrote before it died, and records a late attempt on a recovered row', async () => {
    const t = await startTestApp(kind);
    try {
      const { ids, events } = await handedOver(t, Date.now() - 1, 'https://hooks.example.com/relais');
      const outbox = new WebhookOutbox(t.app.store);
      outbox.adopt(events);
      // The first event was attempted and recorded (failed, to retry later), then the process died.
      const retryAt = Date.now() + 3_600_000;
      const attempt = { attemptedAt: Date.now(), durationMs: 5, statusCode: 503, error: null };
      await outbox.recordAttempts([
        { event: events[0]!, ...attempt, outcome: { status: 'pending', nextAttemptAt: retryAt } },
      ]);
      expect(await t.app.store.db.selectFrom('webhook_handovers').select('id').execute()).toHaveLength(1);
      expect(await new WebhookOutbox(t.app.store).recoverHandovers(Date.now())).toBe(1);
      const first = await eventsOf(t, ids[0]!);
      expect(first.map((e) => [e.status, e.attempts, e.next_attempt_at])).toEqual([['pending', 1, retryAt]]);
      const second = await eventsOf(t, ids[1]!);
      expect(second.map((e) => [e.id, e.status, e.attempts, e.payload])).toEqual([
        [events[1]!.id, 'pending', 0, events[1]!.payload],
      ]);
      // The process was only slow: its attempt of the second event lands on the recovered row.
      await outbox.recordAttempts([
        { event: events[1]!, ...attempt, statusCode: 200, outcome: { status: 'delivered' } },
      ]);
      expect((await eventsOf(t, ids[1]!)).map((e) => [e.status, e.attempts])).toEqual([['delivered', 1]]);
      expect(await t.app.store.db.selectFrom('webhook_handovers').select('id').execute()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('leaves out of a recovery the events the delivery log holds, and lists each event once', async () => {
    const t = await startTestApp(kind);
    try {
      const { tenant, ids, events } = await handedOver(t, Date.now() - 1, 'https://hooks.example.com/relais');
      const outbox = new WebhookOutbox(t.app.store);
      outbox.adopt(events);
      // The first event was delivered at its first attempt (into the log), then the process died.
      await outbox.recordAttempts([
        {
          event: events[0]!,
          attemptedAt: Date.now(),
          durationMs: 5,
          statusCode: 200,
          error: null,
          outcome: { status: 'delivered' },
        },
      ]);
      expect(await t.app.store.db.selectFrom('webhook_deliveries').select('id').execute()).toEqual([
        { id: events[0]!.id },
      ]);
      expect(await new WebhookOutbox(t.app.store).recoverHandovers(Date.now())).toBe(1);
      expect(await eventsOf(t, ids[0]!)).toEqual([]);
      expect((await eventsOf(t, ids[1]!)).map((e) => [e.id, e.status])).toEqual([[events[1]!.id, 'pending']]);
      const listed = await t.app.http.inject({ url: '/v1/webhook-events', headers: bearer(tenant.apiKey) });
      expect(listed.json().data.map((e: { id: string; status: string }) => [e.id, e.status])).toEqual([
        [events[1]!.id, 'pending'],
        [events[0]!.id, 'delivered'],
      ]);
      // Shown with the payload the sender signed and sent, made again from the message.
      const shown = await t.app.http.inject({
        url: `/v1/webhook-events/${events[0]!.id}`,
        headers: bearer(tenant.apiKey),
      });
      expect(JSON.stringify(shown.json().payload)).toBe(events[0]!.payload);
      expect(shown.json()).toMatchObject({ status: 'delivered', attempts: 1, message_id: ids[0] });
      // Another tenant sees neither.
      const other = await t.tenant('Other');
      const hidden = await t.app.http.inject({
        url: `/v1/webhook-events/${events[0]!.id}`,
        headers: bearer(other.apiKey),
      });
      expect(hidden.statusCode).toBe(404);
      const none = await t.app.http.inject({ url: '/v1/webhook-events', headers: bearer(other.apiKey) });
      expect(none.json().data).toEqual([]);
    } finally {
      await t.close();
    }
  });
});
