import { afterEach, describe, expect, it } from 'vitest';
import { bearer, startTestApp, type TestApp } from './helpers/app.js';
import { type CarrierRig, startCarrierRig, waitBound } from './helpers/carrier.js';
import { databaseKinds } from './helpers/databases.js';

describe.each(databaseKinds)('health, readiness and metrics on $name', (kind) => {
  let rig: CarrierRig | null = null;
  let t: TestApp | null = null;
  afterEach(async () => {
    await rig?.close();
    await t?.close();
    rig = null;
    t = null;
  });

  it('is alive but not ready without a bound carrier', async () => {
    t = await startTestApp(kind);
    expect((await t.app.http.inject({ url: '/healthz' })).statusCode).toBe(200);
    const ready = await t.app.http.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({
      ready: false,
      checks: {
        database: { ok: true },
        migrations: { ok: true },
        carriers: { ok: false, detail: 'no connector bound' },
      },
    });
  });

  it('is ready once a connector is bound, and /metrics shows traffic, queue, connectors', async () => {
    rig = await startCarrierRig(kind);
    const tenant = await rig.t.tenant();
    await waitBound(rig);
    expect((await rig.t.app.http.inject({ url: '/readyz' })).json()).toMatchObject({
      ready: true,
      checks: { carriers: { ok: true, detail: 'bound: carrier-a' } },
    });
    const id = await rig.send(tenant.apiKey, { lane: 'otp' });
    await rig.waitForStatus([id], ['delivered']);
    await new Promise((r) => setTimeout(r, 50));
    const res = await rig.t.app.http.inject({ url: '/metrics', remoteAddress: '127.0.0.1' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    const text = res.body;
    expect(text).toMatch(/relais_messages_accepted_total\{lane="otp"\} 1/);
    expect(text).toMatch(/relais_message_outcomes_total\{status="submitted",connector="carrier-a"\} 1/);
    expect(text).toMatch(/relais_receipts_total\{connector="carrier-a",state="delivered"\} 1/);
    expect(text).toMatch(/relais_submit_duration_seconds_count\{connector="carrier-a"\} 1/);
    expect(text).toMatch(/relais_queue_depth\{lane="bulk"\} 0/);
    expect(text).toMatch(/relais_connector_binds\{connector="carrier-a"\} 1/);
    expect(text).toMatch(/relais_connector_tps\{connector="carrier-a"\} 1000/);
    expect(text).toMatch(/relais_webhook_backlog 0/);
    expect(text).toMatch(/relais_nodejs_eventloop_lag_seconds/);
  });

  it('refuses /metrics from the network without a token, and checks the token when one is set', async () => {
    t = await startTestApp(kind, { metrics: { token: 'scrape-token-0123456789' } });
    const remote = { remoteAddress: '10.1.2.3' };
    expect((await t.app.http.inject({ url: '/metrics', ...remote })).statusCode).toBe(401);
    expect(
      (await t.app.http.inject({ url: '/metrics', ...remote, headers: bearer('wrong-token-0123456789') }))
        .statusCode,
    ).toBe(401);
    expect(
      (await t.app.http.inject({ url: '/metrics', ...remote, headers: bearer('scrape-token-0123456789') }))
        .statusCode,
    ).toBe(200);
    await t.close();
    t = await startTestApp(kind);
    expect((await t.app.http.inject({ url: '/metrics', remoteAddress: '10.1.2.3' })).statusCode).toBe(401);
    expect((await t.app.http.inject({ url: '/metrics', remoteAddress: '127.0.0.1' })).statusCode).toBe(200);
  });
});
