import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { type SubmitUnit, WRITE_SUBMIT_UNITS } from '../src/messages/writer.js';
import { systemClock } from '../src/shared/clock.js';
import type { MessageTable } from '../src/store/schema.js';
import { openStore, type Store } from '../src/store/store.js';
import { TenantService } from '../src/tenants/tenants.js';
import { minimalMessageRow } from './helpers/rows.js';

/** SQLite's connection on its own thread (src/store/sqlite-thread.ts), through the Store. */
describe('the SQLite thread', () => {
  const dirs: string[] = [];
  const stores: Store[] = [];
  const open = async (file = 'relais.db') => {
    const dir = mkdtempSync(join(tmpdir(), 'relais-sqlite-thread-'));
    dirs.push(dir);
    const store = openStore(parseConfig({ data_dir: dir, database_url: `sqlite:${join(dir, file)}` }));
    stores.push(store);
    return { dir, store };
  };
  const migrated = async () => {
    const { store } = await open();
    await store.migrate();
    const tenant = await new TenantService(store, systemClock).create({ name: 'Thread' });
    return { store, tenantId: tenant.tenant_id };
  };
  const count = async (store: Store, table: 'messages' | 'queue') =>
    Number(
      (
        await store.db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  const unit = (tenantId: string, ids: string[]): SubmitUnit => ({
    tenantId,
    createdAt: 1,
    rows: ids.map((id) => minimalMessageRow(id, tenantId) as unknown as MessageTable),
  });

  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close().catch(() => {});
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("gives a failed statement SQLite's error code, and the connection goes on", async () => {
    const { store, tenantId } = await migrated();
    await store.write((trx) =>
      trx.insertInto('messages').values(minimalMessageRow('msg_a', tenantId)).execute(),
    );
    const err = await store
      .write((trx) => trx.insertInto('messages').values(minimalMessageRow('msg_a', tenantId)).execute())
      .catch((e: unknown) => e as Error & { code?: string });
    expect(err).toBeInstanceOf(Error);
    expect((err as { code?: string }).code).toBe('SQLITE_CONSTRAINT_PRIMARYKEY');
    expect((err as Error).message).toMatch(/UNIQUE constraint failed: messages.id/);
    expect(await count(store, 'messages')).toBe(1);
  });

  it('runs a transaction whole on the thread, and rolls all of it back when it fails', async () => {
    const { store, tenantId } = await migrated();
    const outcomes = await store.writeIn(false, WRITE_SUBMIT_UNITS, {
      units: [unit(tenantId, ['msg_1', 'msg_2'])],
      lease: null,
    });
    expect(outcomes).toEqual(['committed']);
    expect(await count(store, 'queue')).toBe(2);
    // msg_3 goes in, then msg_1 again fails the insert: msg_3 must not stay.
    const failed = store.writeIn(false, WRITE_SUBMIT_UNITS, {
      units: [unit(tenantId, ['msg_3', 'msg_1'])],
      lease: null,
    });
    await expect(failed).rejects.toMatchObject({ code: 'SQLITE_CONSTRAINT_PRIMARYKEY' });
    expect(await count(store, 'messages')).toBe(2);
    expect(await count(store, 'queue')).toBe(2);
    // The connection is free again, out of any transaction.
    await store.writeIn(false, WRITE_SUBMIT_UNITS, { units: [unit(tenantId, ['msg_3'])], lease: null });
    expect(await count(store, 'messages')).toBe(3);
  });

  it('runs no statement of the main thread in the middle of a transaction on the thread', async () => {
    const { store, tenantId } = await migrated();
    const ids = Array.from({ length: 2000 }, (_, i) => `msg_${String(i).padStart(5, '0')}`);
    const writing = store.writeIn(false, WRITE_SUBMIT_UNITS, { units: [unit(tenantId, ids)], lease: null });
    // Issued while the thread inserts: it sees all of the batch or none of it, never a part.
    const seen = await Promise.all([count(store, 'messages'), count(store, 'queue')]);
    await writing;
    expect([0, 2000]).toContain(seen[0]);
    expect(seen[1]).toBe(seen[0]);
    expect(await count(store, 'messages')).toBe(2000);
  });

  it('refuses every call once closed, with a clear error', async () => {
    const { store, tenantId } = await migrated();
    await store.close();
    await expect(count(store, 'messages')).rejects.toThrow(/destroyed|closed/);
    await expect(
      store.writeIn(false, WRITE_SUBMIT_UNITS, { units: [unit(tenantId, ['msg_x'])], lease: null }),
    ).rejects.toThrow(/destroyed|closed/);
  });

  it('says why when the database cannot be opened', async () => {
    const { dir } = await open();
    // A directory where the file should be.
    mkdirSync(join(dir, 'taken.db'));
    const store = openStore(parseConfig({ data_dir: dir, database_url: `sqlite:${join(dir, 'taken.db')}` }));
    stores.push(store);
    await expect(store.migrate()).rejects.toThrow(/unable to open database file/);
  });
});
