import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyStatusChanges, type StatusChange, statusPayload } from '../src/messages/status.js';
import { applyReceiptUpdates, type ReceiptUpdate } from '../src/receipts/receipt-updates.js';
import { newId } from '../src/shared/ids.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { databaseKinds } from './helpers/databases.js';
import { minimalMessageRow } from './helpers/rows.js';

/**
 * The seam every status change goes through (dispatcher outcomes, receipts, expiry, campaign
 * cancels), driven directly on a real database: each message row is updated and read back by one
 * UPDATE … RETURNING, so these check what a read before the update used to guarantee.
 */
describe.each(databaseKinds)('status changes on $name', (kind) => {
  let t: TestApp;
  let tenantId: string;
  const NOW = Date.parse('2026-03-01T12:00:00Z');

  beforeAll(async () => {
    t = await startTestApp(kind);
    tenantId = (await t.tenant('Shop', 'https://hooks.example.com/relais')).id;
  });
  afterAll(() => t?.close());

  const newMessage = async (fields: Record<string, unknown> = {}) => {
    const id = newId('msg');
    await t.app.store.db
      .insertInto('messages')
      .values(minimalMessageRow(id, tenantId, fields) as never)
      .execute();
    return id;
  };
  const change = (changes: StatusChange[]) =>
    t.app.store.write((trx) => applyStatusChanges(trx, changes, NOW));
  /** The outcome of a one-part message's submit to carrier-a. */
  const submittedOnePart = (messageId: string): StatusChange => ({
    messageId,
    status: 'submitted',
    connector: 'carrier-a',
    parts: [{ partNo: 1, status: 'submitted' }],
  });
  const receipts = (updates: ReceiptUpdate[]) =>
    t.app.store.write((trx) => applyReceiptUpdates(trx, updates, NOW));
  const message = (id: string) =>
    t.app.store.db.selectFrom('messages').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const history = async (id: string) =>
    (
      await t.app.store.db
        .selectFrom('message_events')
        .select(['status', 'error_code'])
        .where('message_id', '=', id)
        .orderBy('id')
        .execute()
    ).map((e) => (e.error_code ? `${e.status}:${e.error_code}` : e.status));
  const webhookStatuses = async (id: string) =>
    (
      await t.app.store.db
        .selectFrom('webhook_events')
        .select('payload')
        .where('message_id', '=', id)
        .orderBy('id')
        .execute()
    ).map((e) => (JSON.parse(e.payload) as { data: { status: string } }).data.status);

  it('takes several changes of one message in one batch, in order, each with its own webhook', async () => {
    const id = await newMessage({ client_ref: 'order-7' });
    const created = await change([
      { messageId: id, status: 'submitted', connector: 'carrier-a' },
      { messageId: id, status: 'delivered' },
    ]);
    expect(created).toBe(2);
    const row = await message(id);
    expect(row).toMatchObject({ status: 'delivered', connector: 'carrier-a', exception_status: null });
    expect(await history(id)).toEqual(['submitted', 'delivered']);
    expect(await webhookStatuses(id)).toEqual(['submitted', 'delivered']);
    const payload = await t.app.store.db
      .selectFrom('webhook_events')
      .select('payload')
      .where('message_id', '=', id)
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow();
    expect(JSON.parse(payload.payload).data).toMatchObject({
      id,
      status: 'delivered',
      to: '+33612345678',
      client_ref: 'order-7',
      segments: 1,
      error_code: null,
    });
    // The delivered change named no connector: its statistics row keeps the one of the submit.
    const stats = await t.app.store.db
      .selectFrom('stats_hourly')
      .select(['status', 'connector', 'messages'])
      .where('tenant_id', '=', tenantId)
      .where('status', '=', 'delivered')
      .execute();
    expect(stats).toEqual([{ status: 'delivered', connector: 'carrier-a', messages: 1 }]);
  });

  it('ignores changes to a message already final, and those after a final one in the same batch', async () => {
    const id = await newMessage();
    expect(
      await change([
        { messageId: id, status: 'rejected', errorCode: 'carrier_rejected', errorReason: 'no route' },
        { messageId: id, status: 'submitted', connector: 'carrier-b' },
      ]),
    ).toBe(1);
    expect(await change([{ messageId: id, status: 'delivered' }])).toBe(0);
    expect(await message(id)).toMatchObject({
      status: 'rejected',
      exception_status: 'rejected',
      error_code: 'carrier_rejected',
      error_reason: 'no route',
      connector: null,
    });
    expect(await history(id)).toEqual(['rejected:carrier_rejected']);
    expect(await webhookStatuses(id)).toEqual(['rejected']);
  });

  it('ignores a change to a message that does not exist, and applies the rest of its batch', async () => {
    const id = await newMessage();
    expect(
      await change([
        { messageId: 'msg_00000000000000000000000000', status: 'submitted' },
        { messageId: id, status: 'submitted', connector: 'carrier-a' },
      ]),
    ).toBe(1);
    expect((await message(id)).status).toBe('submitted');
  });

  it('groups a batch by new state: each message gets its own error and connector', async () => {
    const a = await newMessage();
    const b = await newMessage();
    const c = await newMessage({ connector: 'carrier-z' });
    await change([
      { messageId: a, status: 'failed', errorCode: 'E1', errorReason: 'first' },
      { messageId: b, status: 'failed', errorCode: 'E2', errorReason: 'second', connector: 'carrier-b' },
      { messageId: c, status: 'failed', errorCode: 'E1', errorReason: 'first', connector: null },
    ]);
    expect(await message(a)).toMatchObject({ error_code: 'E1', error_reason: 'first', connector: null });
    expect(await message(b)).toMatchObject({
      error_code: 'E2',
      error_reason: 'second',
      connector: 'carrier-b',
    });
    // An explicit null clears the connector; an absent one keeps it.
    expect(await message(c)).toMatchObject({ error_code: 'E1', connector: null });
  });

  it('gives a one-part message its receipt status at once, with the carrier error', async () => {
    const ok = await newMessage();
    const lost = await newMessage();
    await change([submittedOnePart(ok), submittedOnePart(lost)]);
    const created = await receipts([
      { messageId: ok, partNo: 1, state: 'enroute', errorCode: null },
      { messageId: ok, partNo: 1, state: 'delivered', errorCode: '000' },
      { messageId: lost, partNo: 1, state: 'undeliverable', errorCode: '001' },
    ]);
    expect(created).toBe(2);
    expect(await message(ok)).toMatchObject({
      status: 'delivered',
      error_code: null,
      connector: 'carrier-a',
    });
    expect(await message(lost)).toMatchObject({
      status: 'undelivered',
      error_code: '001',
      error_reason: 'the carrier reported part 1 undelivered (error 001)',
    });
    // A second receipt for a final message changes nothing, and notifies nobody.
    expect(await receipts([{ messageId: ok, partNo: 1, state: 'undeliverable', errorCode: '002' }])).toBe(0);
    expect(await history(ok)).toEqual(['submitted', 'delivered']);
  });

  it("takes a part's last receipt when a batch holds two for it", async () => {
    const id = await newMessage();
    await change([submittedOnePart(id)]);
    await receipts([
      { messageId: id, partNo: 1, state: 'undeliverable', errorCode: '001' },
      { messageId: id, partNo: 1, state: 'delivered', errorCode: null },
    ]);
    expect(await message(id)).toMatchObject({ status: 'delivered', error_code: null });
    const part = await t.app.store.db
      .selectFrom('message_parts')
      .select(['status', 'error_code'])
      .where('message_id', '=', id)
      .executeTakeFirstOrThrow();
    expect(part).toEqual({ status: 'delivered', error_code: null });
  });

  it('waits for every part of a longer message, and takes its most telling failure', async () => {
    const id = await newMessage({ segments: 3 });
    await change([
      {
        messageId: id,
        status: 'submitted',
        connector: 'carrier-a',
        parts: [1, 2, 3].map((partNo) => ({ partNo, connector: 'carrier-a', status: 'submitted' as const })),
      },
    ]);
    expect(await receipts([{ messageId: id, partNo: 1, state: 'delivered', errorCode: null }])).toBe(0);
    expect((await message(id)).status).toBe('submitted');
    expect(
      await receipts([
        { messageId: id, partNo: 2, state: 'rejected', errorCode: '0x45' },
        { messageId: id, partNo: 3, state: 'undeliverable', errorCode: '001' },
      ]),
    ).toBe(1);
    expect(await message(id)).toMatchObject({
      status: 'rejected',
      error_code: '0x45',
      error_reason: 'the carrier reported part 2 rejected (error 0x45)',
    });
    const parts = await t.app.store.db
      .selectFrom('message_parts')
      .select(['part_no', 'status', 'connector'])
      .where('message_id', '=', id)
      .orderBy('part_no')
      .execute();
    expect(parts).toEqual([
      { part_no: 1, status: 'delivered', connector: 'carrier-a' },
      { part_no: 2, status: 'rejected', connector: 'carrier-a' },
      { part_no: 3, status: 'undelivered', connector: 'carrier-a' },
    ]);
  });
});

