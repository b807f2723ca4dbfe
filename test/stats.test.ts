import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyStatusChanges, type StatusChange } from '../src/messages/status.js';
import { writeSubmitUnits } from '../src/messages/writer.js';
import { ManualClock } from '../src/shared/clock.js';
import { newId } from '../src/shared/ids.js';
import { bearer, startTestApp, type TestApp } from './helpers/app.js';
import { databaseKinds } from './helpers/databases.js';

const ADMIN_TOKEN = 'operator-token-0123456789';
const at = (iso: string) => Date.parse(iso);

/**
 * A small history with known hours: tenant A sends three messages on 2026-01-10 (UTC), one of them
 * late enough (23:30Z) to fall on 2026-01-11 in Paris (UTC+1 in winter), plus one campaign message;
 * tenant B sends one. Statuses move through applyStatusChanges, the seam the dispatcher and receipts use.
 */
describe.each(databaseKinds)('statistics API on $name', (kind) => {
  let t: TestApp;
  const clock = new ManualClock(at('2026-01-10T10:15:00Z'));
  let a: { id: string; apiKey: string };
  let b: { id: string; apiKey: string };
  const ids: Record<string, string> = {};
  const campaignId = 'cmp_01KAAAAAAAAAAAAAAAAAAAAAAA';

  const send = async (apiKey: string, when: string, body: Record<string, unknown>) => {
    clock.set(at(when));
    const res = await t.app.http.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: bearer(apiKey),
      payload: { to: '+33612345678', from: 'Pizzeria', ...body },
    });
    expect(res.statusCode).toBe(202);
    return res.json().id as string;
  };
  const change = (when: string, changes: StatusChange[]) =>
    t.app.store.write((trx) => applyStatusChanges(trx, changes, at(when)));
  const stats = (query: string, apiKey = a.apiKey) =>
    t.app.http.inject({ method: 'GET', url: `/v1/stats?${query}`, headers: bearer(apiKey) });
  const adminStats = (query: string, token = ADMIN_TOKEN) =>
    t.app.http.inject({ method: 'GET', url: `/admin/stats?${query}`, headers: bearer(token) });
  const DAY_RANGE = 'from=2026-01-10T00:00:00Z&to=2026-01-12T00:00:00Z';

  beforeAll(async () => {
    t = await startTestApp(kind, { admin: { token: ADMIN_TOKEN } }, { clock });
    a = await t.tenant('Pizzeria');
    b = await t.tenant('Rival');
    ids.m1 = await send(a.apiKey, '2026-01-10T10:15:00Z', { text: 'one' });
    ids.m2 = await send(a.apiKey, '2026-01-10T10:30:00Z', { text: 'x'.repeat(161), lane: 'bulk' });
    ids.m3 = await send(a.apiKey, '2026-01-10T23:30:00Z', { text: '123456', lane: 'otp' });
    ids.m4 = await send(b.apiKey, '2026-01-10T10:00:00Z', { text: 'rival' });
    await change('2026-01-10T10:20:00Z', [
      { messageId: ids.m1, status: 'submitted', connector: 'carrier-a' },
    ]);
    await change('2026-01-10T10:40:00Z', [
      { messageId: ids.m2, status: 'submitted', connector: 'carrier-b' },
      { messageId: ids.m4, status: 'submitted', connector: 'carrier-a' },
    ]);
    await change('2026-01-10T11:05:00Z', [
      { messageId: ids.m1, status: 'delivered' },
      { messageId: ids.m4, status: 'rejected', errorCode: 'carrier_rejected' },
    ]);
    await change('2026-01-10T12:00:00Z', [{ messageId: ids.m2, status: 'undelivered', errorCode: 'absent' }]);
    await change('2026-01-10T23:31:00Z', [
      { messageId: ids.m3, status: 'submitted', connector: 'carrier-a' },
    ]);
    await change('2026-01-11T00:10:00Z', [{ messageId: ids.m3, status: 'delivered' }]);
    // A late receipt for a message already final changes nothing, rollups included.
    await change('2026-01-11T00:20:00Z', [{ messageId: ids.m1, status: 'undelivered' }]);

    // A campaign message, through the same writer campaigns use.
    const template = await t.app.store.db
      .selectFrom('messages')
      .selectAll()
      .where('id', '=', ids.m1)
      .executeTakeFirstOrThrow();
    const createdAt = at('2026-01-11T09:00:00Z');
    ids.m5 = newId('msg', createdAt);
    await t.app.store.write((trx) =>
      writeSubmitUnits(trx, [
        {
          tenantId: a.id,
          createdAt,
          rows: [
            {
              ...template,
              id: ids.m5!,
              lane: 'bulk',
              status: 'accepted',
              connector: null,
              campaign_id: campaignId,
              created_at: createdAt,
              updated_at: createdAt,
            },
          ],
        },
      ]),
    );
    await change('2026-01-11T09:01:00Z', [
      { messageId: ids.m5, status: 'submitted', connector: 'carrier-b' },
    ]);
    await change('2026-01-11T09:02:00Z', [{ messageId: ids.m5, status: 'expired' }]);
  });
  afterAll(() => t.close());

  it('writes one rollup row per hour, tenant, lane, connector, campaign and status entered', async () => {
    const rows = await t.app.store.db
      .selectFrom('stats_hourly')
      .selectAll()
      .where('tenant_id', '=', a.id)
      .where('hour', '=', at('2026-01-10T10:00:00Z'))
      .orderBy('status')
      .orderBy('lane')
      .execute();
    expect(rows.map((r) => ({ ...r, messages: Number(r.messages), segments: Number(r.segments) }))).toEqual([
      {
        hour: at('2026-01-10T10:00:00Z'),
        tenant_id: a.id,
        lane: 'bulk',
        connector: '',
        campaign_id: '',
        status: 'accepted',
        messages: 1,
        segments: 2,
      },
      {
        hour: at('2026-01-10T10:00:00Z'),
        tenant_id: a.id,
        lane: 'transactional',
        connector: '',
        campaign_id: '',
        status: 'accepted',
        messages: 1,
        segments: 1,
      },
      {
        hour: at('2026-01-10T10:00:00Z'),
        tenant_id: a.id,
        lane: 'bulk',
        connector: 'carrier-b',
        campaign_id: '',
        status: 'submitted',
        messages: 1,
        segments: 2,
      },
      {
        hour: at('2026-01-10T10:00:00Z'),
        tenant_id: a.id,
        lane: 'transactional',
        connector: 'carrier-a',
        campaign_id: '',
        status: 'submitted',
        messages: 1,
        segments: 1,
      },
    ]);
  });

  it('groups a tenant’s messages by UTC day with the derived figures', async () => {
    const res = await stats(`${DAY_RANGE}&group_by=day`);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({
      from: '2026-01-10T00:00:00.000Z',
      to: '2026-01-12T00:00:00.000Z',
      tz: 'UTC',
      group_by: ['day'],
    });
    expect(body.data).toEqual([
      {
        day: '2026-01-10',
        messages: 8,
        segments: 11,
        accepted: 3,
        submitted: 3,
        delivered: 1,
        failed: 1,
        delivery_rate: 0.5,
      },
      {
        day: '2026-01-11',
        messages: 4,
        segments: 4,
        accepted: 1,
        submitted: 1,
        delivered: 1,
        failed: 1,
        delivery_rate: 0.5,
      },
    ]);
    expect(body.totals).toEqual({
      messages: 12,
      segments: 15,
      accepted: 4,
      submitted: 4,
      delivered: 2,
      failed: 2,
      delivery_rate: 0.5,
    });
  });

  it('buckets hours into local days with tz, and reads a bare date as local midnight', async () => {
    const res = await stats(`${DAY_RANGE}&group_by=day&tz=Europe/Paris`);
    expect(res.statusCode).toBe(200);
    expect(res.json().data.map((g: Record<string, unknown>) => [g.day, g.accepted, g.messages])).toEqual([
      ['2026-01-10', 2, 6],
      ['2026-01-11', 2, 6],
    ]);
    const local = await stats('from=2026-01-11&to=2026-01-12&tz=Europe/Paris&group_by=day');
    expect(local.json()).toMatchObject({
      from: '2026-01-10T23:00:00.000Z',
      to: '2026-01-11T23:00:00.000Z',
      tz: 'Europe/Paris',
      data: [{ day: '2026-01-11', accepted: 2, submitted: 2, delivered: 1, failed: 1 }],
    });
  });

  it('groups by status, lane, connector, campaign and hour, and filters', async () => {
    const byStatus = (await stats(`${DAY_RANGE}&group_by=status&lane=bulk`)).json();
    expect(byStatus.data.map((g: Record<string, unknown>) => [g.status, g.messages, g.segments])).toEqual([
      ['accepted', 2, 3],
      ['expired', 1, 1],
      ['submitted', 2, 3],
      ['undelivered', 1, 2],
    ]);
    const byConnector = (await stats(`${DAY_RANGE}&group_by=connector,status&status=submitted`)).json();
    expect(byConnector.data.map((g: Record<string, unknown>) => [g.connector, g.status, g.messages])).toEqual(
      [
        ['carrier-a', 'submitted', 2],
        ['carrier-b', 'submitted', 2],
      ],
    );
    const noConnector = (await stats(`${DAY_RANGE}&group_by=connector`)).json();
    expect(noConnector.data[0]).toMatchObject({ connector: null, accepted: 4, messages: 4 });
    const byCampaign = (await stats(`${DAY_RANGE}&group_by=campaign`)).json();
    expect(byCampaign.data.map((g: Record<string, unknown>) => [g.campaign_id, g.messages])).toEqual([
      [null, 9],
      [campaignId, 3],
    ]);
    const campaign = (await stats(`${DAY_RANGE}&campaign_id=${campaignId}`)).json();
    expect(campaign.totals).toMatchObject({ accepted: 1, submitted: 1, failed: 1, delivery_rate: 0 });
    const byHour = (await stats(`${DAY_RANGE}&group_by=hour,lane&connector=carrier-a`)).json();
    expect(byHour.data.map((g: Record<string, unknown>) => [g.hour, g.lane, g.messages])).toEqual([
      ['2026-01-10T10:00:00.000Z', 'transactional', 1],
      ['2026-01-10T11:00:00.000Z', 'transactional', 1],
      ['2026-01-10T23:00:00.000Z', 'otp', 1],
      ['2026-01-11T00:00:00.000Z', 'otp', 1],
    ]);
  });

  it('widens a range to whole hours and answers nothing outside it', async () => {
    const res = (await stats('from=2026-01-10T10:59:00Z&to=2026-01-10T11:01:00Z&group_by=hour')).json();
    expect(res).toMatchObject({ from: '2026-01-10T10:00:00.000Z', to: '2026-01-10T12:00:00.000Z' });
    expect(res.data.map((g: Record<string, unknown>) => g.hour)).toEqual([
      '2026-01-10T10:00:00.000Z',
      '2026-01-10T11:00:00.000Z',
    ]);
    const empty = (await stats('from=2025-01-10T00:00:00Z&to=2025-01-11T00:00:00Z&group_by=day')).json();
    expect(empty.data).toEqual([]);
    expect(empty.totals).toMatchObject({ messages: 0, delivery_rate: null });
  });

  it('defaults to the last 24 hours, the current one included', async () => {
    const c = await t.tenant('Now');
    await send(c.apiKey, new Date().toISOString(), { text: 'now' });
    const res = await stats('', c.apiKey);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(Date.parse(body.to) - Date.parse(body.from)).toBe(86_400_000);
    expect(Date.parse(body.to)).toBeGreaterThan(Date.now());
    expect(body.totals).toMatchObject({ accepted: 1, messages: 1 });
  });

  it('shows a tenant only its own counts', async () => {
    const rival = (await stats(`${DAY_RANGE}&group_by=status`, b.apiKey)).json();
    expect(rival.data.map((g: Record<string, unknown>) => [g.status, g.messages])).toEqual([
      ['accepted', 1],
      ['rejected', 1],
      ['submitted', 1],
    ]);
    const foreignCampaign = (await stats(`${DAY_RANGE}&campaign_id=${campaignId}`, b.apiKey)).json();
    expect(foreignCampaign.totals.messages).toBe(0);
    const res = await stats(`${DAY_RANGE}&tenant_id=${a.id}`, b.apiKey);
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('unknown_field');
    const noKey = await t.app.http.inject({ method: 'GET', url: '/v1/stats' });
    expect(noKey.statusCode).toBe(401);
  });

  it.each([
    ['from=yesterday', 'invalid_date', 'from'],
    ['from=2026-01-10T10:00:00', 'invalid_date', 'from'],
    ['to=2026-02-30', 'invalid_date', 'to'],
    ['from=2026-01-11T00:00:00Z&to=2026-01-10T00:00:00Z', 'invalid_range', 'from'],
    ['from=2026-01-10T00:00:00Z&to=2026-01-10T00:00:00Z', 'invalid_range', 'from'],
    ['from=2024-01-01T00:00:00Z&to=2026-01-10T00:00:00Z', 'invalid_range', 'from'],
    ['group_by=week', 'invalid_group_by', 'group_by'],
    ['group_by=tenant', 'invalid_group_by', 'group_by'],
    ['group_by=hour,day', 'invalid_group_by', 'group_by'],
    ['tz=Mars/Olympus_Mons', 'invalid_timezone', 'tz'],
    ['tz=%2B02:00', 'invalid_timezone', 'tz'],
    ['lane=fast', 'invalid_lane', 'lane'],
    ['status=lost', 'invalid_field', 'status'],
    ['connector=', 'invalid_field', 'connector'],
    ['colour=blue', 'unknown_field', 'colour'],
  ])('refuses %s with %s', async (query, code, field) => {
    const res = await stats(query);
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json()).toMatchObject({ status: 400, code, field });
  });

  it('gives the operator every tenant, groupable and filterable by tenant', async () => {
    const all = (await adminStats(`${DAY_RANGE}&group_by=tenant`)).json();
    expect(all.data.map((g: Record<string, unknown>) => [g.tenant_id, g.accepted, g.messages])).toEqual(
      [
        [a.id, 4, 12],
        [b.id, 1, 3],
      ].sort((x, y) => (String(x[0]) < String(y[0]) ? -1 : 1)),
    );
    expect(all.totals).toMatchObject({ accepted: 5, delivered: 2, failed: 3, delivery_rate: 0.4 });
    const one = (await adminStats(`${DAY_RANGE}&tenant_id=${b.id}&group_by=connector,status`)).json();
    expect(one.data.map((g: Record<string, unknown>) => [g.connector, g.status, g.messages])).toEqual([
      [null, 'accepted', 1],
      ['carrier-a', 'rejected', 1],
      ['carrier-a', 'submitted', 1],
    ]);
    const bad = await adminStats('group_by=tenant,moon');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('invalid_group_by');
  });

  it('documents both endpoints in the OpenAPI description', async () => {
    const doc = (await t.app.http.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(Object.keys(doc.paths['/v1/stats'].get.responses)).toEqual(expect.arrayContaining(['200', '400']));
    expect(doc.paths['/admin/stats'].get.parameters.map((p: { name: string }) => p.name)).toContain(
      'tenant_id',
    );
  });

  it('refuses a grouping that would produce more than 100,000 groups', async () => {
    // 400 days × 11 connectors of another tenant in 2024: 105,600 distinct hour × connector groups.
    const tenant = 'ten_01KTOOMANYGROUPS000000000';
    const start = at('2024-01-01T00:00:00Z');
    const rows = [];
    for (let h = 0; h < 400 * 24; h++) {
      for (let c = 0; c < 11; c++) {
        rows.push({
          hour: start + h * 3_600_000,
          tenant_id: tenant,
          lane: 'bulk' as const,
          connector: `c${c}`,
          campaign_id: '',
          status: 'delivered' as const,
          messages: 1,
          segments: 1,
        });
      }
    }
    await t.app.store.write(async (trx) => {
      for (let i = 0; i < rows.length; i += 1000) {
        await trx
          .insertInto('stats_hourly')
          .values(rows.slice(i, i + 1000))
          .execute();
      }
    });
    const range = 'from=2024-01-01T00:00:00Z&to=2025-02-04T00:00:00Z';
    const res = await adminStats(`${range}&tenant_id=${tenant}&group_by=hour,connector`);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'too_many_groups', field: 'group_by' });
    const narrower = (await adminStats(`${range}&tenant_id=${tenant}&group_by=day`)).json();
    expect(narrower.data).toHaveLength(400);
    expect(narrower.totals.delivered).toBe(rows.length);
  }, 60_000);

  it('refuses /admin/stats without the operator token, and with a tenant key', async () => {
    const none = await t.app.http.inject({ method: 'GET', url: '/admin/stats' });
    expect(none.statusCode).toBe(401);
    const wrong = await adminStats('', 'not-the-operator-token');
    expect(wrong.statusCode).toBe(401);
    const tenantKey = await adminStats('', a.apiKey);
    expect(tenantKey.statusCode).toBe(401);
  });

  it('answers 403 on /admin/stats when no operator token is configured', async () => {
    const off = await startTestApp(kind);
    try {
      const res = await off.app.http.inject({
        method: 'GET',
        url: '/admin/stats',
        headers: bearer(ADMIN_TOKEN),
      });
      expect(res.statusCode).toBe(403);
      expect(res.json().code).toBe('admin_api_disabled');
    } finally {
      await off.close();
    }
  });

  it('reads only the rollups: emptying the history changes no answer', async () => {
    const queries = [
      `${DAY_RANGE}&group_by=day,status`,
      `${DAY_RANGE}&group_by=hour,connector&tz=Europe/Paris`,
      `${DAY_RANGE}&group_by=campaign,lane`,
    ];
    const before = await Promise.all(queries.map(async (q) => (await stats(q)).json()));
    const adminBefore = (await adminStats(`${DAY_RANGE}&group_by=tenant,day`)).json();
    await t.app.store.write(async (trx) => {
      await trx.deleteFrom('queue').execute();
      await trx.deleteFrom('message_parts').execute();
      await trx.deleteFrom('message_events').execute();
      await trx.deleteFrom('webhook_events').execute();
      await trx.deleteFrom('messages').execute();
    });
    const left = await t.app.store.db
      .selectFrom('messages')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    expect(Number(left.n)).toBe(0);
    const after = await Promise.all(queries.map(async (q) => (await stats(q)).json()));
    expect(after).toEqual(before);
    expect(before[0].totals.messages).toBe(12);
    expect((await adminStats(`${DAY_RANGE}&group_by=tenant,day`)).json()).toEqual(adminBefore);
  });
});
