import type { Logger } from '../../src/shared/logger.js';
import type { SimulatorOptionsInput } from '../../src/simulator/options.js';
import { CarrierSimulator } from '../../src/simulator/simulator.js';
import { bearer, startTestApp, type TestApp } from './app.js';
import type { DatabaseKind } from './databases.js';

export interface CarrierRig {
  t: TestApp;
  sim: CarrierSimulator;
  /** POST /v1/messages; returns the message id. */
  send(apiKey: string, body?: Record<string, unknown>): Promise<string>;
  /** POST /v1/messages/batch of `n` bulk messages with texts `${tag}0`…; returns their ids in order. */
  sendBulkBatch(apiKey: string, n: number, tag: string): Promise<string[]>;
  /** Waits until every message has one of the statuses, then returns their rows. */
  waitForStatus(
    ids: string[],
    statuses: string[],
    timeoutMs?: number,
  ): Promise<{ id: string; status: string; error_code: string | null }[]>;
  close(): Promise<void>;
}

/**
 * A platform wired to an in-process carrier simulator over real TCP, with one connector
 * `carrier-a` (configurable) and the default route to it.
 */
export async function startCarrierRig(
  kind: DatabaseKind,
  simOptions: SimulatorOptionsInput = {},
  connector: Record<string, unknown> = {},
  overrides: Record<string, unknown> = {},
  options: { logger?: Logger } = {},
): Promise<CarrierRig> {
  const sim = new CarrierSimulator({ port: 0, receipt_delay_ms: 20, seed: 42, ...simOptions });
  const { port } = await sim.start();
  const t = await startTestApp(
    kind,
    {
      connectors: [
        {
          name: 'carrier-a',
          host: '127.0.0.1',
          port,
          system_id: 'relais',
          password: 'secret',
          binds: 1,
          window: 10,
          tps: 1000,
          reconnect_min_ms: 50,
          reconnect_max_ms: 200,
          response_timeout_ms: 2000,
          ...connector,
        },
      ],
      ...overrides,
    },
    { listen: true, ...options },
  );
  const rig: CarrierRig = {
    t,
    sim,
    async send(apiKey, body = {}) {
      const res = await t.app.http.inject({
        method: 'POST',
        url: '/v1/messages',
        headers: bearer(apiKey),
        payload: { to: '+33612345678', from: 'Pizzeria', text: 'Your pizza is on its way', ...body },
      });
      if (res.statusCode !== 202) throw new Error(`send failed: ${res.statusCode} ${res.body}`);
      return res.json().id;
    },
    async sendBulkBatch(apiKey, n, tag) {
      const res = await t.app.http.inject({
        method: 'POST',
        url: '/v1/messages/batch',
        headers: bearer(apiKey),
        payload: {
          messages: Array.from({ length: n }, (_, i) => ({
            to: '+33612345678',
            from: 'Shop',
            text: `${tag}${i}`,
            lane: 'bulk',
          })),
        },
      });
      if (res.statusCode !== 202 || res.json().rejected !== 0) throw new Error(`batch failed: ${res.body}`);
      return res.json().results.map((r: { message: { id: string } }) => r.message.id);
    },
    async waitForStatus(ids, statuses, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const rows = [];
        for (let i = 0; i < ids.length; i += 500) {
          rows.push(
            ...(await t.app.store.db
              .selectFrom('messages')
              .select(['id', 'status', 'error_code'])
              .where('id', 'in', ids.slice(i, i + 500))
              .execute()),
          );
        }
        if (rows.length === ids.length && rows.every((r) => statuses.includes(r.status))) return rows;
        if (Date.now() > deadline) {
          const counts: Record<string, number> = {};
          for (const r of rows) counts[r.status] = (counts[r.status] ?? 0) + 1;
          throw new Error(`timed out waiting for ${statuses.join('|')}: ${JSON.stringify(counts)}`);
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async close() {
      await t.close();
      await sim.stop();
    },
  };
  return rig;
}

/** Waits until the connector has a bind up. */
export async function waitBound(rig: CarrierRig, name = 'carrier-a'): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (rig.t.app.carriers.connectors.get(name)!.boundTransmitters === 0) {
    if (Date.now() > deadline) throw new Error(`${name} never bound`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