describe('message.status payloads', () => {
  it('are the text JSON.stringify gives, whatever the client reference and the carrier error hold', () => {
    const nowIso = '2026-03-01T12:00:00.000Z';
    const tricky = [
      null,
      '',
      'order "7"',
      'back\\slash',
      'two\nlines\ttab \u0001',
      'Pizza 🍕',
      '\u2028 separator',
      '</script>',
    ];
    for (const text of tricky) {
      const m = {
        id: 'msg_01KAAAAAAAAAAAAAAAAAAAAAAA',
        tenant_id: 'ten_01KAAAAAAAAAAAAAAAAAAAAAAA',
        to_number: '+33612345678',
        client_ref: text,
        callback_url: null,
        segments: 3,
        lane: 'bulk' as const,
        campaign_id: null,
        status: 'undelivered' as const,
        error_code: text,
        error_reason: text === null ? null : `the carrier said ${text}`,
        connector: 'carrier-a',
      };
      const expected = JSON.stringify({
        id: 'evt_01KAAAAAAAAAAAAAAAAAAAAAAA',
        type: 'message.status',
        created_at: nowIso,
        data: {
          id: m.id,
          status: m.status,
          status_at: nowIso,
          to: m.to_number,
          client_ref: m.client_ref,
          segments: m.segments,
          error_code: m.error_code,
          error_reason: m.error_reason,
        },
      });
      expect(statusPayload('evt_01KAAAAAAAAAAAAAAAAAAAAAAA', m, nowIso)).toBe(expected);
    }
  });
});
