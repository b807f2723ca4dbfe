import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifySignature } from '../src/webhooks/signature.js';
import { bearer, startTestApp } from './helpers/app.js';
import { type CarrierRig, startCarrierRig, waitBound } from './helpers/carrier.js';
import { databaseKinds } from './helpers/databases.js';
import { WebhookReceiver } from './helpers/receiver.js';
import { ensureBuilt, runCli } from './helpers/server-process.js';

const ADMIN_TOKEN = 'operator-token-0123456789';
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Event {
  id: string;
  type: string;
  data: Record<string, unknown>;
}

/**
 * Mobile-originated messages over real SMPP: the simulator sends deliver_sm to the platform's bind;
 * each is stored, attributed to a tenant (and campaign), pushed as a signed webhook, and STOP/START
 * keywords change the tenant's opt-out list.
 */
describe.each(databaseKinds)('Inbound messages on $name', (kind) => {
  let rig: CarrierRig;
  let receiver: WebhookReceiver;
  let hookUrl: string;
  const env = () => ({ DATABASE_URL: rig.t.config.database_url!, RELAIS_LOG_LEVEL: 'silent' });

  beforeAll(async () => {
    ensureBuilt();
    receiver = new WebhookReceiver();
    hookUrl = await receiver.start();
    rig = await startCarrierRig(kind, {}, {}, { admin: { token: ADMIN_TOKEN } });
    await waitBound(rig);
  });
  afterAll(async () => {
    await rig?.close();
    await receiver?.stop();
  });

  const http = () => rig.t.app.http;
  const assign = async (number: string, tenantId: string) => {
    const res = await http().inject({
      method: 'POST',
      url: '/admin/numbers',
      headers: admin,
      payload: { number, tenant_id: tenantId },
    });
    expect(res.statusCode, res.body).toBe(201);
  };
  /** Sends an MO from the carrier; resolves with the deliver_sm_resp status once acknowledged. */
  const mo = (from: string, to: string, text: string) => rig.sim.sendMo({ from, to, text });
  const inboundRows = (from: string) =>
    rig.t.app.store.db
      .selectFrom('inbound_messages')
      .selectAll()
      .where('from_number', '=', from)
      .orderBy('id')
      .execute();
  const events = (type: string, match: (e: Event) => boolean = () => true): Event[] =>
    receiver.requests.map((r) => JSON.parse(r.body) as Event).filter((e) => e.type === type && match(e));
  const waitEvent = (type: string, match: (e: Event) => boolean) =>
    until(`a ${type} webhook`, () => events(type, match)[0]);
  const campaign = async (tenantId: string, id: string) => {
    const now = Date.now();
    await rig.t.app.store.db
      .insertInto('campaigns')
      .values({
        id,
        tenant_id: tenantId,
        name: 'Black Friday',
        list_ids: '[]',
        sender: 'Shop',
        template: 'Promo',
        status: 'running',
        targeted: 0,
        skipped_optout: 0,
        skipped_invalid: 0,
        queued: 0,
        replies: 0,
        optouts: 0,
        created_at: now,
        updated_at: now,
      })
      .execute();
  };
  const campaignCounts = (id: string) =>
    rig.t.app.store.db
      .selectFrom('campaigns')
      .select(['replies', 'optouts'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();

  it('stores a reply, attributes it to the last message and its campaign, and pushes message.inbound', async () => {
    const a = await rig.t.tenant('Pizzeria', hookUrl);
    const other = await rig.t.tenant('Other');
    await assign('36111', a.id);
    await campaign(a.id, 'cmp_01JB0000000000000000000001');
    const sent = await rig.t.app.messages.submit(a.id, {
      to: '+33612340001',
      from: 'Pizzeria',
      text: 'Black Friday: -20% ce soir',
      lane: 'bulk',
      campaignId: 'cmp_01JB0000000000000000000001',
    });
    const messageId = (sent as { results: { accepted: { id: string } }[] }).results[0]!.accepted.id;

    // The carrier sends the number without its + (TON international), as real SMSCs do.
    expect(await mo('+33612340001', '36111', 'Merci, 2 pizzas svp')).toBe(0);
    // Acknowledged means committed: the row is there as soon as sendMo resolves.
    const [row] = await inboundRows('+33612340001');
    expect(row).toMatchObject({
      tenant_id: a.id,
      to_number: '36111',
      text: 'Merci, 2 pizzas svp',
      keyword: null,
      campaign_id: 'cmp_01JB0000000000000000000001',
      message_id: messageId,
      connector: 'carrier-a',
    });
    expect(row!.id).toMatch(/^mo_[0-9A-Z]{26}$/);
    expect(await campaignCounts('cmp_01JB0000000000000000000001')).toEqual({ replies: 1, optouts: 0 });

    const event = await waitEvent('message.inbound', (e) => e.data.id === row!.id);
    expect(event.data).toEqual({
      id: row!.id,
      from: '+33612340001',
      to: '36111',
      text: 'Merci, 2 pizzas svp',
      keyword: null,
      campaign_id: 'cmp_01JB0000000000000000000001',
      message_id: messageId,
      received_at: expect.any(String),
    });
    const request = receiver.requests.find((r) => JSON.parse(r.body).id === event.id)!;
    expect(
      verifySignature(a.webhookSecret, request.body, String(request.headers['relais-signature']), {
        nowSeconds: Date.now() / 1000,
      }),
    ).toBe(true);

    const one = await http().inject({ url: `/v1/inbound/${row!.id}`, headers: bearer(a.apiKey) });
    expect(one.statusCode).toBe(200);
    expect(one.json()).toEqual(event.data);
    const list = await http().inject({ url: '/v1/inbound', headers: bearer(a.apiKey) });
    expect(list.json().data.map((m: { id: string }) => m.id)).toContain(row!.id);
    // Another tenant sees nothing of it.
    const foreign = await http().inject({ url: `/v1/inbound/${row!.id}`, headers: bearer(other.apiKey) });
    expect(foreign.statusCode).toBe(404);
    expect(foreign.json().code).toBe('not_found');
    expect((await http().inject({ url: '/v1/inbound', headers: bearer(other.apiKey) })).json().data).toEqual(
      [],
    );
  });

  it('on a shared short code, a reply goes to the tenant that last sent to that phone', async () => {
    const b = await rig.t.tenant('B');
    const c = await rig.t.tenant('C');
    await assign('38000', b.id);
    await assign('38000', c.id);
    const phone = '+33612340002';
    await rig.send(b.apiKey, { to: phone, text: 'from B' });
    const fromC = await rig.send(c.apiKey, { to: phone, text: 'from C' });
    expect(await mo(phone, '38000', 'reply 1')).toBe(0);
    const fromB = await rig.send(b.apiKey, { to: phone, text: 'from B again' });
    expect(await mo(phone, '38000', 'reply 2')).toBe(0);

    const rows = await inboundRows(phone);
    expect(rows.map((r) => [r.text, r.tenant_id, r.message_id])).toEqual([
      ['reply 1', c.id, fromC],
      ['reply 2', b.id, fromB],
    ]);
    // A phone none of the sharing tenants ever wrote to: nobody can claim it; stored unassigned.
    const before = rig.t.app.inbound.counters.unattributed;
    expect(await mo('+33612340003', '38000', 'who are you?')).toBe(0);
    const [orphan] = await inboundRows('+33612340003');
    expect(orphan).toMatchObject({ tenant_id: null, text: 'who are you?' });
    expect(rig.t.app.inbound.counters.unattributed).toBe(before + 1);
  });

  it('a message to a number nobody owns is stored unassigned and acknowledged, never an error', async () => {
    const before = rig.t.app.inbound.counters.unknown_number;
    expect(await mo('+33612340004', '99999', 'hello?')).toBe(0);
    const [row] = await inboundRows('+33612340004');
    expect(row).toMatchObject({ tenant_id: null, to_number: '99999', keyword: null, campaign_id: null });
    expect(rig.t.app.inbound.counters.unknown_number).toBe(before + 1);
  });

  it('STOP (any case, accents, punctuation) opts out; bulk is then refused, otp is not; START opts back in', async () => {
    const d = await rig.t.tenant('Dolce', hookUrl);
    await assign('+33757000001', d.id);
    const phone = '+33612340005';
    await campaign(d.id, 'cmp_01JB0000000000000000000002');
    await rig.t.app.messages.submit(d.id, {
      to: phone,
      from: 'Dolce',
      text: 'Soldes',
      lane: 'bulk',
      campaignId: 'cmp_01JB0000000000000000000002',
    });

    // Not keywords: STOP must be the first word.
    expect(await mo(phone, '33757000001', 'please stop')).toBe(0);
    expect(await mo(phone, '33757000001', 'STOPPING soon')).toBe(0);
    expect((await inboundRows(phone)).map((r) => r.keyword)).toEqual([null, null]);

    // The destination arrives without + and still matches the number assigned as +33757000001.
    expect(await mo(phone, '33757000001', 'Arrêt.')).toBe(0);
    // A carrier redelivery of the same MO (its answer was lost): one row, one effect.
    expect(await mo(phone, '33757000001', 'Arrêt.')).toBe(0);
    const rows = await inboundRows(phone);
    expect(rows.map((r) => r.keyword)).toEqual([null, null, 'stop']);
    expect(rows.at(-1)).toMatchObject({ tenant_id: d.id, campaign_id: 'cmp_01JB0000000000000000000002' });
    expect(await campaignCounts('cmp_01JB0000000000000000000002')).toEqual({ replies: 3, optouts: 1 });

    const listed = await http().inject({
      url: `/v1/optouts?phone=${encodeURIComponent(phone)}`,
      headers: bearer(d.apiKey),
    });
    expect(listed.json().data).toEqual([
      { phone, source: 'keyword', detail: rows.at(-1)!.id, created_at: expect.any(String) },
    ]);
    await waitEvent('optout.created', (e) => e.data.phone === phone);
    await waitEvent('message.inbound', (e) => e.data.keyword === 'stop' && e.data.from === phone);

    // Bulk to that number is refused; otp and transactional still go.
    const bulk = await http().inject({
      method: 'POST',
      url: '/v1/messages',
      headers: bearer(d.apiKey),
      payload: { to: phone, from: 'Dolce', text: 'Encore une promo', lane: 'bulk' },
    });
    expect(bulk.statusCode).toBe(422);
    expect(bulk.json()).toMatchObject({ code: 'recipient_opted_out', field: 'to' });
    const otp = await rig.send(d.apiKey, { to: phone, from: 'Dolce', text: 'Code 123456', lane: 'otp' });
    await rig.waitForStatus([otp], ['delivered']);

    expect(await mo(phone, '33757000001', 'start')).toBe(0);
    const again = await rig.send(d.apiKey, { to: phone, from: 'Dolce', text: 'Welcome back', lane: 'bulk' });
    await rig.waitForStatus([again], ['delivered']);
    await waitEvent('optout.deleted', (e) => e.data.phone === phone && e.data.deleted_by === 'keyword');
    expect(events('optout.created', (e) => e.data.phone === phone)).toHaveLength(1);
    expect((await inboundRows(phone)).at(-1)!.keyword).toBe('start');

    // "Stop please": the first word counts.
    expect(await mo(phone, '33757000001', 'Stop please')).toBe(0);
    const after = await http().inject({
      url: `/v1/optouts?phone=${phone.slice(1)}`,
      headers: bearer(d.apiKey),
    });
    expect(after.statusCode).toBe(400); // a number without + is not E.164
    const relisted = await http().inject({
      url: `/v1/optouts?phone=${encodeURIComponent(phone)}`,
      headers: bearer(d.apiKey),
    });
    expect(relisted.json().data).toHaveLength(1);
  });

  it('an MO that cannot be stored is refused with a temporary error, so the carrier sends it again', async () => {
    const k = await rig.t.tenant('K');
    await assign('36777', k.id);
    const { sql } = await import('kysely');
    const db = rig.t.app.store.db;
    await sql`alter table inbound_messages rename to inbound_messages_away`.execute(db);
    try {
      expect(await mo('+33612340011', '36777', 'lost?')).toBe(0x64); // ESME_RX_T_APPN
    } finally {
      await sql`alter table inbound_messages_away rename to inbound_messages`.execute(db);
    }
    expect(await inboundRows('+33612340011')).toEqual([]);
    expect(await mo('+33612340011', '36777', 'lost?')).toBe(0);
    expect(await inboundRows('+33612340011')).toMatchObject([{ tenant_id: k.id, text: 'lost?' }]);
  });

  it('a long MO in several deliver_sm parts becomes one message', async () => {
    const e = await rig.t.tenant('Long');
    await assign('36222', e.id);
    const text = `${'Bonjour, je voudrais réserver une table pour quatre personnes samedi soir. '.repeat(3)}Merci !`;
    expect(text.length).toBeGreaterThan(160);
    expect(await mo('+33612340006', '36222', text)).toBe(0);
    // The simulator reports the first part's answer; the message is whole once the last part is in.
    const rows = await until('the assembled MO', async () => {
      const found = await inboundRows('+33612340006');
      return found.length > 0 ? found : undefined;
    });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ tenant_id: e.id, text });
    const waiting = await rig.t.app.store.db.selectFrom('inbound_parts').selectAll().execute();
    expect(waiting).toEqual([]);
  });

  it('an MO in UCS-2 arrives intact: every byte crosses the carrier link thread', async () => {
    const e = await rig.t.tenant('Unicode');
    await assign('36999', e.id);
    const text = 'Réservé pour 4 😀 ça marche ? Ω';
    expect(await mo('+33612340099', '36999', text)).toBe(0);
    const rows = await until('the UCS-2 MO', async () => {
      const found = await inboundRows('+33612340099');
      return found.length > 0 ? found : undefined;
    });
    expect(rows[0]).toMatchObject({ tenant_id: e.id, text });
  });

  it('the mention is on the bulk SMS the carrier receives', async () => {
    const f = await rig.t.tenant('Mention');
    const patched = await http().inject({
      method: 'PATCH',
      url: '/v1/account',
      headers: bearer(f.apiKey),
      payload: { optout_mention: 'STOP au 36111' },
    });
    expect(patched.statusCode, patched.body).toBe(200);
    const id = await rig.send(f.apiKey, {
      to: '+33612340007',
      from: 'Promo',
      text: 'Soldes -50%',
      lane: 'bulk',
    });
    await rig.waitForStatus([id], ['delivered']);
    const submit = rig.sim.received.find((r) => r.destination === '33612340007')!;
    expect(submit.text).toBe('Soldes -50%\nSTOP au 36111');
  });

  it('inbound API: pagination, bad cursor and limit, unknown id', async () => {
    const g = await rig.t.tenant('Pages');
    await assign('36333', g.id);
    for (const text of ['one', 'two', 'three']) expect(await mo('+33612340008', '36333', text)).toBe(0);
    const page1 = (await http().inject({ url: '/v1/inbound?limit=2', headers: bearer(g.apiKey) })).json();
    expect(page1.data.map((m: { text: string }) => m.text)).toEqual(['three', 'two']);
    const page2 = (
      await http().inject({
        url: `/v1/inbound?limit=2&cursor=${page1.next_cursor}`,
        headers: bearer(g.apiKey),
      })
    ).json();
    expect(page2).toMatchObject({ data: [{ text: 'one' }], next_cursor: null });

    const badCursor = await http().inject({ url: '/v1/inbound?cursor=bm9wZQ', headers: bearer(g.apiKey) });
    expect(badCursor.json()).toMatchObject({ status: 400, code: 'invalid_cursor' });
    const badLimit = await http().inject({ url: '/v1/inbound?limit=0', headers: bearer(g.apiKey) });
    expect(badLimit.statusCode).toBe(400);
    const unknownParam = await http().inject({ url: '/v1/inbound?colour=red', headers: bearer(g.apiKey) });
    expect(unknownParam.statusCode).toBe(400);
    const missing = await http().inject({
      url: '/v1/inbound/mo_01JB0000000000000000000000',
      headers: bearer(g.apiKey),
    });
    expect(missing.statusCode).toBe(404);
    const noKey = await http().inject({ url: '/v1/inbound' });
    expect(noKey.statusCode).toBe(401);
  });

  it('operator API: assign, list, share, remove, with validation and auth', async () => {
    const h = await rig.t.tenant('H');
    const i = await rig.t.tenant('I');
    const post = (payload: unknown, headers = admin) =>
      http().inject({ method: 'POST', url: '/admin/numbers', headers, payload: payload as object });
    expect((await post({ number: '36 444', tenant_id: h.id })).json()).toMatchObject({
      number: '36444',
      tenant_id: h.id,
    });
    expect((await post({ number: '36444', tenant_id: h.id })).statusCode).toBe(200); // already there
    expect((await post({ number: '36444', tenant_id: i.id })).statusCode).toBe(201); // shared

    const bad = await post({ number: '12ab', tenant_id: h.id });
    expect(bad.json()).toMatchObject({ status: 400, code: 'invalid_inbound_number', field: 'number' });
    expect((await post({ number: '36444' })).json()).toMatchObject({ status: 400, code: 'missing_field' });
    expect((await post({ number: '36444', tenant_id: h.id, extra: 1 })).statusCode).toBe(400);
    const ghost = await post({ number: '36444', tenant_id: 'ten_01JB0000000000000000000000' });
    expect(ghost.json()).toMatchObject({ status: 404, code: 'not_found', field: 'tenant_id' });

    const wrong = await post(
      { number: '36444', tenant_id: h.id },
      { authorization: 'Bearer not-the-token-at-all' },
    );
    expect(wrong.statusCode).toBe(401);
    const tenantKey = await post({ number: '36444', tenant_id: h.id }, bearer(h.apiKey));
    expect(tenantKey.statusCode).toBe(401);

    const listed = await http().inject({ url: `/admin/numbers?tenant_id=${i.id}`, headers: admin });
    expect(listed.json().data).toEqual([
      { number: '36444', tenant_id: i.id, created_at: expect.any(String) },
    ]);
    const removed = await http().inject({
      method: 'DELETE',
      url: `/admin/numbers/36444?tenant_id=${h.id}`,
      headers: admin,
    });
    expect(removed.statusCode).toBe(204);
    const gone = await http().inject({
      method: 'DELETE',
      url: `/admin/numbers/36444?tenant_id=${h.id}`,
      headers: admin,
    });
    expect(gone.json()).toMatchObject({ status: 404, code: 'not_found' });
    const noTenant = await http().inject({ method: 'DELETE', url: '/admin/numbers/36444', headers: admin });
    expect(noTenant.statusCode).toBe(400);
    // I still owns it, alone now: its replies reach it without any message sent first.
    expect(await mo('+33612340009', '36444', 'hi')).toBe(0);
    expect((await inboundRows('+33612340009'))[0]).toMatchObject({ tenant_id: i.id });
  });

  it('CLI: number add, list, remove, with usage and input errors', async () => {
    const j = await rig.t.tenant('J');
    const added = runCli(['number', 'add', '--tenant', j.id, '--number', '36555'], env());
    expect(added.status, added.stderr).toBe(0);
    expect(JSON.parse(added.stdout)).toMatchObject({
      created: true,
      number: { number: '36555', tenant_id: j.id },
    });
    const listed = runCli(['number', 'list', '--tenant', j.id], env());
    expect(JSON.parse(listed.stdout)).toEqual([
      { number: '36555', tenant_id: j.id, created_at: expect.any(String) },
    ]);
    // The running server sees the CLI's assignment at once.
    expect(await mo('+33612340010', '36555', 'via CLI')).toBe(0);
    expect((await inboundRows('+33612340010'))[0]).toMatchObject({ tenant_id: j.id });

    const badNumber = runCli(['number', 'add', '--tenant', j.id, '--number', 'abc'], env());
    expect(badNumber.status).toBe(1);
    expect(badNumber.stderr).toMatch(/not a number or short code/);
    const noNumber = runCli(['number', 'add', '--tenant', j.id], env());
    expect(noNumber.status).toBe(2);
    expect(noNumber.stderr).toMatch(/--number is required/);
    const noTenant = runCli(['number', 'add', '--tenant', 'ten_nope', '--number', '36555'], env());
    expect(noTenant.status).toBe(1);

    const removed = runCli(['number', 'remove', '--tenant', j.id, '--number', '36555'], env());
    expect(removed.status, removed.stderr).toBe(0);
    const again = runCli(['number', 'remove', '--tenant', j.id, '--number', '36555'], env());
    expect(again.status).toBe(1);
    expect(JSON.parse(runCli(['number', 'list', '--tenant', j.id], env()).stdout)).toEqual([]);
  });
});

describe.each(databaseKinds)('Operator numbers API without admin.token on $name', (kind) => {
  it('answers 403 to everyone', async () => {
    const t = await startTestApp(kind);
    try {
      const res = await t.app.http.inject({
        method: 'POST',
        url: '/admin/numbers',
        headers: admin,
        payload: { number: '36111', tenant_id: 'x' },
      });
      expect(res.json()).toMatchObject({ status: 403, code: 'admin_api_disabled' });
      expect(await t.app.store.db.selectFrom('numbers').selectAll().execute()).toEqual([]);
    } finally {
      await t.close();
    }
  });
});
