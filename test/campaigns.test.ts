import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { addMembers, seedContactId, seedList } from '../src/bench/campaign-seed.js';
import { isWindowOpen, recipientZone } from '../src/campaigns/send-window.js';
import { parseTemplate, renderTemplate } from '../src/campaigns/templates.js';
import { ManualClock } from '../src/shared/clock.js';
import { RelaisError } from '../src/shared/errors.js';
import { createLogger } from '../src/shared/logger.js';
import { bearer, startTestApp, type TestApp } from './helpers/app.js';
import { databaseKinds } from './helpers/databases.js';

// A connector that is never started (the app does not listen): it only sets the carriers' capacity.
const CAPACITY = {
  connectors: [{ name: 'c', host: '127.0.0.1', port: 9, system_id: 'relais', tps: 100 }],
};

describe('campaign templates', () => {
  const contact = {
    phone: '+33612000001',
    first_name: 'Ana',
    last_name: null,
    attributes: { city: 'Lyon', n: 3 },
  };

  it('renders fields, attributes and fallbacks', () => {
    const t = parseTemplate(
      'Hi {{first_name|you}} {{last_name|}}from {{ city |here}} #{{n|0}} {{phone}} {{zip|75000}}',
    );
    expect(t.variables).toEqual(['first_name', 'last_name', 'city', 'n', 'phone', 'zip']);
    expect(renderTemplate(t, contact)).toBe('Hi Ana from Lyon #3 +33612000001 75000');
    expect(renderTemplate(t, { ...contact, first_name: '  ', attributes: {} })).toBe(
      'Hi you from here #0 +33612000001 75000',
    );
    expect(renderTemplate(parseTemplate('plain text'), contact)).toBe('plain text');
  });

  it.each([
    ['Hi {{first_name|x}', 'invalid_template'],
    ['Hi {{first_name|x}} }}', 'invalid_template'],
    ['Hi {{first name|x}}', 'invalid_template'],
    ['Hi {{|x}}', 'invalid_template'],
    ['Hi {{a|{{b}}', 'invalid_template'],
    ['Hi {{first_name}}', 'template_missing_fallback'],
    ['Hi {{city}}', 'template_missing_fallback'],
  ])('refuses %s with %s', (template, code) => {
    let caught: unknown;
    try {
      parseTemplate(template);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(RelaisError);
    expect((caught as RelaisError).code).toBe(code);
    if (code === 'template_missing_fallback')
      expect((caught as RelaisError).message).toMatch(/first_name|city/);
  });

  it('evaluates windows in the recipient zone', () => {
    const w = { start: '08:00', end: '20:00', days: ['mon' as const] };
    const mondayUtc10 = Date.UTC(2026, 0, 5, 10); // Monday 5 January 2026
    expect(isWindowOpen(w, 'Europe/Paris', mondayUtc10)).toBe(true);
    expect(isWindowOpen(w, 'America/New_York', mondayUtc10)).toBe(false); // 05:00
    expect(isWindowOpen(w, 'Asia/Tokyo', mondayUtc10)).toBe(true); // 19:00
    expect(isWindowOpen(w, 'Asia/Tokyo', mondayUtc10 + 6 * 3600_000)).toBe(false); // Tuesday 01:00
    const night = { start: '20:00', end: '08:00' };
    expect(isWindowOpen(night, 'Europe/Paris', mondayUtc10)).toBe(false);
    expect(isWindowOpen(night, 'America/New_York', mondayUtc10)).toBe(true);
  });

  it('finds a recipient zone from the contact, its country, its number, else UTC', () => {
    expect(recipientZone({ timezone: 'Asia/Tokyo', country: 'FR', phone: '+33612000001' })).toBe(
      'Asia/Tokyo',
    );
    expect(recipientZone({ timezone: 'Not/AZone', country: 'DE', phone: '+33612000001' })).toBe(
      'Europe/Berlin',
    );
    expect(recipientZone({ timezone: null, country: null, phone: '+33612000001' })).toBe('Europe/Paris');
    expect(recipientZone({ timezone: null, country: null, phone: '+999' })).toBe('UTC');
  });
});

describe.each(databaseKinds)('campaigns API and runner on $name', (kind) => {
  let t: TestApp;
  let clock: ManualClock;
  let tenant: { id: string; apiKey: string };

  const api = (method: 'GET' | 'POST', url: string, payload?: unknown, key = tenant.apiKey) =>
    t.app.http.inject({ method, url, headers: bearer(key), ...(payload === undefined ? {} : { payload }) });
  const create = async (body: Record<string, unknown>) => {
    const res = await api('POST', '/v1/campaigns', {
      name: 'Sale',
      from: 'Shop',
      template: 'Hi {{first_name|you}}',
      ...body,
    });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string; status: string };
  };
  const messagesOf = (campaignId: string) =>
    t.app.store.db
      .selectFrom('messages')
      .select(['to_number', 'body', 'status', 'created_at', 'lane'])
      .where('campaign_id', '=', campaignId)
      .orderBy('to_number')
      .execute();
  const setMention = (mention: string) =>
    t.app.store.write((trx) =>
      trx.updateTable('tenants').set({ optout_mention: mention }).where('id', '=', tenant.id).execute(),
    );
  const countCampaigns = async () =>
    Number(
      (
        await t.app.store.db
          .selectFrom('campaigns')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );

  beforeEach(async () => {
    clock = new ManualClock(Date.UTC(2026, 0, 5, 10)); // Monday 10:00 UTC
    t = await startTestApp(
      kind,
      { ...CAPACITY, campaigns: { page_size: 7, max_pages_per_tick: 3 } },
      { clock },
    );
    tenant = await t.tenant('Shop');
  });
  afterEach(async () => {
    await t.close();
  });

  it('refuses bad input with specific problems and creates nothing', async () => {
    const other = await t.tenant('Other');
    const { listId } = await seedList(t.app.store, { tenantId: tenant.id, count: 3 });
    const { listId: foreign } = await seedList(t.app.store, { tenantId: other.id, count: 3 });
    const base = { name: 'Sale', list_ids: [listId], from: 'Shop', template: 'Hi {{first_name|you}}' };
    const cases: [Record<string, unknown>, number, string, string?][] = [
      [{ list_ids: ['lst_NOPE'] }, 404, 'not_found', 'list_ids/0'],
      [{ list_ids: [listId, foreign] }, 404, 'not_found', 'list_ids/1'],
      [{ list_ids: [] }, 400, 'invalid_field'],
      [{ template: 'Hi {{first_name}}' }, 400, 'template_missing_fallback', 'template'],
      [{ template: 'Hi {{first_name|x}' }, 400, 'invalid_template', 'template'],
      [{ from: 'A very long sender' }, 400, 'invalid_sender', 'from'],
      [{ send_at: '2026-01-05 12:00' }, 400, 'invalid_send_at', 'send_at'],
      [{ send_at: '2026-02-31T10:00:00Z' }, 400, 'invalid_send_at', 'send_at'],
      [{ window: { start: '8:00', end: '20:00' } }, 400, 'invalid_window', 'window/start'],
      [{ window: { start: '08:00', end: '24:30' } }, 400, 'invalid_window', 'window/end'],
      [{ window: { start: '08:00', end: '08:00' } }, 400, 'invalid_window', 'window'],
      [{ window: { start: '08:00', end: '20:00', days: ['monday'] } }, 400, 'invalid_window', 'window/days'],
      [{ window: { start: '08:00', end: '20:00', days: [] } }, 400, 'invalid_window', 'window/days'],
      [{ max_tps: 0 }, 400, 'invalid_field'],
      [{ colour: 'red' }, 400, 'unknown_field'],
    ];
    for (const [patch, status, code, field] of cases) {
      const res = await api('POST', '/v1/campaigns', { ...base, ...patch });
      expect(res.statusCode, JSON.stringify(patch)).toBe(status);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.json().code, JSON.stringify(patch)).toBe(code);
      if (field) expect(res.json().field).toBe(field);
    }
    expect(await countCampaigns()).toBe(0);

    // Another tenant's campaign does not exist for this one.
    const mine = await create({ list_ids: [listId] });
    for (const url of [`/v1/campaigns/${mine.id}`]) {
      expect((await api('GET', url, undefined, other.apiKey)).statusCode).toBe(404);
    }
    for (const action of ['start', 'pause', 'resume', 'cancel', 'preview']) {
      const res = await api('POST', `/v1/campaigns/${mine.id}/${action}`, {}, other.apiKey);
      expect(res.statusCode, action).toBe(404);
    }
    expect((await api('GET', '/v1/campaigns/cmp_01HZZZZZZZZZZZZZZZZZZZZZZZ')).statusCode).toBe(404);
    expect((await api('GET', '/v1/campaigns?cursor=nonsense')).json().code).toBe('invalid_cursor');
    const foreignContact = seedContactId('con_X', 0);
    const preview = await api('POST', `/v1/campaigns/${mine.id}/preview`, { contact_id: foreignContact });
    expect(preview.statusCode).toBe(404);
    expect(preview.json().field).toBe('contact_id');
    expect((await api('GET', `/v1/campaigns/${mine.id}`)).json().status).toBe('draft');
    expect((await api('GET', '/v1/campaigns', undefined)).statusCode).toBe(200);
    expect((await t.app.http.inject({ method: 'GET', url: '/v1/campaigns' })).statusCode).toBe(401);
    const openapi = (await t.app.http.inject({ method: 'GET', url: '/openapi.json' })).json();
    for (const path of [
      '/v1/campaigns',
      '/v1/campaigns/{id}',
      '/v1/campaigns/{id}/preview',
      '/v1/campaigns/{id}/start',
    ]) {
      expect(Object.keys(openapi.paths)).toContain(path);
    }
  });

  it('answers 409 to illegal transitions and follows the lifecycle', async () => {
    const { listId } = await seedList(t.app.store, { tenantId: tenant.id, count: 30 });
    const c = await create({ list_ids: [listId] });
    const act = (a: string) => api('POST', `/v1/campaigns/${c.id}/${a}`);
    for (const a of ['pause', 'resume']) {
      const res = await act(a);
      expect(res.statusCode, a).toBe(409);
      expect(res.json().code).toBe('campaign_transition_not_allowed');
      expect(res.json().detail).toContain('draft');
    }
    expect((await act('start')).json().status).toBe('running');
    expect((await act('start')).statusCode).toBe(409);
    expect((await act('resume')).statusCode).toBe(409);
    await t.app.campaignRunner.runOnce();
    expect((await messagesOf(c.id)).length).toBe(21); // 3 pages of 7 per tick
    expect((await act('pause')).json().status).toBe('paused');
    expect((await act('pause')).statusCode).toBe(409);
    await t.app.campaignRunner.runOnce();
    expect((await messagesOf(c.id)).length).toBe(21); // paused: no expansion
    expect((await act('resume')).json().status).toBe('running');
    await t.app.campaignRunner.runOnce();
    expect((await messagesOf(c.id)).length).toBe(30);
    const cancelled = await act('cancel');
    expect(cancelled.json().status).toBe('cancelled');
    // Nothing was claimed (no dispatcher): every queued message failed with campaign_cancelled.
    const msgs = await messagesOf(c.id);
    expect(msgs.every((m) => m.status === 'failed')).toBe(true);
    const failed = await t.app.store.db
      .selectFrom('messages')
      .select('error_code')
      .where('campaign_id', '=', c.id)
      .execute();
    expect(new Set(failed.map((f) => f.error_code))).toEqual(new Set(['campaign_cancelled']));
    const queueLeft = await t.app.store.db
      .selectFrom('queue')
      .select('message_id')
      .where('campaign_id', '=', c.id)
      .execute();
    expect(queueLeft).toEqual([]);
    const stats = (await api('GET', `/v1/campaigns/${c.id}`)).json().stats;
    expect(stats).toMatchObject({ targeted: 30, queued: 30, failed: 30, pending: 0, delivered: 0, sent: 0 });
    for (const a of ['start', 'pause', 'resume', 'cancel']) expect((await act(a)).statusCode, a).toBe(409);
  });

  it('sends each recipient of overlapping lists once, skipping opt-outs and invalid numbers', async () => {
    await setMention('STOP au 36111');
    const a = await seedList(t.app.store, {
      tenantId: tenant.id,
      count: 40,
      firstName: (i) => (i % 5 === 0 ? null : `Ann${i}`),
      attributes: (i) => (i % 2 ? { city: 'Lyon' } : {}),
      // Contact 7 holds a fixed-line number: it cannot receive SMS.
      phone: (i) => (i === 7 ? '+33140000000' : `+336${String(12_000_000 + i).padStart(8, '0')}`),
    });
    const b = await seedList(t.app.store, {
      tenantId: tenant.id,
      count: 10,
      idPrefix: 'con_ZZZ',
      phone: (i) => `+336${12_001_000 + i}`,
    });
    // Half of list a is also in list b.
    await addMembers(
      t.app.store,
      b.listId,
      Array.from({ length: 20 }, (_, i) => seedContactId(a.idPrefix, i * 2)),
    );
    await t.app.store.write((trx) =>
      trx
        .insertInto('optouts')
        .values(
          [3, 4].map((i) => ({
            tenant_id: tenant.id,
            phone: `+336${12_000_000 + i}`,
            source: 'api',
            detail: null,
            created_at: 0,
          })),
        )
        .execute(),
    );
    const c = await create({
      list_ids: [a.listId, b.listId],
      template: 'Hi {{first_name|friend}} in {{city|town}}',
    });
    await api('POST', `/v1/campaigns/${c.id}/start`);
    for (let i = 0; i < 5; i++) await t.app.campaignRunner.runOnce();
    const msgs = await messagesOf(c.id);
    expect(msgs.length).toBe(50 - 2 - 1);
    expect(new Set(msgs.map((m) => m.to_number)).size).toBe(47);
    expect(msgs.every((m) => m.lane === 'bulk' && m.status === 'accepted')).toBe(true);
    const first = msgs.find((m) => m.to_number === '+33612000001');
    expect(first?.body).toBe('Hi Ann1 in Lyon\nSTOP au 36111');
    expect(msgs.some((m) => m.body === 'Hi friend in town\nSTOP au 36111')).toBe(true);
    const detail = (await api('GET', `/v1/campaigns/${c.id}`)).json();
    expect(detail.stats).toMatchObject({ targeted: 50, skipped_optout: 2, skipped_invalid: 1, queued: 47 });
  });
  it('starts a scheduled campaign at send_at on the clock', async () => {
    const { listId } = await seedList(t.app.store, { tenantId: tenant.id, count: 5 });
    const c = await create({ list_ids: [listId], send_at: '2026-01-05T12:30:00+01:00' }); // 11:30 UTC
    expect((await api('POST', `/v1/campaigns/${c.id}/start`)).json().status).toBe('scheduled');
    await t.app.campaignRunner.runOnce();
    expect((await messagesOf(c.id)).length).toBe(0);
    clock.advance(90 * 60_000 - 1);
    await t.app.campaignRunner.runOnce();
    expect((await api('GET', `/v1/campaigns/${c.id}`)).json().status).toBe('scheduled');
    clock.advance(1);
    await t.app.campaignRunner.runOnce();
    const detail = (await api('GET', `/v1/campaigns/${c.id}`)).json();
    expect(detail.status).toBe('running');
    expect(detail.started_at).toBe('2026-01-05T11:30:00.000Z');
    expect((await messagesOf(c.id)).length).toBe(5);
    // A scheduled campaign can be cancelled before it starts; a past send_at starts at once.
    const late = await create({ list_ids: [listId], send_at: '2026-01-01T00:00:00Z' });
    expect((await api('POST', `/v1/campaigns/${late.id}/start`)).json().status).toBe('running');
  });

  it('sends only inside each recipient window and catches up zones when they open', async () => {
    // Interleaved zones: Paris (by timezone, or by the +33 number when none), New York, Tokyo.
    const zones = ['Europe/Paris', 'America/New_York', null, 'Asia/Tokyo'];
    const { listId } = await seedList(t.app.store, {
      tenantId: tenant.id,
      count: 60,
      timezone: (i) => zones[i % 4]!,
    });
    const c = await create({
      list_ids: [listId],
      window: { start: '08:00', end: '20:00', days: ['mon', 'tue'] },
    });
    await api('POST', `/v1/campaigns/${c.id}/start`);
    const byZone = async () => {
      const msgs = await messagesOf(c.id);
      const out: Record<string, number> = {};
      for (const m of msgs) {
        const i = Number(m.to_number.slice(-3)) % 4;
        const z = zones[i] ?? 'Europe/Paris(number)';
        out[z] = (out[z] ?? 0) + 1;
      }
      return { total: msgs.length, out, msgs };
    };
    // Monday 10:00 UTC: Paris 11:00 and Tokyo 19:00 open, New York 05:00 closed. One tick walks 3 pages.
    await t.app.campaignRunner.runOnce();
    const first = await byZone();
    expect(first.out['America/New_York']).toBeUndefined();
    expect(first.total).toBeGreaterThan(0);
    // Monday 11:30 UTC: Tokyo (20:30) closes; New York still closed.
    clock.set(Date.UTC(2026, 0, 5, 11, 30));
    for (let i = 0; i < 10; i++) await t.app.campaignRunner.runOnce();
    const second = await byZone();
    expect(second.out['America/New_York']).toBeUndefined();
    expect(second.out['Europe/Paris']).toBe(15);
    expect(second.out['Europe/Paris(number)']).toBe(15);
    expect(second.out['Asia/Tokyo'] ?? 0).toBeLessThan(15);
    expect((await api('GET', `/v1/campaigns/${c.id}`)).json().status).toBe('running');
    // Monday 14:00 UTC: New York opens (09:00), Tokyo is closed (23:00).
    clock.set(Date.UTC(2026, 0, 5, 14));
    for (let i = 0; i < 10; i++) await t.app.campaignRunner.runOnce();
    expect((await byZone()).out['America/New_York']).toBe(15);
    expect((await byZone()).out['Asia/Tokyo'] ?? 0).toBe(second.out['Asia/Tokyo'] ?? 0);
    // Tuesday 00:00 UTC: Tokyo 09:00 opens.
    clock.set(Date.UTC(2026, 0, 6, 0));
    for (let i = 0; i < 10; i++) await t.app.campaignRunner.runOnce();
    const last = await byZone();
    expect(last.total).toBe(60);
    expect(new Set(last.msgs.map((m) => m.to_number)).size).toBe(60);
    for (const m of last.msgs) {
      const z = zones[Number(m.to_number.slice(-3)) % 4] ?? 'Europe/Paris';
      expect(isWindowOpen({ start: '08:00', end: '20:00', days: ['mon', 'tue'] }, z, m.created_at)).toBe(
        true,
      );
    }
    const stats = (await api('GET', `/v1/campaigns/${c.id}`)).json().stats;
    expect(stats).toMatchObject({ targeted: 60, queued: 60 });
  });

  it('resumes after a restart from its committed cursor: every recipient exactly once', async () => {
    const { listId } = await seedList(t.app.store, { tenantId: tenant.id, count: 120 });
    const c = await create({ list_ids: [listId] });
    await api('POST', `/v1/campaigns/${c.id}/start`);
    await t.app.campaignRunner.runOnce();
    const before = (await messagesOf(c.id)).length;
    expect(before).toBeGreaterThan(0);
    expect(before).toBeLessThan(120);
    await t.app.close();
    t.app = await buildApp(t.config, { clock, logger: createLogger('silent') });
    for (let i = 0; i < 10; i++) await t.app.campaignRunner.runOnce();
    const msgs = await messagesOf(c.id);
    expect(msgs.length).toBe(120);
    expect(new Set(msgs.map((m) => m.to_number)).size).toBe(120);
    expect((await api('GET', `/v1/campaigns/${c.id}`)).json().stats.queued).toBe(120);
  });

  it('previews a rendering with the opt-out mention and estimates the segments', async () => {
    await setMention('STOP au 36111');
    const empty = await seedList(t.app.store, { tenantId: tenant.id, count: 0 });
    const c0 = await create({
      list_ids: [empty.listId],
      template: 'Bonjour {{first_name|vous}} à {{city|Paris}}',
    });
    const sample = (await api('POST', `/v1/campaigns/${c0.id}/preview`, {})).json();
    expect(sample).toMatchObject({
      contact: { id: null, sample: true },
      text: 'Bonjour Marie à Lyon\nSTOP au 36111',
    });
    expect(sample).toMatchObject({
      encoding: 'GSM-7',
      segments: 1,
      recipients_estimate: 0,
      estimated_total_segments: 0,
    });

    const { listId, idPrefix } = await seedList(t.app.store, {
      tenantId: tenant.id,
      count: 25,
      firstName: (i) => `Zoë${i}`,
      attributes: () => ({ city: 'Łódź' }),
    });
    const c = await create({
      list_ids: [listId],
      template: `{{first_name|x}} ${'long text '.repeat(8)}{{city|y}}`,
    });
    const pRes = await api('POST', `/v1/campaigns/${c.id}/preview`, {});
    expect(pRes.statusCode, pRes.body).toBe(200);
    const p = pRes.json();
    expect(p.contact).toEqual({ id: seedContactId(idPrefix, 0), phone: '+33612000000', sample: false });
    expect(p.text.startsWith('Zoë0 long text')).toBe(true);
    expect(p.text.endsWith('Łódź\nSTOP au 36111')).toBe(true);
    expect(p).toMatchObject({
      encoding: 'UCS-2',
      segments: 2,
      recipients_estimate: 25,
      estimated_total_segments: 50,
    });
    const chosen = (
      await api('POST', `/v1/campaigns/${c.id}/preview`, { contact_id: seedContactId(idPrefix, 7) })
    ).json();
    expect(chosen.text.startsWith('Zoë7 ')).toBe(true);
  });

  it('lists campaigns newest first with a cursor', async () => {
    const { listId } = await seedList(t.app.store, { tenantId: tenant.id, count: 1 });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await create({ list_ids: [listId], name: `c${i}` })).id);
    const page1 = (await api('GET', '/v1/campaigns?limit=3')).json();
    expect(page1.data.map((c: { id: string }) => c.id)).toEqual(ids.slice(2).reverse());
    const page2 = (await api('GET', `/v1/campaigns?limit=3&cursor=${page1.next_cursor}`)).json();
    expect(page2.data.map((c: { id: string }) => c.id)).toEqual(ids.slice(0, 2).reverse());
    expect(page2.next_cursor).toBeNull();
    await api('POST', `/v1/campaigns/${ids[0]}/cancel`);
    const cancelled = (await api('GET', '/v1/campaigns?status=cancelled')).json();
    expect(cancelled.data.map((c: { id: string }) => c.id)).toEqual([ids[0]]);
  });
});
