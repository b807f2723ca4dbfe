import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { WorkQueue } from '../src/dispatch/work-queue.js';
import { ManualClock } from '../src/shared/clock.js';
import { openStore, type Store, type Trx } from '../src/store/store.js';
import { databaseKinds } from './helpers/databases.js';
import { minimalMessageRow } from './helpers/rows.js';

/**
 * Bulk claims start above where the previous ones stopped (BulkFloors in work-queue.ts). An entry
 * that becomes due below that floor — here a batch whose ids are older than messages already
 * claimed, as when it commits after a later batch — is claimed by the first claim that comes up
 * short, and otherwise by the first claim a second later, which reads from the oldest entry again.
 */
describe.each(databaseKinds)('bulk claims on $name', (kind) => {
  const enqueue = async (store: Store, ids: string[]) => {
    await store.db
      .insertInto('messages')
      .values(ids.map((id) => minimalMessageRow(id, 'ten_a', { expires_at: 9e12 })) as never)
      .execute();
    await store.db
      .insertInto('queue')
      .values(
        ids.map((id) => ({
          message_id: id,
          tenant_id: 'ten_a',
          lane: 'bulk',
          lane_rank: 2,
          not_before: 0,
          expires_at: 9e12,
        })) as never,
      )
      .execute();
  };
  const ids = (from: number, to: number) =>
    Array.from({ length: to - from + 1 }, (_, i) => `msg_${String(from + i).padStart(3, '0')}`);

  it('claims entries that became due below the last claim: at once when short, within a second when not', async () => {
    const target = await kind.create();
    const store = openStore(parseConfig({ data_dir: target.dataDir, database_url: target.url }));
    const clock = new ManualClock(1_000_000);
    const queue = new WorkQueue(store, clock);
    const claim = async (limit: number) =>
      (await queue.claim({ owner: 'me', limit, leaseMs: 60_000 })).map((m) => m.id);
    try {
      await store.migrate();
      await store.db
        .insertInto('tenants')
        .values({ id: 'ten_a', name: 'Shop', webhook_secret: 's', created_at: 0 } as never)
        .execute();
      await enqueue(store, ids(10, 19));
      expect(await claim(5)).toEqual(ids(10, 14));

      await enqueue(store, ids(5, 5));
      clock.advance(10);
      expect(await claim(3)).toEqual(ids(15, 17)); // full above the floor: msg_005 waits
      clock.advance(10);
      expect(await claim(10)).toEqual([...ids(5, 5), ...ids(18, 19)]); // short: read from the oldest

      await enqueue(store, ids(20, 29));
      await enqueue(store, ids(1, 1));
      clock.advance(10);
      expect(await claim(2)).toEqual(ids(20, 21));
      clock.advance(1_000);
      expect(await claim(2)).toEqual([...ids(1, 1), ...ids(22, 22)]);
    } finally {
      await store.close();
      await target.drop();
    }
  });
});

const TENANT = 'ten_01KB0D9NPZJ3986B9NJDEQAYK';
const postgres = databaseKinds.filter((k) => k.name === 'postgres');

/**
 * Store.walkIndexes: a bulk claim walks an index in claim order even when the queue grew faster
 * than autovacuum analysed it. Here the statistics are those of the empty queue, as they are in the
 * first seconds of a campaign or a benchmark.
 */
describe.runIf(postgres.length > 0)('claim plan on PostgreSQL', () => {
  it('walks an index, not a bitmap scan and sort of the whole backlog, with stale statistics', async () => {
    const target = await postgres[0]!.create();
    const store = openStore(parseConfig({ data_dir: target.dataDir, database_url: target.url }));
    try {
      await store.migrate();
      await sql`alter table queue set (autovacuum_enabled = false)`.execute(store.db);
      await sql`analyze queue`.execute(store.db);
      // Ids and times as the platform writes them: the plan turns on the table's size in pages.
      const now = Date.now();
      await sql`insert into queue (message_id, tenant_id, lane, lane_rank, not_before, expires_at)
        select 'msg_01KB' || lpad(g::text, 22, '0'), ${TENANT}, 'bulk', 2, ${now}::bigint - g,
          ${now}::bigint + 86400000
        from generate_series(1, 100000) g`.execute(store.db);

      const claimPlan = async (trx: Trx) =>
        (
          await sql<{ 'QUERY PLAN': string }>`explain (costs off)
            select message_id from queue
            where lane_rank = 2 and tenant_id = ${TENANT} and not_before <= ${now}
              and (claimed_by is null or claimed_until < ${now})
            order by lane_rank, message_id limit 250 for update skip locked`.execute(trx)
        ).rows
          .map((r) => r['QUERY PLAN'])
          .join('\n');

      // The planner's own choice with these statistics: the whole backlog, then a sort.
      const unguided = await store.write(claimPlan);
      expect(unguided).toMatch(/Bitmap/);

      const guided = await store.write(async (trx) => {
        await store.walkIndexes(trx);
        return claimPlan(trx);
      });
      expect(guided).toMatch(/Index Scan using queue_/);
      expect(guided).not.toMatch(/Bitmap|Sort/);
      // Transaction-local: the next transaction plans freely again.
      expect(await store.write(claimPlan)).toMatch(/Bitmap/);
    } finally {
      await store.close();
      await target.drop();
    }
  });
});
