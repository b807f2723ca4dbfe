import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seedList } from '../src/bench/campaign-seed.js';
import { parseConfig } from '../src/config/load.js';
import type { CarrierSimulator } from '../src/simulator/simulator.js';
import { CommandStatus } from '../src/smpp/constants.js';
import { openStore } from '../src/store/store.js';
import { bearer } from './helpers/app.js';
import { type CarrierRig, startCarrierRig, waitBound } from './helpers/carrier.js';
import { type CrashRig, startCrashRig } from './helpers/crash.js';
import { databaseKinds, type TestDatabase } from './helpers/databases.js';
import { runCli, startServerProcess } from './helpers/server-process.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(
  what: string,
  fn: () => Promise<T | null | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe.each(databaseKinds)('campaigns over SMPP on $name', (kind) => {
  let rig: CarrierRig;
  afterEach(async () => {
    await rig?.close();
  });

  const api = (method: 'GET' | 'POST', url: string, key: string, payload?: unknown) =>
    rig.t.app.http.inject({
      method,
      url,
      headers: bearer(key),
      ...(payload === undefined ? {} : { payload }),
    });
  async function startCampaign(key: string, listId: string, extra: Record<string, unknown> = {}) {
    const res = await api('POST', '/v1/campaigns', key, {
      name: 'Sale',
      list_ids: [listId],
      from: 'Shop',
      template: 'Hello {{first_name|you}}',
      ...extra,
    });
    expect(res.statusCode, res.body).toBe(201);
    const id = res.json().id as string;
    expect((await api('POST', `/v1/campaigns/${id}/start`, key)).json().status).toBe('running');
    return id;
  }
  const detail = async (key: string, id: string) => (await api('GET', `/v1/campaigns/${id}`, key)).json();

  it('delivers a whole campaign, each recipient once, with live statistics', async () => {
    rig = await startCarrierRig(kind, {}, { tps: 400 });
    await waitBound(rig);
    const tenant = await rig.t.tenant('Shop');
    const { listId } = await seedList(rig.t.app.store, { tenantId: tenant.id, count: 300 });
    const started = performance.now();
    const id = await startCampaign(tenant.apiKey, listId);
    await until('the first submit', async () => rig.sim.received.length > 0);
    const firstSubmitMs = performance.now() - started;
    const done = await until('completion', async () => {
      const d = await detail(tenant.apiKey, id);
      return d.status === 'completed' && d.stats.delivered === 300 ? d : null;
    });
    expect(firstSubmitMs).toBeLessThan(1000);
    expect(done.stats).toMatchObject({
      targeted: 300,
      queued: 300,
      sent: 300,
      delivered: 300,
      failed: 0,
      pending: 0,
      segments: 300,
    });
    expect(done.completed_at).not.toBeNull();
    const destinations = rig.sim.received.map((r) => r.destination);
    expect(destinations.length).toBe(300);
    expect(new Set(destinations).size).toBe(300);
    expect(rig.sim.received[0]!.text).toBe('Hello Name0');
  }, 60_000);

  it('holds a campaign to its max_tps', async () => {
    rig = await startCarrierRig(kind, {}, { tps: 1000 });
    await waitBound(rig);
    const tenant = await rig.t.tenant('Shop');
    const { listId } = await seedList(rig.t.app.store, { tenantId: tenant.id, count: 120 });
    const started = performance.now();
    const id = await startCampaign(tenant.apiKey, listId, { max_tps: 40 });
    await until('completion', async () => (await detail(tenant.apiKey, id)).status === 'completed');
    const seconds = (performance.now() - started) / 1000;
    // 120 at 40/s: about 3 s (a first burst of a few, then the pace); at the connector's 1,000/s it
    // would take 0.1 s.
    expect(seconds).toBeGreaterThan(2.2);
    const times = rig.sim.received.map((r) => r.at);
    const busiest = Math.max(...times.map((t) => times.filter((u) => u >= t && u < t + 1000).length));
    // The pace is enforced where messages are created (a quarter-second bucket); dispatch jitter on a
    // shared CPU can bunch arrivals a little in any one-second window.
    expect(busiest).toBeLessThanOrEqual(60);
  }, 60_000);

  it('shares the carrier between two tenants, keeps otp first, and cancels cleanly', async () => {
    rig = await startCarrierRig(kind, {}, { tps: 250 });
    await waitBound(rig);
    const big = await rig.t.tenant('Big');
    const small = await rig.t.tenant('Small');
    const bigList = await seedList(rig.t.app.store, { tenantId: big.id, count: 2500 });
    const smallList = await seedList(rig.t.app.store, {
      tenantId: small.id,
      count: 100,
      phone: (i) => `+336${13_000_000 + i}`,
    });
    const bigId = await startCampaign(big.apiKey, bigList.listId);
    const smallId = await startCampaign(small.apiKey, smallList.listId);
    const smallDone = await until('the small campaign', async () => {
      const d = await detail(small.apiKey, smallId);
      return d.status === 'completed' ? d : null;
    });
    expect(smallDone.stats.sent).toBe(100);
    const bigSent = rig.sim.received.filter((r) => r.destination.replace('+', '').startsWith('3361')).length;
    // Alone, the small one takes 0.4 s at 250/s. Behind the big one's 2,500 it would wait 10 s; shared
    // (lazy expansion + per-tenant bulk claims) it finishes while the big one is far from done. The
    // margin is wide because this machine's CPU is shared (measured: 300–980 of the big one's).
    expect(bigSent).toBeLessThan(1250);

    // An otp message jumps the bulk backlog: the bulk messages waiting unclaimed in the queue when it
    // is sent mostly reach the carrier after it (first in, first out, they would all go before it).
    const waiting = await until('a bulk backlog', async () => {
      const rows = await rig.t.app.store.db
        .selectFrom('queue')
        .innerJoin('messages', 'messages.id', 'queue.message_id')
        .select('messages.to_number')
        .where('queue.campaign_id', '=', bigId)
        .where('queue.claimed_by', 'is', null)
        .execute();
      return rows.length >= 30 ? rows : null;
    });
    const at = performance.now();
    await rig.send(small.apiKey, { to: '+33699999999', lane: 'otp', text: 'code 1234' });
    const otp = await until('the otp submit', async () =>
      rig.sim.received.find((r) => r.destination.replace('+', '') === '33699999999'),
    );
    expect(otp.at - at).toBeLessThan(1000);
    const ahead = new Set(
      rig.sim.received.slice(0, rig.sim.received.indexOf(otp)).map((r) => r.destination.replace('+', '')),
    );
    const overtook = waiting.filter((w) => ahead.has(w.to_number.replace('+', ''))).length;
    expect(overtook).toBeLessThan(waiting.length / 2);

    // Cancel the big one while it runs: what was queued, and what the dispatcher held in memory
    // without having sent it (about a second of the connector's 250/s), fails.
    const held = () => Object.values(rig.t.app.carriers.dispatcher.buffered()).reduce((a, b) => a + b, 0);
    await until('bulk work held by the dispatcher', async () => held() >= 50);
    const cancelled = (await api('POST', `/v1/campaigns/${bigId}/cancel`, big.apiKey)).json();
    expect(cancelled.status).toBe('cancelled');
    expect(held()).toBe(0);
    const atCancel = rig.sim.received.length;
    await sleep(1000);
    const afterCancel = rig.sim.received.length - atCancel;
    // Only the submits already at the connector (its window of 10) can still arrive.
    expect(afterCancel).toBeLessThanOrEqual(10);
    const final = await until('settled statistics', async () => {
      const d = await detail(big.apiKey, bigId);
      return d.stats.pending === 0 ? d : null;
    });
    expect(final.stats.failed).toBeGreaterThan(0);
    expect(final.stats.delivered + final.stats.failed).toBe(final.stats.queued);
    expect(final.stats.queued).toBeLessThan(2500);
    const reasons = await rig.t.app.store.db
      .selectFrom('messages')
      .select('error_code')
      .where('campaign_id', '=', bigId)
      .where('status', '=', 'failed')
      .groupBy('error_code')
      .execute();
    expect(reasons.map((r) => r.error_code)).toEqual(['campaign_cancelled']);
    expect((await detail(big.apiKey, bigId)).status).toBe('cancelled');
  }, 60_000);
});

