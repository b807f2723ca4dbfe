import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, buildApp } from '../src/app.js';
import { parseConfig } from '../src/config/load.js';
import { createLogger } from '../src/shared/logger.js';
import { bearer, startTestApp, type TestApp } from './helpers/app.js';
import { databaseKinds, type TestDatabase } from './helpers/databases.js';

/**
 * Every /v1 route refuses a request without a valid, unrevoked API key of an active tenant: 401 with
 * WWW-Authenticate, and nothing written. Keys are stored hashed and never logged.
 */

const MESSAGE = { to: '+33612345678', from: 'Pizzeria', text: 'Your pizza is on its way!' };

/** Every authenticated route, with a request that would succeed given a valid key. */
function v1Routes(messageId: string): InjectOptions[] {
  return [
    { method: 'POST', url: '/v1/messages', payload: MESSAGE },
    { method: 'POST', url: '/v1/messages/batch', payload: { messages: [MESSAGE] } },
    { method: 'GET', url: '/v1/messages' },
    { method: 'GET', url: `/v1/messages/${messageId}` },
    { method: 'GET', url: '/v1/webhook-events' },
    { method: 'GET', url: '/v1/account' },
    { method: 'PATCH', url: '/v1/account', payload: { webhook_url: 'https://hooks.example.com/x' } },
  ];
}

/** The key with its last character changed: well-formed, known prefix, wrong secret. */
function withWrongSecret(key: string): string {
  const last = key.at(-1);
  return key.slice(0, -1) + (last === 'A' ? 'B' : 'A');
}

function secretOf(key: string): string {
  const m = /^rl_[a-z0-9]{12}_(.+)$/.exec(key);
  if (!m) throw new Error(`not an API key: ${key}`);
  return m[1]!;
}

function expectUnauthorized(res: LightMyRequestResponse): void {
  expect(res.statusCode, res.body).toBe(401);
  expect(res.headers['www-authenticate']).toBe('Bearer realm="relais"');
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json\b/);
  expect(res.json()).toMatchObject({
    type: 'urn:relais:problem:unauthorized',
    status: 401,
    code: 'unauthorized',
    title: 'Unauthorized',
  });
  expect(res.json()).not.toHaveProperty('field');
}

