import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import type { CarrierSimulator } from '../src/simulator/simulator.js';
import { CommandStatus } from '../src/smpp/constants.js';
import { openStore } from '../src/store/store.js';
import { type CrashRig, startCrashRig } from './helpers/crash.js';
import { databaseKinds, type TestDatabase } from './helpers/databases.js';
import { runCli, startServerProcess } from './helpers/server-process.js';

const WINDOW = 10;
const BINDS = 2;
const TOTAL = 3000;
const MAX_UNRECORDED = 100;

/**
 * kill -9 in the middle of dispatching: after a restart every accepted message is delivered, and
 * the carrier saw duplicates only for the parts whose answer had not been recorded yet — at most the
 * submits in flight (window × binds) plus dispatcher.max_unrecorded.
 */
describe.each(databaseKinds)('crash during dispatch on $name', (kind) => {
  let db: TestDatabase;
  let sim: CarrierSimulator;
  let env: Record<string, string>;

  let rig: CrashRig;
  beforeAll(async () => {
    rig = await startCrashRig(kind, {
      seed: 7,
      binds: BINDS,
      window: WINDOW,
      tps: 1000,
      maxUnrecorded: MAX_UNRECORDED,
    });
    ({ db, sim, env } = rig);
  });
  afterAll(() => rig.close());

  it('loses nothing and bounds the duplicates by what was in flight', async () => {
    const apiKey = JSON.parse(runCli(['tenant', 'create', '--name', 'Crash'], env).stdout).api_key as string;
    const first = await startServerProcess(env);
    for (let b = 0; b < TOTAL / 1000; b++) {
      const res = await fetch(`${first.baseUrl}/v1/messages/batch`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          messages: Array.from({ length: 1000 }, (_, i) => ({
            to: '+33612345678',
            from: 'Crash',
            text: `c${b * 1000 + i}`,
            lane: 'bulk',
          })),
        }),
      });
      expect(res.status).toBe(202);
    }
    while (sim.received.length < 800) await new Promise((r) => setTimeout(r, 2));
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    const atCrash = sim.received.length;

    const second = await startServerProcess(env);
    const config = parseConfig({ data_dir: db.dataDir, database_url: db.url });
    const store = openStore(config);
    try {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const row = await store.db
          .selectFrom('messages')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('status', '=', 'delivered')
          .executeTakeFirstOrThrow();
        if (Number(row.n) === TOTAL) break;
        if (Date.now() > deadline) throw new Error(`only ${row.n} of ${TOTAL} delivered`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await store.close();
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    }
    const accepted = sim.received.filter((r) => r.status === CommandStatus.ESME_ROK).map((r) => r.text);
    const distinct = new Set(accepted);
    expect(distinct.size).toBe(TOTAL);
    const duplicates = accepted.length - distinct.size;
    console.log(
      `${kind.name}: ${atCrash} submits before the crash, ${duplicates} duplicates after the restart`,
    );
    // The documented bound: the submits in flight plus the accepted-but-unrecorded ones.
    expect(duplicates).toBeLessThanOrEqual(WINDOW * BINDS + MAX_UNRECORDED);
  }, 120_000);
});