const WINDOW = 10;
const BINDS = 1;
const MAX_UNRECORDED = 100;
const TOTAL = 1500;

/**
 * kill -9 of a real server in the middle of a campaign, then a restart: every recipient gets the
 * campaign's message exactly once in the history (pages are transactions), and the carrier saw
 * duplicates only for submits in flight or accepted but not yet recorded at the crash.
 */
describe.each(databaseKinds)('crash during a campaign on $name', (kind) => {
  let db: TestDatabase;
  let sim: CarrierSimulator;
  let env: Record<string, string>;

  let rig: CrashRig;
  beforeAll(async () => {
    rig = await startCrashRig(kind, {
      seed: 11,
      binds: BINDS,
      window: WINDOW,
      tps: 400,
      maxUnrecorded: MAX_UNRECORDED,
    });
    ({ db, sim, env } = rig);
  });
  afterAll(() => rig.close());

  it('sends every recipient once after a restart, duplicates bounded by what was in flight', async () => {
    const created = JSON.parse(runCli(['tenant', 'create', '--name', 'Crash'], env).stdout) as {
      api_key: string;
      tenant_id: string;
    };
    const store = openStore(parseConfig({ data_dir: db.dataDir, database_url: db.url }));
    try {
      const { listId } = await seedList(store, { tenantId: created.tenant_id, count: TOTAL });
      const first = await startServerProcess(env);
      const call = async (base: string, method: string, path: string, body?: unknown) => {
        const res = await fetch(`${base}${path}`, {
          method,
          headers: { authorization: `Bearer ${created.api_key}`, 'content-type': 'application/json' },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        return { status: res.status, body: (await res.json()) as Record<string, unknown> };
      };
      const c = await call(first.baseUrl, 'POST', '/v1/campaigns', {
        name: 'Crash',
        list_ids: [listId],
        from: 'Crash',
        template: 'Hi {{first_name|x}}',
      });
      expect(c.status).toBe(201);
      const id = c.body.id as string;
      expect((await call(first.baseUrl, 'POST', `/v1/campaigns/${id}/start`, {})).status).toBe(200);
      await until('submits before the crash', async () => sim.received.length >= 400);
      first.child.kill('SIGKILL');
      expect(await first.exited).toBe('SIGKILL');
      const atCrash = sim.received.length;

      const second = await startServerProcess(env);
      try {
        await until(
          'the campaign to complete',
          async () => (await call(second.baseUrl, 'GET', `/v1/campaigns/${id}`)).body.status === 'completed',
          60_000,
        );
      } finally {
        second.child.kill('SIGTERM');
        expect(await second.exited).toBe(0);
      }
      const perRecipient = await store.db
        .selectFrom('messages')
        .select(['to_number', (eb) => eb.fn.countAll<number>().as('n')])
        .where('campaign_id', '=', id)
        .groupBy('to_number')
        .execute();
      expect(perRecipient.length).toBe(TOTAL);
      expect(perRecipient.every((r) => Number(r.n) === 1)).toBe(true);
      const accepted = sim.received
        .filter((r) => r.status === CommandStatus.ESME_ROK)
        .map((r) => r.destination);
      expect(new Set(accepted).size).toBe(TOTAL);
      const duplicates = accepted.length - TOTAL;
      console.log(
        `${kind.name}: ${atCrash} submits before the crash, ${duplicates} duplicates after the restart`,
      );
      expect(duplicates).toBeLessThanOrEqual(WINDOW * BINDS + MAX_UNRECORDED);
    } finally {
      await store.close();
    }
  }, 120_000);
});
