import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { openStore } from '../src/store/store.js';
import { type CrashRig, startCrashRig } from './helpers/crash.js';
import { databaseKinds } from './helpers/databases.js';
import { WebhookReceiver } from './helpers/receiver.js';
import { runCli, startServerProcess } from './helpers/server-process.js';

const TOTAL = 2000;

/**
 * kill -9 while webhooks flow: the carrier path's events handed over to the dead sender had no
 * webhook_events row yet, only their handover row (src/webhooks/handovers.ts). After a restart its
 * lease runs out and every status change still reaches the customer: at least once each.
 */
describe.each(databaseKinds)('crash with webhook events in flight on $name', (kind) => {
  let rig: CrashRig;
  let receiver: WebhookReceiver;
  beforeAll(async () => {
    rig = await startCrashRig(kind, {
      seed: 11,
      binds: 1,
      window: 10,
      tps: 1000,
      maxUnrecorded: 100,
      // The lease of handed-over events is 4 × the timeout + 5 s: 7 s here.
      yaml: ['webhooks:', '  allow_private_targets: true', '  timeout_ms: 500'],
    });
    receiver = new WebhookReceiver();
  });
  afterAll(async () => {
    await receiver.stop();
    await rig.close();
  });

  it('delivers every status change after the restart, handed-over ones included', async () => {
    const url = await receiver.start();
    // Slow answers keep events in the sender, handed over and not yet written, when the kill comes.
    receiver.delayMs = 300;
    const apiKey = JSON.parse(runCli(['tenant', 'create', '--name', 'Hooks'], rig.env).stdout)
      .api_key as string;
    const first = await startServerProcess(rig.env);
    const headers = { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' };
    const account = await fetch(`${first.baseUrl}/v1/account`, {
      method: 'PATCH',
      headers,
      body: JSON.stringify({ webhook_url: url, webhook_batch_size: 100 }),
    });
    expect(account.status).toBe(200);
    for (let b = 0; b < TOTAL / 1000; b++) {
      const res = await fetch(`${first.baseUrl}/v1/messages/batch`, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          messages: Array.from({ length: 1000 }, (_, i) => ({
            to: '+33612345678',
            from: 'Hooks',
            text: `h${b * 1000 + i}`,
          })),
        }),
      });
      expect(res.status).toBe(202);
    }
    while (rig.sim.received.length < 800 || receiver.requests.length < 2)
      await new Promise((r) => setTimeout(r, 2));
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');

    const store = openStore(parseConfig({ data_dir: rig.db.dataDir, database_url: rig.db.url }));
    // The events the dead sender held without a row: only their handover row says they exist.
    const listed = (await store.db.selectFrom('webhook_handovers').select('events').execute()).flatMap((h) =>
      (JSON.parse(h.events) as string[][]).map((e) => e[0]!),
    );
    const written = new Set(
      (await store.db.selectFrom('webhook_events').select('id').execute()).map((e) => e.id),
    );
    // Delivered and recorded in the delivery log before the crash: not sent again.
    const logged = new Set(
      (await store.db.selectFrom('webhook_deliveries').select('events').execute()).flatMap((d) =>
        (JSON.parse(d.events) as string[][]).map((e) => e[0]!),
      ),
    );
    const unwritten = listed.filter((id) => !written.has(id) && !logged.has(id));
    const alreadyLogged = listed.filter((id) => logged.has(id));
    expect(unwritten.length).toBeGreaterThan(0);
    const beforeRestart = receiver.requests.length;
    receiver.delayMs = 0;
    const second = await startServerProcess(rig.env);
    try {
      const eventsIn = (requests: typeof receiver.requests) =>
        requests.flatMap(
          (r) => JSON.parse(r.body).events as { id: string; data: { id: string; status: string } }[],
        );
      const deadline = Date.now() + 60_000;
      for (;;) {
        const resent = new Set(eventsIn(receiver.requests.slice(beforeRestart)).map((e) => e.id));
        const handovers = await store.db.selectFrom('webhook_handovers').select('id').execute();
        if (handovers.length === 0 && unwritten.every((id) => resent.has(id))) {
          expect(alreadyLogged.filter((id) => resent.has(id))).toEqual([]);
          break;
        }
        if (Date.now() > deadline)
          throw new Error(
            `${unwritten.filter((id) => !resent.has(id)).length} handed-over events not resent`,
          );
        await new Promise((r) => setTimeout(r, 100));
      }
      // And every status change of every message reached the customer, at least once.
      const seen = new Set(eventsIn(receiver.requests).map((e) => `${e.data.id} ${e.data.status}`));
      const ids = await store.db.selectFrom('messages').select('id').execute();
      expect(ids).toHaveLength(TOTAL);
      await expect
        .poll(
          () => {
            for (const e of eventsIn(receiver.requests)) seen.add(`${e.data.id} ${e.data.status}`);
            return ids.filter(({ id }) => !seen.has(`${id} submitted`) || !seen.has(`${id} delivered`))
              .length;
          },
          { timeout: 30_000 },
        )
        .toBe(0);
      console.log(
        `${kind.name}: ${unwritten.length} handed-over events without a row at the crash, all sent again after the restart; ${alreadyLogged.length} already in the delivery log, not sent again`,
      );
    } finally {
      await store.close();
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    }
  }, 120_000);
});
