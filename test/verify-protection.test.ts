import { Writable } from 'node:stream';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, buildApp } from '../src/app.js';
import { parseConfig } from '../src/config/load.js';
import { ManualClock } from '../src/shared/clock.js';
import { createLogger } from '../src/shared/logger.js';
import { bearer } from './helpers/app.js';
import { databaseKinds, type TestDatabase } from './helpers/databases.js';

/**
 * SMS-pumping defences of Verify: rate limits per destination number, per API key and per tenant
 * (counted in the database, 429 with Retry-After), allowed destination countries per tenant, and the
 * velocity alarm on number prefixes (a warn log line and GET /v1/verify/alarms).
 */
describe.each(databaseKinds)('Verify protections on $name', (kind) => {
  let app: App;
  let db: TestDatabase;
  let logs = '';
  // Aligned on a 10-minute boundary: window ends (and Retry-After) are exact.
  const clock = new ManualClock(Date.UTC(2026, 2, 1, 12, 0, 0));

  beforeAll(async () => {
    db = await kind.create();
    const config = parseConfig({
      data_dir: db.dataDir,
      database_url: db.url,
      http: { port: 0 },
      simulator: { enabled: 'never' },
      verify: {
        rate_limits: {
          per_number: { limit: 2, window_seconds: 600 },
          per_api_key: { limit: 5, window_seconds: 60 },
          per_tenant: { limit: 7, window_seconds: 60 },
        },
        velocity: { threshold_per_minute: 3 },
      },
    });
    const destination = new Writable({
      write(chunk, _encoding, done) {
        logs += chunk.toString();
        done();
      },
    });
    app = await buildApp(config, { logger: createLogger('info', destination), clock });
    await app.http.ready();
  });
  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  async function tenant(name: string) {
    const created = await app.tenants.create({ name });
    return { id: created.tenant_id, apiKey: created.api_key };
  }
  const start = (apiKey: string, body: Record<string, unknown>) =>
    app.http.inject({ method: 'POST', url: '/v1/verifications', headers: bearer(apiKey), payload: body });

  function expectProblem(res: LightMyRequestResponse, status: number, code: string) {
    expect(res.statusCode, res.body).toBe(status);
    expect(res.json()).toMatchObject({ status, code });
  }

  async function countVerifications(tenantId: string): Promise<number> {
    const rows = await app.store.db
      .selectFrom('verifications')
      .select('id')
      .where('tenant_id', '=', tenantId)
      .execute();
    return rows.length;
  }

  it('limits SMS per destination number, refusing with 429 and Retry-After, and counts resends', async () => {
    const t = await tenant('PerNumber');
    expect((await start(t.apiKey, { to: '+33612345601' })).statusCode).toBe(201);
    clock.advance(15_000);
    const second = await start(t.apiKey, { to: '+33612345601' });
    expect(second.statusCode).toBe(201);
    const refused = await start(t.apiKey, { to: '+33612345601' });
    expectProblem(refused, 429, 'rate_limited');
    expect(refused.headers['retry-after']).toBe('585');
    expect(refused.json().detail).toContain('+33612345601');
    expect(await countVerifications(t.id)).toBe(2);
    // The limit is per number: another one goes through. A resend counts as an SMS to the number.
    expect((await start(t.apiKey, { to: '+33612345602' })).statusCode).toBe(201);
    clock.advance(30_000);
    const resend = await app.http.inject({
      method: 'POST',
      url: `/v1/verifications/${second.json().id}/resend`,
      headers: bearer(t.apiKey),
    });
    expectProblem(resend, 429, 'rate_limited');
    expect(resend.headers['retry-after']).toBe('555');
    // A new window: allowed again.
    clock.advance(555_000);
    expect((await start(t.apiKey, { to: '+33612345601' })).statusCode).toBe(201);
    clock.advance(60_000);
  });

  it('limits per API key and per tenant', async () => {
    const t = await tenant('PerKey');
    const second = await app.tenants.createKey(t.id, 'second');
    for (let i = 0; i < 5; i++) {
      expect((await start(t.apiKey, { to: `+3361234570${i}` })).statusCode).toBe(201);
    }
    const byKey = await start(t.apiKey, { to: '+33612345709' });
    expectProblem(byKey, 429, 'rate_limited');
    expect(byKey.json().detail).toContain('API key');
    expect(byKey.headers['retry-after']).toBe('60');
    // The other key of the same tenant still has room, up to the tenant's limit (7).
    expect((await start(second.api_key, { to: '+33612345705' })).statusCode).toBe(201);
    expect((await start(second.api_key, { to: '+33612345706' })).statusCode).toBe(201);
    clock.advance(20_000);
    const byTenant = await start(second.api_key, { to: '+33612345707' });
    expectProblem(byTenant, 429, 'rate_limited');
    expect(byTenant.json().detail).toContain('account');
    expect(byTenant.headers['retry-after']).toBe('40');
    // Another tenant is not affected.
    const other = await tenant('Neighbour');
    expect((await start(other.apiKey, { to: '+33612345707' })).statusCode).toBe(201);
    expect(await countVerifications(t.id)).toBe(7);
    // The counters live in the database (shared by every node) and are purged once their window ends.
    const counters = await app.store.db
      .selectFrom('rate_limits')
      .select(['scope', 'hits'])
      .where('key', '=', t.id)
      .execute();
    expect(counters).toEqual([{ scope: 'verify_tenant', hits: 7 }]);
    clock.advance(40_000);
    expect((await start(second.api_key, { to: '+33612345707' })).statusCode).toBe(201);
    clock.advance(10 * 60_000);
    const kept = await app.housekeeping.runOnce();
    expect(kept.verify?.rateLimitsPurged).toBeGreaterThan(0);
    const left = await app.store.db
      .selectFrom('rate_limits')
      .select('key')
      .where('expires_at', '<=', clock.now())
      .execute();
    expect(left).toEqual([]);
  });

  it('sends only to the countries a tenant allows', async () => {
    const t = await tenant('Countries');
    const settings = () => app.http.inject({ url: '/v1/verify/settings', headers: bearer(t.apiKey) });
    const put = (payload: Record<string, unknown>) =>
      app.http.inject({ method: 'PUT', url: '/v1/verify/settings', headers: bearer(t.apiKey), payload });
    expect((await settings()).json()).toEqual({ allowed_countries: null, default_locale: 'en' });
    // Any country until restricted.
    expect((await start(t.apiKey, { to: '+4915112345678' })).statusCode).toBe(201);

    const updated = await put({ allowed_countries: ['fr', 'BE', 'FR'] });
    expect(updated.statusCode, updated.body).toBe(200);
    expect(updated.json()).toEqual({ allowed_countries: ['BE', 'FR'], default_locale: 'en' });
    expect((await settings()).json()).toEqual({ allowed_countries: ['BE', 'FR'], default_locale: 'en' });

    const german = await start(t.apiKey, { to: '+4915112345678' });
    expectProblem(german, 403, 'country_not_allowed');
    expect(german.json().field).toBe('to');
    expect(german.json().detail).toContain('DE');
    expect((await start(t.apiKey, { to: '+32470123456' })).statusCode).toBe(201);
    expect((await start(t.apiKey, { to: '06 12 34 56 10', country: 'FR' })).statusCode).toBe(201);
    expect(await countVerifications(t.id)).toBe(3);

    const bad = await put({ allowed_countries: ['FR', 'XX'] });
    expectProblem(bad, 400, 'invalid_field');
    expect(bad.json().field).toBe('allowed_countries/1');
    expectProblem(await put({ allowed_countries: [] }), 400, 'invalid_field');
    expectProblem(await put({}), 400, 'missing_field');

    // Lifting the restriction, and a French default for this tenant's texts.
    expect((await put({ allowed_countries: null, default_locale: 'fr' })).json()).toEqual({
      allowed_countries: null,
      default_locale: 'fr',
    });
    const french = await start(t.apiKey, { to: '+4915112345679' });
    expect(french.statusCode).toBe(201);
    expect(french.json().locale).toBe('fr');
    const message = await app.store.db
      .selectFrom('messages')
      .select('body')
      .where('id', '=', french.json().message_id)
      .executeTakeFirstOrThrow();
    expect(message.body).toBe('Votre code de vérification est ******. Il expire dans 5 min.');
  });

  it('raises a velocity alarm when one number prefix gets many verifications in a minute', async () => {
    const t = await tenant('Velocity');
    const alarms = async () =>
      (await app.http.inject({ url: '/v1/verify/alarms', headers: bearer(t.apiKey) })).json();
    const minute = Math.floor(clock.now() / 60_000) * 60_000;
    logs = '';
    for (let i = 0; i < 3; i++) {
      expect((await start(t.apiKey, { to: `+4915112345${600 + i}` })).statusCode).toBe(201);
    }
    expect(await alarms()).toEqual({ prefix_digits: 6, threshold_per_minute: 3, data: [] });
    expect(logs).not.toContain('velocity alarm');
    expect((await start(t.apiKey, { to: '+4915112345700' })).statusCode).toBe(201);
    expect((await start(t.apiKey, { to: '+33612345800' })).statusCode).toBe(201); // another prefix
    expect(await alarms()).toEqual({
      prefix_digits: 6,
      threshold_per_minute: 3,
      data: [
        {
          prefix: '491511',
          count: 4,
          window_start: new Date(minute).toISOString(),
          window_end: new Date(minute + 60_000).toISOString(),
        },
      ],
    });
    const lines = logs
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((l) => String(l.msg).includes('velocity alarm'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, tenant_id: t.id, prefix: '491511', count: 4 });
    // Another tenant does not see it.
    const other = await tenant('Quiet');
    const theirs = await app.http.inject({ url: '/v1/verify/alarms', headers: bearer(other.apiKey) });
    expect(theirs.json().data).toEqual([]);
    // It stays visible through the next minute, then clears.
    clock.advance(60_000);
    expect((await alarms()).data).toHaveLength(1);
    clock.advance(60_000);
    expect((await alarms()).data).toEqual([]);
  });
});
