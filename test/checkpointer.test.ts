import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { openStore } from '../src/store/store.js';

/**
 * The wal-index (the `-shm` file) as SQLite lays it out: the last frame of the log (mxFrame) at byte
 * 16 of its header, the last frame copied back into the database (nBackfill) at byte 96, both in the
 * machine's byte order (little-endian here).
 */
function walProgress(dbPath: string): { frames: number; backfilled: number } {
  const shm = readFileSync(`${dbPath}-shm`);
  return { frames: shm.readUInt32LE(16), backfilled: shm.readUInt32LE(96) };
}

describe('SQLite checkpoints on a thread of their own', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('copies the committed log back into the database without the writing connection doing it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'relais-checkpoint-'));
    dirs.push(dir);
    const path = join(dir, 'relais.db');
    const store = openStore(parseConfig({ data_dir: dir }));
    try {
      await store.migrate();
      await store.write((trx) => sql`create table filler (n integer, pad text)`.execute(trx));
      // A few hundred pages: far below the writing connection's own threshold (4,000 pages).
      for (let i = 0; i < 40; i++) {
        await store.write((trx) =>
          sql`with recursive s(n) as (select 1 union all select n + 1 from s where n < 100)
            insert into filler select n, printf('%.2000c', 'x') from s`.execute(trx),
        );
      }
      const written = walProgress(path);
      expect(written.frames).toBeGreaterThan(100);
      expect(written.frames).toBeLessThan(4000);
      // The checkpointer runs every second.
      const deadline = Date.now() + 5000;
      let now = walProgress(path);
      while (now.backfilled < written.frames && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        now = walProgress(path);
      }
      expect(now.backfilled).toBeGreaterThanOrEqual(written.frames);
      // And the data is all there, through the writing connection.
      const { rows } = await sql<{ n: number }>`select count(*) as n from filler`.execute(store.db);
      expect(rows[0]!.n).toBe(4000);
    } finally {
      await store.close();
    }
  });
});
