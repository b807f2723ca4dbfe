import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MessageService, type UrgentTaker } from '../src/messages/service.js';
import { systemClock } from '../src/shared/clock.js';
import type { MessageTable } from '../src/store/schema.js';
import type { Store } from '../src/store/store.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { databaseKinds } from './helpers/databases.js';

const sqliteKind = databaseKinds.find((k) => k.name === 'sqlite')!;

const otp = (to: string) => ({ to, from: 'Shop', text: 'Your code is 123456', lane: 'otp' as const });
const bulk = (to: string) => ({ to, from: 'Shop', text: 'Sale today only', lane: 'bulk' as const });

/** Stands in for the dispatcher: grants every lease and records what it is handed. */
function recordingTaker(): UrgentTaker & { taken: MessageTable[] } {
  const taken: MessageTable[] = [];
  return {
    taken,
    lease: () => ({ owner: 'test-dispatcher', until: Date.now() + 60_000 }),
    take: (rows) => taken.push(...rows),
  };
}

/**
 * Intake of urgent messages on SQLite, where otp/transactional and bulk requests share one group
 * committer and one connection: an urgent batch goes before the ordinary writes queued at the
 * store's priority gate, and its messages reach the dispatcher at commit, while the log is synced.
 */
describe('urgent intake on SQLite', () => {
  let t: TestApp;
  let tenantId: string;

  beforeAll(async () => {
    t = await startTestApp(sqliteKind);
    tenantId = (await t.tenant('Shop')).id;
  });
  afterAll(() => t?.close());

  /** The test app's store, with each write's urgency recorded and its sync held until `release`. */
  function heldSyncStore() {
    const store = t.app.store;
    const urgency: boolean[] = [];
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const wrapped: Store = {
      ...store,
      writeCommitted: async (urgent, fn) => {
        urgency.push(urgent);
        const committed = await store.writeCommitted(urgent, fn);
        return { result: committed.result, durable: released.then(() => committed.durable) };
      },
    };
    return { store: wrapped, urgency, release };
  }

  it('hands an OTP to the dispatcher at commit, and answers its caller only once the log is synced', async () => {
    const { store, urgency, release } = heldSyncStore();
    const service = new MessageService(store, systemClock, t.config);
    const taker = recordingTaker();
    service.handUrgentTo(taker);
    try {
      let answered = false;
      const submitted = service.submit(tenantId, otp('+33612345001')).then((outcome) => {
        answered = true;
        return outcome;
      });
      await expect.poll(() => taker.taken.length).toBe(1);
      expect(taker.taken[0]!.to_number).toBe('+33612345001');
      // Committed and handed over, not yet durable: the caller still waits.
      const row = await t.app.store.db
        .selectFrom('messages')
        .select('id')
        .where('id', '=', taker.taken[0]!.id)
        .executeTakeFirst();
      expect(row?.id).toBe(taker.taken[0]!.id);
      await new Promise((r) => setTimeout(r, 20));
      expect(answered).toBe(false);
      release();
      const outcome = await submitted;
      expect(outcome.kind).toBe('committed');
      expect(urgency).toEqual([true]);
    } finally {
      release();
      await service.close();
    }
  });

  it('marks a batch urgent at the priority gate when it holds an urgent message, and only then', async () => {
    const { store, urgency, release } = heldSyncStore();
    release();
    const service = new MessageService(store, systemClock, t.config);
    service.handUrgentTo(recordingTaker());
    try {
      await service.submitBatch(tenantId, [bulk('+33612345002'), bulk('+33612345003')]);
      await service.submitBatch(tenantId, [bulk('+33612345004'), otp('+33612345005')]);
      await service.submit(tenantId, bulk('+33612345006'));
      expect(urgency).toEqual([false, true, false]);
    } finally {
      await service.close();
    }
  });

  it("an OTP's commit passes the ordinary writes waiting for the connection", async () => {
    const store = t.app.store;
    // Told once the OTP's write has asked for the connection (the gate queues it synchronously).
    let reachedGate!: () => void;
    const atGate = new Promise<void>((resolve) => (reachedGate = resolve));
    const service = new MessageService(
      {
        ...store,
        writeCommitted: (urgent, fn) => {
          const committed = store.writeCommitted(urgent, fn);
          reachedGate();
          return committed;
        },
      },
      systemClock,
      t.config,
    );
    const taker = recordingTaker();
    service.handUrgentTo(taker);
    let releaseFirst!: () => void;
    const firstHolds = new Promise<void>((resolve) => (releaseFirst = resolve));
    try {
      // A long ordinary write holds the connection; a second one queues behind it.
      const first = store.write(async () => {
        await firstHolds;
      });
      let otpSeenBySecond: number | null = null;
      const second = store.write(async (trx) => {
        const rows = await trx
          .selectFrom('messages')
          .select('id')
          .where('to_number', '=', '+33612345007')
          .execute();
        otpSeenBySecond = rows.length;
      });
      const submitted = service.submit(tenantId, otp('+33612345007'));
      await atGate;
      releaseFirst();
      await Promise.all([first, second, submitted]);
      expect(otpSeenBySecond).toBe(1);
      expect(taker.taken.map((r) => r.to_number)).toEqual(['+33612345007']);
    } finally {
      releaseFirst();
      await service.close();
    }
  });
});