describe.each(databaseKinds)('API key authentication on $name', (kind) => {
  let t: TestApp;
  let tenant: { id: string; apiKey: string };
  let revokedKey: string;
  let suspendedKey: string;
  let messageId: string;

  beforeAll(async () => {
    t = await startTestApp(kind);
    tenant = await t.tenant('Pizzeria');
    const extra = await t.app.tenants.createKey(tenant.id, 'to revoke');
    expect(await t.app.tenants.revokeKey(extra.api_key_id)).toBe(true);
    revokedKey = extra.api_key;
    const suspended = await t.tenant('Suspended');
    await t.app.store.write((trx) =>
      trx.updateTable('tenants').set({ status: 'suspended' }).where('id', '=', suspended.id).execute(),
    );
    suspendedKey = suspended.apiKey;
    const sent = await t.app.http.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: bearer(tenant.apiKey),
      payload: MESSAGE,
    });
    expect(sent.statusCode).toBe(202);
    messageId = sent.json().id;
  });
  afterAll(() => t?.close());

  /** Everything a request could change. */
  async function snapshot() {
    const db = t.app.store.db;
    const count = async (table: 'messages' | 'queue' | 'idempotency_keys' | 'api_keys' | 'webhook_events') =>
      Number(
        (
          await db
            .selectFrom(table)
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    return {
      messages: await count('messages'),
      queue: await count('queue'),
      idempotency_keys: await count('idempotency_keys'),
      api_keys: await count('api_keys'),
      webhook_events: await count('webhook_events'),
      tenants: await db.selectFrom('tenants').select(['id', 'status', 'webhook_url']).orderBy('id').execute(),
    };
  }

  const request = (
    route: InjectOptions,
    authorization: string | undefined,
  ): Promise<LightMyRequestResponse> =>
    t.app.http.inject({
      ...route,
      headers: {
        ...(authorization === undefined ? {} : { authorization }),
        'idempotency-key': `auth-test-${Math.random()}`,
      },
    });

  const badCredentials: [string, () => string | undefined][] = [
    ['no Authorization header', () => undefined],
    ['Basic credentials', () => `Basic ${Buffer.from(`${tenant.id}:${tenant.apiKey}`).toString('base64')}`],
    ['the key without the Bearer scheme', () => tenant.apiKey],
    ['Bearer with no key', () => 'Bearer '],
    ['a malformed key', () => 'Bearer not-an-api-key'],
    ['a key with a trailing character', () => `Bearer ${tenant.apiKey}x`],
    ['a well-formed key with an unknown prefix', () => `Bearer rl_000000000000_${secretOf(tenant.apiKey)}`],
    ['a well-formed key with a wrong secret', () => `Bearer ${withWrongSecret(tenant.apiKey)}`],
    ['a revoked key', () => `Bearer ${revokedKey}`],
    ['the key of a suspended tenant', () => `Bearer ${suspendedKey}`],
  ];

  describe.each(badCredentials)('with %s', (_name, credentials) => {
    it('every /v1 route answers 401 with WWW-Authenticate and writes nothing', async () => {
      for (const route of v1Routes(messageId)) {
        const before = await snapshot();
        const res = await request(route, credentials());
        expectUnauthorized(res);
        expect(res.body, `${route.method} ${route.url}`).not.toContain(MESSAGE.text);
        expect(await snapshot()).toEqual(before);
      }
    });
  });

  it('answers 401 before reading the body: a bad key with malformed JSON is 401, not 400', async () => {
    const res = await t.app.http.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: {
        authorization: `Bearer ${withWrongSecret(tenant.apiKey)}`,
        'content-type': 'application/json',
      },
      payload: '{"to":',
    });
    expectUnauthorized(res);
  });

  it('the valid key reaches every route', async () => {
    for (const route of v1Routes(messageId)) {
      const res = await request(route, `Bearer ${tenant.apiKey}`);
      expect(res.statusCode, `${route.method} ${route.url}: ${res.body}`).toBeLessThan(300);
    }
  });

  it('a second key works, and revoking one key does not affect the other', async () => {
    const owner = await t.tenant('TwoKeys');
    const second = await t.app.tenants.createKey(owner.id, 'ci');
    expect(second.api_key).not.toBe(owner.apiKey);
    const account = async (key: string) =>
      (await t.app.http.inject({ url: '/v1/account', headers: bearer(key) })).statusCode;

    expect(await account(owner.apiKey)).toBe(200);
    expect(await account(second.api_key)).toBe(200);
    const res = await t.app.http.inject({ url: '/v1/account', headers: bearer(second.api_key) });
    expect(res.json()).toMatchObject({ tenant_id: owner.id, name: 'TwoKeys' });

    const keys = await t.app.tenants.listKeys(owner.id);
    const first = keys.find((k) => k.id !== second.api_key_id)!;
    expect(await t.app.tenants.revokeKey(first.id)).toBe(true);
    expect(await account(owner.apiKey)).toBe(401);
    expect(await account(second.api_key)).toBe(200);

    // Revoking twice reports nothing to revoke; the other key is still untouched.
    expect(await t.app.tenants.revokeKey(first.id)).toBe(false);
    expect(await account(second.api_key)).toBe(200);

    expect(await t.app.tenants.revokeKey(second.api_key_id)).toBe(true);
    expect(await account(second.api_key)).toBe(401);
    expect(await account(owner.apiKey)).toBe(401);
  });

  it('a key revoked by another process (the CLI, another node) stops working within half a second', async () => {
    const created = await t.tenant('Elsewhere');
    const account = async () =>
      (await t.app.http.inject({ url: '/v1/account', headers: bearer(created.apiKey) })).statusCode;
    expect(await account()).toBe(200);
    // Straight in the database, as `relais key revoke` run beside the server does.
    await t.app.store.write((trx) =>
      trx
        .updateTable('api_keys')
        .set({ revoked_at: Date.now() })
        .where('tenant_id', '=', created.id)
        .execute(),
    );
    const revokedAt = performance.now();
    let status = await account();
    while (status === 200 && performance.now() - revokedAt < 3000) {
      await new Promise((r) => setTimeout(r, 50));
      status = await account();
    }
    expect(status).toBe(401);
    expect(performance.now() - revokedAt).toBeLessThan(800);
  });

  it('a key of one tenant never authenticates as another', async () => {
    const other = await t.tenant('Other');
    const res = await t.app.http.inject({ url: '/v1/account', headers: bearer(other.apiKey) });
    expect(res.json().tenant_id).toBe(other.id);
    const mixed = `rl_${other.apiKey.slice(3, 15)}_${secretOf(tenant.apiKey)}`;
    expectUnauthorized(await t.app.http.inject({ url: '/v1/account', headers: bearer(mixed) }));
  });

  it('stores keys hashed: the api_keys table never holds a key or its secret', async () => {
    const created = await t.tenant('Hashed');
    const extra = await t.app.tenants.createKey(created.id);
    const rows = await t.app.store.db.selectFrom('api_keys').selectAll().execute();
    const dump = JSON.stringify(rows);
    for (const key of [tenant.apiKey, revokedKey, created.apiKey, extra.api_key]) {
      expect(dump).not.toContain(key);
      expect(dump).not.toContain(secretOf(key));
      const row = rows.find((r) => key.startsWith(`rl_${r.prefix}_`));
      expect(row?.secret_hash).toBe(createHash('sha256').update(secretOf(key)).digest('hex'));
    }
  });
});

