import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { openStore, type Trx } from '../src/store/store.js';
import { databaseKinds } from './helpers/databases.js';

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
