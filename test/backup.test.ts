import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { openStore } from '../src/store/store.js';
import { databaseKinds, type TestDatabase } from './helpers/databases.js';
import { runCli, runCliAsync, startServerProcess } from './helpers/server-process.js';

/**
 * `relais backup` while traffic flows, then `relais restore` into a fresh database: every message
 * acknowledged before the backup started is in the restored copy.
 */
describe.each(databaseKinds)('backup under load and restore on $name', (kind) => {
  let source: TestDatabase;
  let target: TestDatabase;
  const backupDirs: string[] = [];
  const backupDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'relais-backup-'));
    backupDirs.push(dir);
    return dir;
  };
  beforeAll(async () => {
    source = await kind.create();
    target = await kind.create();
  });
  afterAll(async () => {
    await source.drop();
    await target.drop();
    for (const dir of backupDirs) rmSync(dir, { recursive: true, force: true });
  });

  it('restores every message acknowledged before the backup', async () => {
    const env = { RELAIS_DATA_DIR: source.dataDir, DATABASE_URL: source.url };
    const apiKey = JSON.parse(runCli(['tenant', 'create', '--name', 'Backup'], env).stdout).api_key as string;
    const server = await startServerProcess(env);
    const acknowledged: string[] = [];
    let stop = false;
    let n = 0;
    const load = (async () => {
      while (!stop) {
        const res = await fetch(`${server.baseUrl}/v1/messages/batch`, {
          method: 'POST',
          headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            messages: Array.from({ length: 100 }, () => ({
              to: '+33612345678',
              from: 'Backup',
              text: `b${n++}`,
            })),
          }),
        });
        const body = (await res.json()) as { results: { message: { id: string } }[] };
        acknowledged.push(...body.results.map((r) => r.message.id));
      }
    })();
    while (acknowledged.length < 2000) await new Promise((r) => setTimeout(r, 10));
    const before = [...acknowledged];
    const dir = backupDir();
    const sentBeforeBackup = acknowledged.length;
    const backup = await runCliAsync(['backup', '--to', dir], env); // traffic keeps flowing meanwhile
    const sentDuringBackup = acknowledged.length - sentBeforeBackup;
    stop = true;
    await load;
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(backup.status).toBe(0);
    const { file, bytes } = JSON.parse(backup.stdout) as { file: string; bytes: number };
    expect(existsSync(file)).toBe(true);
    expect(bytes).toBeGreaterThan(0);
    expect(readdirSync(dir).filter((f) => f.endsWith('.partial'))).toEqual([]);
    expect(sentDuringBackup).toBeGreaterThan(0); // the backup really ran under load

    const restoreEnv = { RELAIS_DATA_DIR: target.dataDir, DATABASE_URL: target.url };
    const restored = runCli(['restore', '--from', file], restoreEnv);
    expect(restored.status).toBe(0);
    const store = openStore(parseConfig({ data_dir: target.dataDir, database_url: target.url }));
    try {
      await store.migrate(); // a restored backup is upgraded like any database
      const found = new Set<string>();
      for (let i = 0; i < before.length; i += 500) {
        const rows = await store.db
          .selectFrom('messages')
          .select('id')
          .where('id', 'in', before.slice(i, i + 500))
          .execute();
        for (const r of rows) found.add(r.id);
      }
      expect(before.filter((id) => !found.has(id))).toEqual([]);
      const tenants = await store.db.selectFrom('tenants').select('name').execute();
      expect(tenants.map((t) => t.name)).toContain('Backup');
    } finally {
      await store.close();
    }
  }, 120_000);

  it('refuses a file that is not a backup, with a clear message', () => {
    const dir = backupDir();
    const res = runCli(['restore', '--from', join(dir, 'missing.db')], {
      RELAIS_DATA_DIR: target.dataDir,
      DATABASE_URL: target.url,
    });
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(/no backup file/);
  });
});