describe.each(databaseKinds)('API keys in logs on $name', (kind) => {
  let db: TestDatabase;
  let app: App;
  let logText = '';

  beforeAll(async () => {
    db = await kind.create();
    const config = parseConfig({
      data_dir: db.dataDir,
      database_url: db.url,
      http: { port: 0 },
      log: { level: 'trace' },
    });
    const sink = new Writable({
      write(chunk, _encoding, done) {
        logText += chunk.toString();
        done();
      },
    });
    app = await buildApp(config, { logger: createLogger('trace', sink) });
    await app.http.ready();
  });
  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  it('never writes an API key or its secret, on success or failure', async () => {
    const created = await app.tenants.create({ name: 'Logged' });
    const second = await app.tenants.createKey(created.tenant_id);
    const keys = [created.api_key, second.api_key];
    const inject = (authorization: string, options: InjectOptions = { url: '/v1/account' }) =>
      app.http.inject({ ...options, headers: { authorization } });

    expect((await inject(`Bearer ${created.api_key}`)).statusCode).toBe(200);
    const sent = await inject(`Bearer ${second.api_key}`, {
      method: 'POST',
      url: '/v1/messages',
      payload: MESSAGE,
    });
    expect(sent.statusCode).toBe(202);
    expect((await inject(`Bearer ${second.api_key}`, { url: '/v1/messages?limit=0' })).statusCode).toBe(400);
    expect((await inject(`Bearer ${withWrongSecret(created.api_key)}`)).statusCode).toBe(401);
    expect((await inject(`Basic ${Buffer.from(`x:${created.api_key}`).toString('base64')}`)).statusCode).toBe(
      401,
    );
    await app.tenants.revokeKey(second.api_key_id);
    expect((await inject(`Bearer ${second.api_key}`)).statusCode).toBe(401);

    // Should code ever log a created tenant, the redaction paths hide its secrets.
    app.logger.trace({ tenant: created, key: second }, 'tenant created');
    expect(logText).toContain('"api_key":"[redacted]"');

    // The logger did record these requests.
    expect(logText).toContain('"statusCode":202');
    expect(logText).toContain('/v1/account');
    expect(logText).toContain('"statusCode":401');
    for (const key of keys) {
      expect(logText).not.toContain(key);
      expect(logText).not.toContain(secretOf(key));
      expect(logText).not.toContain(secretOf(withWrongSecret(key)));
    }
    expect(logText).not.toContain(created.webhook_secret);
  });
});
