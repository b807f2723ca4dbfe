import { CompiledQuery, Migrator } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { type ListFilters, listMessages, listQuery } from '../src/messages/queries.js';
import { encodeCursor } from '../src/shared/cursor.js';
import { newId } from '../src/shared/ids.js';
import { migrationProvider } from '../src/store/migrations/index.js';
import { openStore } from '../src/store/store.js';
import { bearer, startTestApp, type TestApp } from './helpers/app.js';
import { databaseKinds } from './helpers/databases.js';
import { minimalMessageRow } from './helpers/rows.js';

describe.each(databaseKinds)('messages API on $name', (kind) => {
  let t: TestApp;
  let key: string;
  let otherKey: string;

  beforeAll(async () => {
    t = await startTestApp(kind);
    key = (await t.tenant('Pizzeria')).apiKey;
    otherKey = (await t.tenant('Rival')).apiKey;
  });
  afterAll(() => t.close());

  const send = (body: unknown, apiKey = key, headers: Record<string, string> = {}) =>
    t.app.http.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: { ...bearer(apiKey), ...headers },
      payload: body as object,
    });

  it('accepts a message, answers 202 with encoding and segments, and persists it with its queue entry', async () => {
    const res = await send({
      to: '+33612345678',
      from: 'Pizzeria',
      text: 'Votre pizza arrive !',
      client_ref: 'order-42',
    });
    expect(res.statusCode).toBe(202);
    const body = res.json();
    expect(body).toMatchObject({
      status: 'accepted',
      to: '+33612345678',
      from: 'Pizzeria',
      lane: 'transactional',
      encoding: 'GSM-7',
      segments: 1,
      parts: 1,
      client_ref: 'order-42',
    });
    expect(body.id).toMatch(/^msg_[0-9A-Z]{26}$/);
    const queued = await t.app.store.db
      .selectFrom('queue')
      .selectAll()
      .where('message_id', '=', body.id)
      .execute();
    expect(queued).toHaveLength(1);
    expect(queued[0]).toMatchObject({ lane: 'transactional', lane_rank: 1, claimed_by: null });
  });

  it('normalises a national number given with its country, and detects UCS-2', async () => {
    const res = await send({
      to: '06 12 34 56 78',
      country: 'FR',
      from: 'Pizzeria',
      text: 'Ça arrive, garçon',
    });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ to: '+33612345678', encoding: 'UCS-2', segments: 1 });
  });

  it('counts concatenated parts for long texts', async () => {
    const res = await send({ to: '+33612345678', from: 'Pizzeria', text: 'a'.repeat(161) });
    expect(res.json()).toMatchObject({ encoding: 'GSM-7', segments: 2, parts: 2 });
  });

  it('schedules a message with send_at and sets its expiry from validity_minutes', async () => {
    const sendAt = new Date(Date.now() + 3600_000);
    const res = await send({
      to: '+33612345678',
      from: 'Pizzeria',
      text: 'later',
      send_at: sendAt.toISOString(),
      validity_minutes: 30,
    });
    expect(res.statusCode).toBe(202);
    const body = res.json();
    expect(body.status).toBe('scheduled');
    expect(Date.parse(body.expires_at) - Date.parse(body.send_at)).toBe(30 * 60_000);
    const q = await t.app.store.db
      .selectFrom('queue')
      .selectAll()
      .where('message_id', '=', body.id)
      .executeTakeFirstOrThrow();
    expect(q.not_before).toBe(Date.parse(body.send_at));
  });

  it('shows a message with its history, and hides it from other tenants (404, not 403)', async () => {
    const { id } = (await send({ to: '+33612345678', from: 'Pizzeria', text: 'mine' })).json();
    const mine = await t.app.http.inject({ url: `/v1/messages/${id}`, headers: bearer(key) });
    expect(mine.statusCode).toBe(200);
    expect(mine.json()).toMatchObject({ id, text: 'mine', status: 'accepted', parts: [] });
    expect(mine.json().history).toEqual([expect.objectContaining({ status: 'accepted' })]);

    const theirs = await t.app.http.inject({ url: `/v1/messages/${id}`, headers: bearer(otherKey) });
    expect(theirs.statusCode).toBe(404);
    expect(theirs.json()).toMatchObject({ code: 'not_found' });
    expect(theirs.body).not.toContain('mine');

    const list = await t.app.http.inject({ url: '/v1/messages?limit=500', headers: bearer(otherKey) });
    expect(list.json().data.map((m: { id: string }) => m.id)).not.toContain(id);
  });

  it('lists newest first with filters and a cursor that walks every page exactly once', async () => {
    const tenant = await t.tenant('Lister');
    const sent: string[] = [];
    for (let i = 0; i < 7; i++) {
      const res = await send(
        {
          to: i % 2 ? '+33612345678' : '+33698765432',
          from: 'Shop',
          text: `n${i}`,
          client_ref: `r${i}`,
          lane: i < 2 ? 'otp' : 'bulk',
        },
        tenant.apiKey,
      );
      sent.push(res.json().id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const url: string = `/v1/messages?limit=3${cursor ? `&cursor=${cursor}` : ''}`;
      const page = (await t.app.http.inject({ url, headers: bearer(tenant.apiKey) })).json();
      seen.push(...page.data.map((m: { id: string }) => m.id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...sent].reverse());

    const byLane = (
      await t.app.http.inject({ url: '/v1/messages?lane=otp', headers: bearer(tenant.apiKey) })
    ).json();
    expect(byLane.data.map((m: { id: string }) => m.id)).toEqual([sent[1], sent[0]]);
    const byTo = (
      await t.app.http.inject({ url: '/v1/messages?to=%2B33612345678', headers: bearer(tenant.apiKey) })
    ).json();
    expect(byTo.data).toHaveLength(3);
    const byRef = (
      await t.app.http.inject({ url: '/v1/messages?client_ref=r4', headers: bearer(tenant.apiKey) })
    ).json();
    expect(byRef.data.map((m: { id: string }) => m.id)).toEqual([sent[4]]);
    const byStatus = (
      await t.app.http.inject({ url: '/v1/messages?status=delivered', headers: bearer(tenant.apiKey) })
    ).json();
    expect(byStatus.data).toEqual([]);
    const future = new Date(Date.now() + 60_000).toISOString();
    const byTime = (
      await t.app.http.inject({
        url: `/v1/messages?created_after=${encodeURIComponent(future)}`,
        headers: bearer(tenant.apiKey),
      })
    ).json();
    expect(byTime.data).toEqual([]);
    const bad = await t.app.http.inject({
      url: '/v1/messages?cursor=garbage',
      headers: bearer(tenant.apiKey),
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('invalid_cursor');
  });

  it('filters by number: newest first page by page, only the caller’s own, with the other filters', async () => {
    const tenant = await t.tenant('Numbers');
    const rival = await t.tenant('Numbers rival');
    const to = '+33611122233';
    const mine: string[] = [];
    for (let i = 0; i < 5; i++) {
      mine.push(
        (await send({ to, from: 'Shop', text: `m${i}`, lane: i < 2 ? 'otp' : 'bulk' }, tenant.apiKey)).json()
          .id,
      );
      // The same number for another tenant, and another number for this one: neither may show.
      expect((await send({ to, from: 'Rival', text: `r${i}` }, rival.apiKey)).statusCode).toBe(202);
      expect(
        (await send({ to: '+33611122244', from: 'Shop', text: `o${i}` }, tenant.apiKey)).statusCode,
      ).toBe(202);
    }
    const list = async (query: string) =>
      (
        await t.app.http.inject({
          url: `/v1/messages?to=%2B33611122233&${query}`,
          headers: bearer(tenant.apiKey),
        })
      ).json();

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await list(`limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.data.every((m: { to: string }) => m.to === to)).toBe(true);
      seen.push(...page.data.map((m: { id: string }) => m.id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...mine].reverse());

    expect((await list('lane=otp')).data.map((m: { id: string }) => m.id)).toEqual([mine[1], mine[0]]);
    expect((await list('status=accepted&lane=bulk')).data).toHaveLength(3);
    const future = encodeURIComponent(new Date(Date.now() + 60_000).toISOString());
    expect((await list(`created_after=${future}`)).data).toEqual([]);
    expect((await list(`created_before=${future}&limit=3`)).data.map((m: { id: string }) => m.id)).toEqual(
      [...mine].reverse().slice(0, 3),
    );
    // A cursor from a listing without the number filter pages the number's messages after it.
    expect(
      (await list(`cursor=${Buffer.from(mine[3]!).toString('base64url')}`)).data.map(
        (m: { id: string }) => m.id,
      ),
    ).toEqual([mine[2], mine[1], mine[0]]);
  });

  it('accepts and rejects batch items on their own, in request order', async () => {
    const res = await t.app.http.inject({
      method: 'POST',
      url: '/v1/messages/batch',
      headers: bearer(key),
      payload: {
        messages: [
          { to: '+33612345678', from: 'Pizzeria', text: 'one' },
          { to: '+331', from: 'Pizzeria', text: 'bad number' },
          { to: '+33612345678', from: 'Pizzeria', text: '' },
          { to: '+33612345678', from: 'Pizzeria', text: 'four', lane: 'bulk' },
        ],
      },
    });
    expect(res.statusCode).toBe(202);
    const body = res.json();
    expect(body.accepted).toBe(2);
    expect(body.rejected).toBe(2);
    expect(body.results.map((r: { status: string }) => r.status)).toEqual([
      'accepted',
      'rejected',
      'rejected',
      'accepted',
    ]);
    expect(body.results[1].error).toMatchObject({ code: 'invalid_phone_number', field: 'messages/1/to' });
    expect(body.results[2].error).toMatchObject({ code: 'empty_text', field: 'messages/2/text' });
    const ids = [body.results[0].message.id, body.results[3].message.id];
    const stored = await t.app.store.db.selectFrom('messages').select('id').where('id', 'in', ids).execute();
    expect(stored).toHaveLength(2);
  });

  it('judges each number of a large batch as it would alone (numbers checked on a worker thread)', async () => {
    // 40 items: past THREAD_MIN_BATCH, so the destinations are normalised on phone-pool's thread.
    const numbers = ['+33 6 12 34 56 78', '+331', '0612345678', '+33 1 23 45 67 89', '0044 7911 123456'];
    const messages = Array.from({ length: 40 }, (_, i) => ({
      to: numbers[i % numbers.length],
      ...(i % 10 === 2 ? { country: 'fr' } : {}),
      from: 'Pizzeria',
      text: `item ${i}`,
    }));
    const res = await t.app.http.inject({
      method: 'POST',
      url: '/v1/messages/batch',
      headers: bearer(key),
      payload: { messages },
    });
    expect(res.statusCode).toBe(202);
    const body = res.json();
    const expected = messages.map((m, i) => {
      if (m.to === '+331') return { code: 'invalid_phone_number', field: `messages/${i}/to` };
      if (m.to === '0612345678' && !m.country)
        return { code: 'invalid_phone_number', field: `messages/${i}/to` };
      if (m.to.startsWith('+33 1')) return { code: 'phone_number_not_mobile', field: `messages/${i}/to` };
      return m.to === '0044 7911 123456' ? '+447911123456' : '+33612345678';
    });
    body.results.forEach((r: { status: string; message?: { to: string }; error?: object }, i: number) => {
      const want = expected[i]!;
      if (typeof want === 'string') expect(r.message?.to, `item ${i}`).toBe(want);
      else expect(r.error, `item ${i}`).toMatchObject(want);
    });
    expect(body.accepted).toBe(expected.filter((e) => typeof e === 'string').length);
  });

  it('replays the first answer for a retried Idempotency-Key and creates nothing new', async () => {
    const tenant = await t.tenant('Idem');
    const body = { to: '+33612345678', from: 'Pizzeria', text: 'only once' };
    const first = await send(body, tenant.apiKey, { 'idempotency-key': 'order-7-confirmation' });
    const second = await send(body, tenant.apiKey, { 'idempotency-key': 'order-7-confirmation' });
    expect(first.statusCode).toBe(202);
    expect(second.statusCode).toBe(202);
    expect(second.json()).toEqual(first.json());
    expect(second.headers['idempotent-replayed']).toBe('true');
    const count = await t.app.store.db
      .selectFrom('messages')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('tenant_id', '=', tenant.id)
      .executeTakeFirstOrThrow();
    expect(Number(count.n)).toBe(1);

    const reused = await send({ ...body, text: 'something else' }, tenant.apiKey, {
      'idempotency-key': 'order-7-confirmation',
    });
    expect(reused.statusCode).toBe(422);
    expect(reused.json().code).toBe('idempotency_key_reused');

    // Keys are per tenant: another tenant may use the same key for its own request.
    const other = await send(body, otherKey, { 'idempotency-key': 'order-7-confirmation' });
    expect(other.statusCode).toBe(202);
    expect(other.json().id).not.toBe(first.json().id);
  });

  it('creates one message when the same Idempotency-Key is sent concurrently', async () => {
    const tenant = await t.tenant('Concurrent');
    const body = { to: '+33612345678', from: 'Pizzeria', text: 'race' };
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => send(body, tenant.apiKey, { 'idempotency-key': 'same' })),
    );
    const codes = answers.map((a) => a.statusCode);
    expect(codes.every((c) => c === 202 || c === 409)).toBe(true);
    const ids = new Set(answers.filter((a) => a.statusCode === 202).map((a) => a.json().id));
    expect(ids.size).toBe(1);
    const stored = await t.app.store.db
      .selectFrom('messages')
      .select('id')
      .where('tenant_id', '=', tenant.id)
      .execute();
    expect(stored).toHaveLength(1);
  });

  it('makes batch requests idempotent as a whole', async () => {
    const tenant = await t.tenant('IdemBatch');
    const payload = {
      messages: [
        { to: '+33612345678', from: 'Shop', text: 'a' },
        { to: 'nope', from: 'Shop', text: 'b' },
      ],
    };
    const headers = { ...bearer(tenant.apiKey), 'idempotency-key': 'batch-1' };
    const a = await t.app.http.inject({ method: 'POST', url: '/v1/messages/batch', headers, payload });
    const b = await t.app.http.inject({ method: 'POST', url: '/v1/messages/batch', headers, payload });
    // The replay is the first answer's text, byte for byte (both are JSON.stringify's).
    expect(a.statusCode).toBe(202);
    expect(a.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(b.headers['idempotent-replayed']).toBe('true');
    expect(b.body).toBe(a.body);
    expect(a.json()).toMatchObject({ accepted: 1, rejected: 1 });
    const stored = await t.app.store.db
      .selectFrom('messages')
      .select('id')
      .where('tenant_id', '=', tenant.id)
      .execute();
    expect(stored).toHaveLength(1);
  });
});

// SQLite indexes the number alone (migration 012); PostgreSQL's (tenant_id, to_number, id) needs no help.
describe('messages listed by number on SQLite', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(databaseKinds.find((k) => k.name === 'sqlite')!);
  });
  afterAll(() => t.close());

  it('upgrades an existing database to the number’s own index, and finds its messages there', async () => {
    const target = await databaseKinds.find((k) => k.name === 'sqlite')!.create();
    const store = openStore(parseConfig({ data_dir: target.dataDir }));
    try {
      const migrator = new Migrator({ db: store.db, provider: migrationProvider('sqlite') });
      expect((await migrator.migrateTo('011_heap_only_status')).error).toBeUndefined();
      await store.db
        .insertInto('tenants')
        .values({ id: 't1', name: 'Shop', webhook_secret: 's', created_at: 0 } as never)
        .execute();
      const ids = [newId('msg'), newId('msg'), newId('msg')];
      await store.db
        .insertInto('messages')
        .values(ids.map((id) => minimalMessageRow(id, 't1')))
        .execute();
      expect((await migrator.migrateToLatest()).error).toBeUndefined();
      const indexes = await store.db
        .selectFrom('sqlite_master' as never)
        .select('name' as never)
        .where('tbl_name' as never, '=', 'messages' as never)
        .execute();
      const names = indexes.map((r) => (r as { name: string }).name);
      expect(names).toContain('messages_to');
      expect(names).not.toContain('messages_tenant_to');
      const page = await listMessages(store, 't1', { to: '+33612345678', limit: 2 });
      expect(page.data.map((m) => m.id)).toEqual([ids[2], ids[1]]);
      const rest = await listMessages(store, 't1', {
        to: '+33612345678',
        limit: 2,
        cursor: page.next_cursor!,
      });
      expect(rest).toEqual({ data: [expect.objectContaining({ id: ids[0] })], next_cursor: null });
    } finally {
      await store.close();
      await target.drop();
    }
  });

  it('walks the number’s own index, whatever comes with the filter', async () => {
    const cursor = encodeCursor('msg_01JD0000000000000000000000');
    const others: Partial<ListFilters>[] = [
      {},
      { cursor },
      { status: 'accepted', lane: 'bulk' },
      { status: 'failed' },
      { client_ref: 'r1' },
      { from: 0, until: Date.now(), cursor },
    ];
    for (const filters of others) {
      const q = listQuery(t.app.store, 'ten_x', { to: '+33611122233', limit: 50, ...filters }).compile();
      const plan = await t.app.store.db.executeQuery<{ detail: string }>(
        CompiledQuery.raw(`explain query plan ${q.sql}`, [...q.parameters]),
      );
      const steps = plan.rows.map((r) => r.detail).join(' | ');
      // In rowid order: a page reads its own rows only, never all of the number's to sort them.
      expect(steps, JSON.stringify(filters)).toMatch(
        /^SEARCH messages USING INDEX messages_to \(to_number=\?/,
      );
      expect(steps, JSON.stringify(filters)).not.toContain('TEMP B-TREE');
    }
  });
});
