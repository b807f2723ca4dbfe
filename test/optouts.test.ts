import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withOptoutMention } from '../src/optouts/optouts.js';
import { bearer, startTestApp, type TestApp } from './helpers/app.js';
import { databaseKinds } from './helpers/databases.js';
import { WebhookReceiver } from './helpers/receiver.js';
import { ensureBuilt, runCli } from './helpers/server-process.js';

interface Event {
  type: string;
  data: Record<string, unknown>;
}

/**
 * The tenant's opt-out list (/v1/optouts), the refusal of bulk messages to opted-out numbers, and the
 * opt-out mention appended to bulk messages (account setting and CLI).
 */
describe.each(databaseKinds)('Opt-outs on $name', (kind) => {
  let t: TestApp;
  let receiver: WebhookReceiver;
  let hookUrl: string;

  beforeAll(async () => {
    ensureBuilt();
    receiver = new WebhookReceiver();
    hookUrl = await receiver.start();
    // Listening starts the webhook sender; no carrier is needed here.
    t = await startTestApp(kind, {}, { listen: true });
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.stop();
  });

  const http = () => t.app.http;
  const post = (apiKey: string, payload: unknown) =>
    http().inject({
      method: 'POST',
      url: '/v1/optouts',
      headers: bearer(apiKey),
      payload: payload as object,
    });
  const send = (apiKey: string, payload: Record<string, unknown>) =>
    http().inject({
      method: 'POST',
      url: '/v1/messages',
      headers: bearer(apiKey),
      payload: { from: 'Shop', text: 'Promo', ...payload },
    });
  const messageCount = async (tenantId: string) =>
    Number(
      (
        await t.app.store.db
          .selectFrom('messages')
          .select((eb) => eb.fn.countAll().as('n'))
          .where('tenant_id', '=', tenantId)
          .executeTakeFirstOrThrow()
      ).n,
    );

  it('adds (normalised, idempotent), lists, filters and removes, with webhooks', async () => {
    const a = await t.tenant('A', hookUrl);
    const created = await post(a.apiKey, { phone: '06 12 34 56 78', country: 'FR' });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toEqual({
      phone: '+33612345678',
      source: 'api',
      detail: null,
      created_at: expect.any(String),
    });
    const again = await post(a.apiKey, { phone: '+33612345678' });
    expect(again.statusCode).toBe(200);
    expect(again.json().created_at).toBe(created.json().created_at);

    const filtered = await http().inject({
      url: '/v1/optouts?phone=%2B33612345678',
      headers: bearer(a.apiKey),
    });
    expect(filtered.json()).toEqual({ data: [created.json()], next_cursor: null });
    // An unencoded + in a query string arrives as a space: still understood.
    const unencoded = await http().inject({
      url: '/v1/optouts?phone=+33612345678',
      headers: bearer(a.apiKey),
    });
    expect(unencoded.json().data).toHaveLength(1);

    const removed = await http().inject({
      method: 'DELETE',
      url: `/v1/optouts/${encodeURIComponent('+33612345678')}`,
      headers: bearer(a.apiKey),
    });
    expect(removed.statusCode).toBe(204);
    const gone = await http().inject({
      method: 'DELETE',
      url: '/v1/optouts/%2B33612345678',
      headers: bearer(a.apiKey),
    });
    expect(gone.json()).toMatchObject({ status: 404, code: 'not_found' });
    expect((await http().inject({ url: '/v1/optouts', headers: bearer(a.apiKey) })).json().data).toEqual([]);

    await receiver.waitFor(2);
    const events = receiver.requests.map((r) => JSON.parse(r.body) as Event);
    expect(events.map((e) => [e.type, e.data.phone])).toEqual([
      ['optout.created', '+33612345678'],
      ['optout.deleted', '+33612345678'],
    ]);
    expect(events[1]!.data).toMatchObject({ source: 'api', deleted_by: 'api' });
  });

  it('refuses bad input with a specific problem and changes nothing', async () => {
    const b = await t.tenant('B');
    const cases: [unknown, string, string | undefined][] = [
      [{ phone: '12345' }, 'invalid_phone_number', 'phone'],
      [{ phone: '0612345678' }, 'invalid_phone_number', 'phone'],
      [{ phone: '+33145678900' }, 'phone_number_not_mobile', 'phone'],
      [{ phone: '0612345678', country: 'ZZ' }, 'invalid_field', 'country'],
      [{}, 'missing_field', 'phone'],
      [{ phone: '+33612345678', note: 'x' }, 'unknown_field', undefined],
      [{ phone: 33612345678 }, 'invalid_field', 'phone'],
    ];
    for (const [payload, code, field] of cases) {
      const res = await post(b.apiKey, payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().code, JSON.stringify(payload)).toBe(code);
      if (field) expect(res.json().field).toBe(field);
    }
    const badDelete = await http().inject({
      method: 'DELETE',
      url: '/v1/optouts/hello',
      headers: bearer(b.apiKey),
    });
    expect(badDelete.json()).toMatchObject({ status: 400, code: 'invalid_phone_number' });
    const badFilter = await http().inject({ url: '/v1/optouts?phone=nope', headers: bearer(b.apiKey) });
    expect(badFilter.statusCode).toBe(400);
    const badCursor = await http().inject({ url: '/v1/optouts?cursor=bm9wZQ', headers: bearer(b.apiKey) });
    expect(badCursor.json().code).toBe('invalid_cursor');
    const badLimit = await http().inject({ url: '/v1/optouts?limit=501', headers: bearer(b.apiKey) });
    expect(badLimit.statusCode).toBe(400);
    expect((await http().inject({ url: '/v1/optouts' })).statusCode).toBe(401);
    const rows = await t.app.store.db
      .selectFrom('optouts')
      .selectAll()
      .where('tenant_id', '=', b.id)
      .execute();
    expect(rows).toEqual([]);
  });

  it('pages with a cursor, and keeps each tenant to its own list', async () => {
    const c = await t.tenant('C');
    const d = await t.tenant('D');
    const phones = ['+33612000005', '+33612000001', '+33612000004', '+33612000002', '+33612000003'];
    for (const phone of phones) expect((await post(c.apiKey, { phone })).statusCode).toBe(201);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const url: string = `/v1/optouts?limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const page = (await http().inject({ url, headers: bearer(c.apiKey) })).json();
      seen.push(...page.data.map((o: { phone: string }) => o.phone));
      cursor = page.next_cursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual([...phones].sort());

    expect((await http().inject({ url: '/v1/optouts', headers: bearer(d.apiKey) })).json().data).toEqual([]);
    const foreign = await http().inject({
      method: 'DELETE',
      url: '/v1/optouts/%2B33612000001',
      headers: bearer(d.apiKey),
    });
    expect(foreign.statusCode).toBe(404);
    // D's own bulk to C's opted-out number is fine: opt-outs are per tenant.
    expect((await send(d.apiKey, { to: '+33612000001', lane: 'bulk' })).statusCode).toBe(202);
  });

  it('refuses bulk messages to opted-out numbers (single and per batch item), never otp or transactional', async () => {
    const e = await t.tenant('E');
    await post(e.apiKey, { phone: '+33612000010' });
    const before = await messageCount(e.id);

    const bulk = await send(e.apiKey, { to: '0612000010', country: 'FR', lane: 'bulk' });
    expect(bulk.statusCode).toBe(422);
    expect(bulk.json()).toMatchObject({
      type: 'urn:relais:problem:recipient_opted_out',
      code: 'recipient_opted_out',
      field: 'to',
    });
    expect(await messageCount(e.id)).toBe(before);
    expect((await send(e.apiKey, { to: '+33612000010', lane: 'otp' })).statusCode).toBe(202);
    expect((await send(e.apiKey, { to: '+33612000010', lane: 'transactional' })).statusCode).toBe(202);
    expect((await send(e.apiKey, { to: '+33612000010' })).statusCode).toBe(202); // default lane

    const batch = await http().inject({
      method: 'POST',
      url: '/v1/messages/batch',
      headers: bearer(e.apiKey),
      payload: {
        messages: [
          { to: '+33612000011', from: 'Shop', text: 'Promo 1', lane: 'bulk' },
          { to: '+33612000010', from: 'Shop', text: 'Promo 2', lane: 'bulk' },
          { to: '+33612000010', from: 'Shop', text: 'Your code', lane: 'otp' },
          { to: 'nope', from: 'Shop', text: 'Promo 3', lane: 'bulk' },
        ],
      },
    });
    expect(batch.statusCode).toBe(202);
    expect(batch.json()).toMatchObject({ accepted: 2, rejected: 2 });
    expect(
      batch
        .json()
        .results.map((r: { status: string; error?: { code: string; field: string } }) => [
          r.status,
          r.error?.code,
          r.error?.field,
        ]),
    ).toEqual([
      ['accepted', undefined, undefined],
      ['rejected', 'recipient_opted_out', 'messages/1/to'],
      ['accepted', undefined, undefined],
      ['rejected', 'invalid_phone_number', 'messages/3/to'],
    ]);
    expect(await messageCount(e.id)).toBe(before + 5);

    await http().inject({ method: 'DELETE', url: '/v1/optouts/%2B33612000010', headers: bearer(e.apiKey) });
    expect((await send(e.apiKey, { to: '+33612000010', lane: 'bulk' })).statusCode).toBe(202);
  });

  it('appends the account mention to bulk messages before counting segments', async () => {
    const f = await t.tenant('F');
    const account = () => http().inject({ url: '/v1/account', headers: bearer(f.apiKey) });
    expect((await account()).json().optout_mention).toBeNull();
    const patch = (payload: unknown) =>
      http().inject({
        method: 'PATCH',
        url: '/v1/account',
        headers: bearer(f.apiKey),
        payload: payload as object,
      });
    for (const bad of ['x'.repeat(41), 'STOP\nau 36111']) {
      const res = await patch({ optout_mention: bad, webhook_url: 'http://127.0.0.1:9/hook' });
      expect(res.json()).toMatchObject({
        status: 400,
        code: 'invalid_optout_mention',
        field: 'optout_mention',
      });
    }
    // Nothing of a refused PATCH was applied.
    expect((await account()).json()).toMatchObject({ optout_mention: null, webhook_url: null });
    expect((await patch({ optout_mention: 42 })).statusCode).toBe(400);
    expect((await patch({ optout_mention: ' STOP au 36111 ' })).json().optout_mention).toBe('STOP au 36111');

    const text = 'a'.repeat(150); // one GSM-7 segment alone; two with "\nSTOP au 36111"
    const bulk = await send(f.apiKey, { to: '+33612000020', text, lane: 'bulk' });
    expect(bulk.json()).toMatchObject({ segments: 2, encoding: 'GSM-7' });
    const stored = (
      await http().inject({ url: `/v1/messages/${bulk.json().id}`, headers: bearer(f.apiKey) })
    ).json();
    expect(stored.text).toBe(`${text}\nSTOP au 36111`);
    const plain = await send(f.apiKey, { to: '+33612000020', text, lane: 'transactional' });
    expect(plain.json().segments).toBe(1);
    const plainStored = (
      await http().inject({ url: `/v1/messages/${plain.json().id}`, headers: bearer(f.apiKey) })
    ).json();
    expect(plainStored.text).toBe(text);
    // A text that already ends with it gets it once.
    const ending = await send(f.apiKey, { to: '+33612000020', text: 'Promo\nSTOP au 36111', lane: 'bulk' });
    const endingStored = (
      await http().inject({ url: `/v1/messages/${ending.json().id}`, headers: bearer(f.apiKey) })
    ).json();
    expect(endingStored.text).toBe('Promo\nSTOP au 36111');
    expect(withOptoutMention('Promo  ', 'STOP au 36111')).toBe('Promo\nSTOP au 36111');

    // A batch: bulk items get it, others not.
    const batch = await http().inject({
      method: 'POST',
      url: '/v1/messages/batch',
      headers: bearer(f.apiKey),
      payload: {
        messages: [
          { to: '+33612000021', from: 'Shop', text, lane: 'bulk' },
          { to: '+33612000021', from: 'Shop', text, lane: 'otp' },
        ],
      },
    });
    expect(batch.json().results.map((r: { message: { segments: number } }) => r.message.segments)).toEqual([
      2, 1,
    ]);

    expect((await patch({ optout_mention: null })).json().optout_mention).toBeNull();
    expect((await send(f.apiKey, { to: '+33612000020', text, lane: 'bulk' })).json().segments).toBe(1);
  });

  it('CLI: tenant create and update --optout-mention', async () => {
    const env = { DATABASE_URL: t.config.database_url!, RELAIS_LOG_LEVEL: 'silent' };
    const created = runCli(['tenant', 'create', '--name', 'Cli', '--optout-mention', 'STOP au 36111'], env);
    expect(created.status, created.stderr).toBe(0);
    const tenantId = JSON.parse(created.stdout).tenant_id as string;
    const mentionOf = async () =>
      (
        await t.app.store.db
          .selectFrom('tenants')
          .select('optout_mention')
          .where('id', '=', tenantId)
          .executeTakeFirstOrThrow()
      ).optout_mention;
    expect(await mentionOf()).toBe('STOP au 36111');

    const updated = runCli(['tenant', 'update', '--tenant', tenantId, '--optout-mention', 'STOP 38000'], env);
    expect(updated.status, updated.stderr).toBe(0);
    expect(JSON.parse(updated.stdout)).toEqual({ tenant_id: tenantId, optout_mention: 'STOP 38000' });
    expect(await mentionOf()).toBe('STOP 38000');

    const tooLong = runCli(
      ['tenant', 'update', '--tenant', tenantId, '--optout-mention', 'x'.repeat(41)],
      env,
    );
    expect(tooLong.status).toBe(1);
    expect(tooLong.stderr).toMatch(/opt-out mention/);
    expect(await mentionOf()).toBe('STOP 38000');
    const nothing = runCli(['tenant', 'update', '--tenant', tenantId], env);
    expect(nothing.status).toBe(2);
    const cleared = runCli(['tenant', 'update', '--tenant', tenantId, '--optout-mention', ''], env);
    expect(cleared.status, cleared.stderr).toBe(0);
    expect(await mentionOf()).toBeNull();
  });
});
