import { CompiledQuery, Migrator, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { listQuery } from '../src/messages/queries.js';
import { migrationProvider } from '../src/store/migrations/index.js';
import { openStore } from '../src/store/store.js';
import { bearer } from './helpers/app.js';
import { type CarrierRig, startCarrierRig, waitBound } from './helpers/carrier.js';
import { databaseKinds } from './helpers/databases.js';
import { minimalMessageRow } from './helpers/rows.js';

/**
 * `exception_status` (migration 011): the status when it is a rare one, for the message list's status
 * filter. It stands in for an index on the status: on PostgreSQL the carrier path's status changes
 * are then heap-only updates, and on SQLite (migration 013) they move no index entry.
 */
describe.each(databaseKinds)('exception_status on $name', (kind) => {
  let rig: CarrierRig | null = null;
  afterEach(async () => {
    await rig?.close();
    rig = null;
  });

  const exceptionOf = async (id: string) =>
    (
      await rig!.t.app.store.db
        .selectFrom('messages')
        .select('exception_status')
        .where('id', '=', id)
        .executeTakeFirstOrThrow()
    ).exception_status;

  it('fills the column of an existing history when it upgrades', async () => {
    const target = await kind.create();
    const store = openStore(parseConfig({ data_dir: target.dataDir, database_url: target.url }));
    try {
      const migrator = new Migrator({ db: store.db, provider: migrationProvider(kind.name) });
      const { error } = await migrator.migrateTo('010_webhook_delivery');
      expect(error).toBeUndefined();
      await store.db
        .insertInto('tenants')
        .values({ id: 't1', name: 'Shop', webhook_secret: 's', created_at: 0 } as never)
        .execute();
      const message = (id: string, status: string) => minimalMessageRow(id, 't1', { status });
      await store.db
        .insertInto('messages')
        .values([message('msg_01A', 'failed'), message('msg_01B', 'delivered')] as never)
        .execute();
      expect((await migrator.migrateToLatest()).error).toBeUndefined();
      const rows = await store.db
        .selectFrom('messages')
        .select(['id', 'exception_status'])
        .orderBy('id')
        .execute();
      expect(rows).toEqual([
        { id: 'msg_01A', exception_status: 'failed' },
        { id: 'msg_01B', exception_status: null },
      ]);
      if (kind.name === 'postgres') {
        const options = await sql<{ relname: string; reloptions: string[] | null }>`
          select c.relname, c.reloptions from pg_inherits i join pg_class c on c.oid = i.inhrelid
          where i.inhparent in ('messages'::regclass, 'message_parts'::regclass)`.execute(store.db);
        expect(options.rows.length).toBeGreaterThan(0);
        for (const r of options.rows) expect(r.reloptions).toEqual(['fillfactor=50']);
      }
    } finally {
      await store.close();
      await target.drop();
    }
  });

  it('indexes the rare statuses only, and the status filter of a rare one walks that index', async () => {
    const target = await kind.create();
    const store = openStore(parseConfig({ data_dir: target.dataDir, database_url: target.url }));
    try {
      await store.migrate();
      const indexes =
        kind.name === 'sqlite'
          ? sql<{
              name: string;
            }>`select name from sqlite_master where type = 'index' and tbl_name = 'messages'`
          : sql<{ name: string }>`select indexname as name from pg_indexes where tablename = 'messages'`;
      const names = (await indexes.execute(store.db)).rows.map((r) => r.name);
      expect(names).toContain('messages_tenant_exception');
      expect(names).not.toContain('messages_tenant_status');
      if (kind.name === 'sqlite') {
        const query = listQuery(store, 't1', { status: 'undelivered', limit: 50 }).compile();
        const plan = await store.db.executeQuery<{ detail: string }>(
          CompiledQuery.raw(`explain query plan ${query.sql}`, [...query.parameters]),
        );
        expect(plan.rows.map((r) => r.detail).join('\n')).toContain('messages_tenant_exception');
      }
    } finally {
      await store.close();
      await target.drop();
    }
  });

  it('holds scheduled and failure statuses only, and the status filter finds them', async () => {
    rig = await startCarrierRig(kind);
    const tenant = await rig.t.tenant();
    await waitBound(rig);
    const later = new Date(Date.now() + 3600_000).toISOString();
    const scheduled = await rig.send(tenant.apiKey, { send_at: later });
    expect(await exceptionOf(scheduled)).toBe('scheduled');
    const delivered = await rig.send(tenant.apiKey);
    await rig.waitForStatus([delivered], ['delivered']);
    expect(await exceptionOf(delivered)).toBeNull();
    rig.sim.setOptions({ undeliverable_rate: 1, undeliverable_error: '034' });
    const undelivered = await rig.send(tenant.apiKey);
    await rig.waitForStatus([undelivered], ['undelivered']);
    expect(await exceptionOf(undelivered)).toBe('undelivered');

    const list = async (status: string) =>
      (await rig!.t.app.http.inject({ url: `/v1/messages?status=${status}`, headers: bearer(tenant.apiKey) }))
        .json()
        .data.map((m: { id: string }) => m.id);
    expect(await list('scheduled')).toEqual([scheduled]);
    expect(await list('undelivered')).toEqual([undelivered]);
    expect(await list('delivered')).toEqual([delivered]);
    expect(await list('failed')).toEqual([]);
  });
});

describe.each(databaseKinds.filter((k) => k.name === 'postgres'))(
  'heap-only status updates on $name',
  (kind) => {
    let rig: CarrierRig | null = null;
    afterEach(async () => {
      await rig?.close();
      rig = null;
    });

    it('makes the status changes and receipts of the carrier path heap-only updates', async () => {
      rig = await startCarrierRig(kind);
      const tenant = await rig.t.tenant();
      await waitBound(rig);
      const ids = await rig.sendBulkBatch(tenant.apiKey, 50, 'h');
      await rig.waitForStatus(ids, ['delivered']);
      const db = rig.t.app.store.db;
      const indexes = await sql<{ indexname: string }>`
        select indexname from pg_indexes where tablename = 'messages' order by indexname`.execute(db);
      expect(indexes.rows.map((r) => r.indexname)).not.toContain('messages_tenant_status');
      // Each message was updated twice (submitted, delivered), and its part once (by the receipt).
      // The server's statistics reach pg_stat_user_tables when the backends that made the updates
      // next flush them (up to about ten seconds).
      const counts = async (table: string) =>
        (
          await sql<{ updates: string; hot: string }>`
            select coalesce(sum(n_tup_upd), 0) as updates, coalesce(sum(n_tup_hot_upd), 0) as hot
            from pg_stat_user_tables
            where relid in (select inhrelid from pg_inherits where inhparent = ${table}::regclass)`.execute(
            db,
          )
        ).rows[0]!;
      const deadline = Date.now() + 20_000;
      let messages = await counts('messages');
      let parts = await counts('message_parts');
      while ((Number(messages.updates) < 100 || Number(parts.updates) < 50) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 250));
        messages = await counts('messages');
        parts = await counts('message_parts');
      }
      expect(Number(messages.updates)).toBeGreaterThanOrEqual(100);
      expect(Number(parts.updates)).toBeGreaterThanOrEqual(50);
      // With the status indexed or full pages, none could be; now those that find room on their page are.
      expect(Number(messages.hot)).toBeGreaterThan(0);
      expect(Number(parts.hot)).toBeGreaterThan(0);
    }, 30_000);
  },
);
