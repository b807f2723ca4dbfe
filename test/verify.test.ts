import type { LightMyRequestResponse } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/shared/clock.js';
import { verifySignature } from '../src/webhooks/signature.js';
import { bearer, startTestApp, type TestApp } from './helpers/app.js';
import { databaseKinds } from './helpers/databases.js';
import { WebhookReceiver } from './helpers/receiver.js';

/**
 * The Verify life cycle through the HTTP API, on a clock the tests move. The SMS text is read where the
 * dispatcher reads it (WorkQueue.claim, which opens the sealed text); test/verify-carrier.test.ts
 * follows it to a carrier over SMPP.
 */
describe.each(databaseKinds)('Verify life cycle on $name', (kind) => {
  let t: TestApp;
  let receiver: WebhookReceiver;
  let hookUrl: string;
  const clock = new ManualClock(Date.UTC(2026, 2, 1, 12, 0, 0));
  /** Texts handed to the dispatcher, by message id. */
  const dispatched = new Map<string, string>();

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
  });

  const post = (apiKey: string, url: string, payload?: Record<string, unknown>) =>
    t.app.http.inject({ method: 'POST', url, headers: bearer(apiKey), ...(payload ? { payload } : {}) });
  const get = (apiKey: string, url: string) => t.app.http.inject({ url, headers: bearer(apiKey) });

  async function start(apiKey: string, body: Record<string, unknown> = {}) {
    const res = await post(apiKey, '/v1/verifications', { to: '+33612345678', ...body });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string; message_id: string; [k: string]: unknown };
  }

  /** The code, from the text the dispatcher would send to the carrier. */
  async function codeOf(messageId: string): Promise<string> {
    for (const c of await t.app.workQueue.claim({ owner: 'test', limit: 1000, leaseMs: 3_600_000 })) {
      dispatched.set(c.id, c.text);
    }
    const text = dispatched.get(messageId);
    if (!text) throw new Error(`message ${messageId} was not dispatched`);
    const code = /\b(\d{4,10})\b/.exec(text)?.[1];
    if (!code) throw new Error(`no code in "${text}"`);
    return code;
  }

  const check = (apiKey: string, id: string, code: string) =>
    post(apiKey, `/v1/verifications/${id}/check`, { code });

  function expectProblem(res: LightMyRequestResponse, status: number, code: string) {
    expect(res.statusCode, res.body).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ status, code, type: `urn:relais:problem:${code}` });
  }

  /** Verification events delivered to the receiver (message events are left aside). */
  async function verificationEvents(): Promise<{ type: string; data: Record<string, unknown> }[]> {
    await t.app.webhooks.deliverDue();
    return receiver.requests
      .map((r) => JSON.parse(r.body))
      .filter((e: { type: string }) => e.type.startsWith('verification.'));
  }

  it('sends the code on the otp lane, masked in the history, and approves the right code once', async () => {
    const tenant = await t.tenant('Lifecycle', hookUrl);
    const res = await post(tenant.apiKey, '/v1/verifications', { to: '+33612345678', from: 'Luigi' });
    expect(res.statusCode, res.body).toBe(201);
    const v = res.json();
    expect(res.headers.location).toBe(`/v1/verifications/${v.id}`);
    expect(v).toEqual({
      id: expect.stringMatching(/^ver_[0-9A-Z]{26}$/),
      status: 'pending',
      to: '+33612345678',
      country: 'FR',
      locale: 'en',
      code_length: 6,
      attempts: 0,
      max_attempts: 5,
      attempts_remaining: 5,
      resends: 0,
      max_resends: 3,
      message_id: expect.stringMatching(/^msg_/),
      expires_at: new Date(clock.now() + 300_000).toISOString(),
      created_at: new Date(clock.now()).toISOString(),
      updated_at: new Date(clock.now()).toISOString(),
    });

    // The message: otp lane, the verification as client_ref, the code masked; the real text is sealed.
    const row = await t.app.store.db
      .selectFrom('messages')
      .selectAll()
      .where('id', '=', v.message_id)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({
      lane: 'otp',
      sender: 'Luigi',
      client_ref: v.id,
      body: 'Your verification code is ******. It expires in 5 min.',
      encoding: 'GSM-7',
      segments: 1,
      expires_at: clock.now() + 5 * 60_000,
    });
    expect(row.sealed_body).toMatch(/^v1\./);
    const code = await codeOf(v.message_id);
    expect(dispatched.get(v.message_id)).toBe(`Your verification code is ${code}. It expires in 5 min.`);
    expect(row.sealed_body).not.toContain(code);

    const approved = await check(tenant.apiKey, v.id, code);
    expect(approved.statusCode, approved.body).toBe(200);
    expect(approved.json()).toMatchObject({
      id: v.id,
      status: 'approved',
      valid: true,
      attempts: 1,
      attempts_remaining: 0,
    });

    const events = await verificationEvents();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'verification.approved',
      data: { id: v.id, status: 'approved', to: '+33612345678', attempts: 1 },
    });
    const request = receiver.requests.find((r) => JSON.parse(r.body).type === 'verification.approved')!;
    expect(request.body).not.toContain(code);
    expect(
      verifySignature(tenant.webhookSecret, request.body, String(request.headers['relais-signature']), {
        nowSeconds: clock.now() / 1000,
      }),
    ).toBe(true);

    // A replay of the right code is refused and changes nothing.
    receiver.requests.length = 0;
    const before = (await get(tenant.apiKey, `/v1/verifications/${v.id}`)).json();
    expectProblem(await check(tenant.apiKey, v.id, code), 409, 'verification_already_approved');
    expectProblem(await check(tenant.apiKey, v.id, '000000'), 409, 'verification_already_approved');
    expect((await get(tenant.apiKey, `/v1/verifications/${v.id}`)).json()).toEqual(before);
    expect(before).toMatchObject({ status: 'approved', attempts: 1 });
    expect(await verificationEvents()).toEqual([]);

    // Another tenant sees nothing of it.
    const other = await t.tenant('Other');
    expectProblem(await get(other.apiKey, `/v1/verifications/${v.id}`), 404, 'not_found');
    expectProblem(await check(other.apiKey, v.id, code), 404, 'not_found');
  });

  it('fails after five wrong codes: the sixth attempt fails even with the right code', async () => {
    const tenant = await t.tenant('Brute', hookUrl);
    const v = await start(tenant.apiKey);
    const code = await codeOf(v.message_id);
    const wrong = code === '000000' ? '111111' : '000000';
    for (const remaining of [4, 3, 2, 1]) {
      const res = await check(tenant.apiKey, v.id, wrong);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toMatchObject({ status: 'pending', valid: false, attempts_remaining: remaining });
    }
    const fifth = await check(tenant.apiKey, v.id, wrong);
    expect(fifth.statusCode).toBe(200);
    expect(fifth.json()).toMatchObject({
      status: 'failed',
      valid: false,
      attempts: 5,
      attempts_remaining: 0,
    });
    expectProblem(await check(tenant.apiKey, v.id, code), 409, 'verification_failed');
    expect((await get(tenant.apiKey, `/v1/verifications/${v.id}`)).json()).toMatchObject({
      status: 'failed',
      attempts: 5,
    });
    const events = await verificationEvents();
    expect(events.map((e) => [e.type, e.data.id, e.data.status, e.data.attempts])).toEqual([
      ['verification.failed', v.id, 'failed', 5],
    ]);
  });

  it('approves exactly once when the right code is checked ten times at once', async () => {
    const tenant = await t.tenant('Racer', hookUrl);
    const v = await start(tenant.apiKey);
    const code = await codeOf(v.message_id);
    const results = await Promise.all(Array.from({ length: 10 }, () => check(tenant.apiKey, v.id, code)));
    const approved = results.filter((r) => r.statusCode === 200);
    expect(approved).toHaveLength(1);
    expect(approved[0]!.json()).toMatchObject({ status: 'approved', valid: true });
    for (const r of results.filter((r) => r.statusCode !== 200)) {
      expectProblem(r, 409, 'verification_already_approved');
    }
    expect((await get(tenant.apiKey, `/v1/verifications/${v.id}`)).json()).toMatchObject({
      status: 'approved',
      attempts: 1,
    });
    const types = (await verificationEvents()).map((e) => e.type);
    expect(types).toEqual(['verification.approved']);
  });

  it('counts exactly max_attempts of ten concurrent wrong codes', async () => {
    const tenant = await t.tenant('Swarm', hookUrl);
    const v = await start(tenant.apiKey);
    const code = await codeOf(v.message_id);
    const wrong = code === '999999' ? '888888' : '999999';
    const results = await Promise.all(Array.from({ length: 10 }, () => check(tenant.apiKey, v.id, wrong)));
    const answers = results.map((r) => (r.statusCode === 200 ? r.json().status : r.json().code)).sort();
    expect(answers).toEqual([
      'failed',
      'pending',
      'pending',
      'pending',
      'pending',
      ...Array(5).fill('verification_failed'),
    ]);
    expect((await get(tenant.apiKey, `/v1/verifications/${v.id}`)).json()).toMatchObject({
      status: 'failed',
      attempts: 5,
    });
    expect((await verificationEvents()).map((e) => e.type)).toEqual(['verification.failed']);
  });

  it('expires after its TTL: at check time, or by housekeeping, which later purges it', async () => {
    const tenant = await t.tenant('Slow', hookUrl);
    const checked = await start(tenant.apiKey, { ttl_seconds: 60 });
    const swept = await start(tenant.apiKey, { to: '+33612345679', ttl_seconds: 30 });
    const code = await codeOf(checked.message_id);
    clock.advance(59_999);
    expect((await get(tenant.apiKey, `/v1/verifications/${checked.id}`)).json().status).toBe('pending');
    clock.advance(1);
    // Shown expired at once; stored and notified at the check (or by housekeeping).
    expect((await get(tenant.apiKey, `/v1/verifications/${checked.id}`)).json()).toMatchObject({
      status: 'expired',
      attempts_remaining: 0,
    });
    expectProblem(await check(tenant.apiKey, checked.id, code), 410, 'verification_expired');
    expectProblem(await check(tenant.apiKey, checked.id, code), 410, 'verification_expired');
    expect((await verificationEvents()).map((e) => [e.type, e.data.id])).toEqual([
      ['verification.expired', checked.id],
    ]);
    receiver.requests.length = 0;

    const result = await t.app.housekeeping.runOnce();
    expect(result.verify?.expired).toBe(1);
    expect((await verificationEvents()).map((e) => [e.type, e.data.id, e.data.status])).toEqual([
      ['verification.expired', swept.id, 'expired'],
    ]);
    const row = await t.app.store.db
      .selectFrom('verifications')
      .select(['status', 'status_at'])
      .where('id', '=', swept.id)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ status: 'expired', status_at: clock.now() });
    expectProblem(
      await post(tenant.apiKey, `/v1/verifications/${swept.id}/resend`),
      410,
      'verification_expired',
    );

    // After the grace period (verify.purge_after_hours, 168 by default) both are gone.
    clock.advance(168 * 3600_000 - 60_000);
    expect((await t.app.housekeeping.runOnce()).verify?.purged).toBe(0);
    clock.advance(10 * 60_000);
    expect((await t.app.housekeeping.runOnce()).verify?.purged).toBeGreaterThanOrEqual(2);
    expectProblem(await get(tenant.apiKey, `/v1/verifications/${checked.id}`), 404, 'not_found');
    expectProblem(await get(tenant.apiKey, `/v1/verifications/${swept.id}`), 404, 'not_found');
  });

  it('resends a new code after the cooldown, at most three times; the previous code stops working', async () => {
    const tenant = await t.tenant('Resender', hookUrl);
    const v = await start(tenant.apiKey, { locale: 'fr' });
    const first = await codeOf(v.message_id);
    expect(dispatched.get(v.message_id)).toBe(
      `Votre code de vérification est ${first}. Il expire dans 5 min.`,
    );

    const early = await post(tenant.apiKey, `/v1/verifications/${v.id}/resend`);
    expectProblem(early, 429, 'resend_cooldown');
    expect(early.headers['retry-after']).toBe('30');
    clock.advance(10_000);
    expect((await post(tenant.apiKey, `/v1/verifications/${v.id}/resend`)).headers['retry-after']).toBe('20');
    clock.advance(20_000);

    const messageIds = [v.message_id];
    let latest = first;
    for (let n = 1; n <= 3; n++) {
      const res = await post(tenant.apiKey, `/v1/verifications/${v.id}/resend`);
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json();
      expect(body).toMatchObject({
        id: v.id,
        status: 'pending',
        resends: n,
        expires_at: new Date(clock.now() + 300_000).toISOString(),
      });
      expect(messageIds).not.toContain(body.message_id);
      messageIds.push(body.message_id);
      const code = await codeOf(body.message_id);
      // The previous code no longer works (a wrong attempt); the new one is in French too.
      const stale = await check(tenant.apiKey, v.id, latest === code ? '0000' : latest);
      expect(stale.json()).toMatchObject({ status: 'pending', valid: false, attempts: n });
      expect(dispatched.get(body.message_id)).toContain(`est ${code}.`);
      latest = code;
      clock.advance(30_000);
    }
    expectProblem(await post(tenant.apiKey, `/v1/verifications/${v.id}/resend`), 409, 'resend_limit_reached');
    const ok = await check(tenant.apiKey, v.id, latest);
    expect(ok.json()).toMatchObject({ status: 'approved', valid: true, attempts: 4, resends: 3 });
    expectProblem(
      await post(tenant.apiKey, `/v1/verifications/${v.id}/resend`),
      409,
      'verification_already_approved',
    );
    const lanes = await t.app.store.db
      .selectFrom('messages')
      .select(['lane', 'client_ref'])
      .where('id', 'in', messageIds)
      .execute();
    expect(lanes).toEqual(Array(4).fill({ lane: 'otp', client_ref: v.id }));
  });

  it('validates the request: lengths, TTL, template, sender, number', async () => {
    const tenant = await t.tenant('Strict');
    const bad = async (body: Record<string, unknown>, code: string, field: string) => {
      const res = await post(tenant.apiKey, '/v1/verifications', { to: '+33612345678', ...body });
      expectProblem(res, 400, code);
      expect(res.json().field).toBe(field);
    };
    await bad({ code_length: 3 }, 'invalid_field', 'code_length');
    await bad({ code_length: 11 }, 'invalid_field', 'code_length');
    await bad({ ttl_seconds: 29 }, 'invalid_field', 'ttl_seconds');
    await bad({ ttl_seconds: 3601 }, 'invalid_field', 'ttl_seconds');
    await bad({ template: 'Hello' }, 'invalid_template', 'template');
    await bad({ template: 'Code {{code}} for {{user}}' }, 'invalid_template', 'template');
    await bad({ template: `{{code}} ${'x'.repeat(700)}` }, 'invalid_field', 'template');
    await bad({ from: 'Not a valid sender' }, 'invalid_sender', 'from');
    await bad({ to: '+331' }, 'invalid_phone_number', 'to');
    await bad({ locale: 'de' }, 'invalid_field', 'locale');
    await bad({ code: '123456' }, 'unknown_field', 'code');
    const longText = await post(tenant.apiKey, '/v1/verifications', {
      to: '+33612345678',
      template: `{{code}} ${'ç'.repeat(150)}`,
    });
    expect(longText.statusCode, longText.body).toBe(201); // UCS-2, 3 parts: allowed
    // Nothing was written for the refused ones.
    const rows = await t.app.store.db
      .selectFrom('verifications')
      .select('id')
      .where('tenant_id', '=', tenant.id)
      .execute();
    expect(rows).toHaveLength(1);

    const custom = await start(tenant.apiKey, {
      code_length: 8,
      ttl_seconds: 600,
      template: 'Luigi: {{code}} ({{minutes}} min)',
    });
    const code = await codeOf(custom.message_id);
    expect(code).toHaveLength(8);
    expect(dispatched.get(custom.message_id)).toBe(`Luigi: ${code} (10 min)`);
    const wrongShape = await check(tenant.apiKey, custom.id, '12ab');
    expectProblem(wrongShape, 400, 'invalid_field');
    expect(wrongShape.json().field).toBe('code');
    expect((await get(tenant.apiKey, `/v1/verifications/${custom.id}`)).json().attempts).toBe(0);
    expectProblem(await check(tenant.apiKey, 'ver_unknown', '123456'), 404, 'not_found');
  });

  it('needs an API key on every Verify route, and documents them in the OpenAPI description', async () => {
    const routes: [string, string][] = [
      ['POST', '/v1/verifications'],
      ['GET', '/v1/verifications/ver_x'],
      ['POST', '/v1/verifications/ver_x/check'],
      ['POST', '/v1/verifications/ver_x/resend'],
      ['GET', '/v1/verify/settings'],
      ['PUT', '/v1/verify/settings'],
      ['GET', '/v1/verify/alarms'],
      ['GET', '/v1/verify/stats'],
    ];
    for (const [method, url] of routes) {
      const res = await t.app.http.inject({ method: method as 'GET', url, payload: { code: '1234' } });
      expectProblem(res, 401, 'unauthorized');
    }
    const paths = Object.keys((await t.app.http.inject({ url: '/openapi.json' })).json().paths);
    for (const path of [
      '/v1/verifications',
      '/v1/verifications/{id}',
      '/v1/verifications/{id}/check',
      '/v1/verifications/{id}/resend',
      '/v1/verify/settings',
      '/v1/verify/alarms',
      '/v1/verify/stats',
    ]) {
      expect(paths).toContain(path);
    }
  });

  it('reports started, approved, failed and expired verifications and the conversion rate', async () => {
    const tenant = await t.tenant('Stats');
    const from = new Date(clock.now()).toISOString();
    const a = await start(tenant.apiKey);
    const b = await start(tenant.apiKey, { to: '+33612345670' });
    const c = await start(tenant.apiKey, { to: '+33612345671', ttl_seconds: 30 });
    const d = await start(tenant.apiKey, { to: '+33612345672' });
    await start(tenant.apiKey, { to: '+33612345673' });
    expect((await check(tenant.apiKey, a.id, await codeOf(a.message_id))).json().status).toBe('approved');
    expect((await check(tenant.apiKey, b.id, await codeOf(b.message_id))).json().status).toBe('approved');
    const wrong = (await codeOf(d.message_id)) === '000000' ? '111111' : '000000';
    for (let i = 0; i < 5; i++) await check(tenant.apiKey, d.id, wrong);
    clock.advance(31_000); // c expired (not yet swept: counted as expired anyway)
    const until = new Date(clock.now()).toISOString();
    const res = await get(tenant.apiKey, `/v1/verify/stats?from=${from}&until=${until}`);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({
      from,
      until,
      started: 5,
      approved: 2,
      failed: 1,
      expired: 1,
      pending: 1,
      conversion_rate: 0.4,
    });
    expect(c.id).toBeTruthy();
    const empty = await get(tenant.apiKey, `/v1/verify/stats?until=${from}`);
    expect(empty.json()).toMatchObject({ started: 0, conversion_rate: null, from: null });
    expectProblem(await get(tenant.apiKey, '/v1/verify/stats?from=yesterday'), 400, 'invalid_field');
  });
});
