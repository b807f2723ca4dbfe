import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, buildApp } from '../src/app.js';
import { restoreDatabase } from '../src/backup/backup.js';
import { parseConfig } from '../src/config/load.js';
import { openStore } from '../src/store/store.js';
import { bearer } from './helpers/app.js';
import { databaseKinds, type TestDatabase } from './helpers/databases.js';
import { loggerInto } from './helpers/log-lines.js';

const OWN = /^relais-scheduled-\d{8}-\d{6}-\d{3}\.(db|pgdump)$/;

describe('backup configuration', () => {
  it('rejects a schedule without a directory or with impossible values, naming the key', () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ schedule: { interval_hours: 24 } }, /backup\.schedule\.to/],
      [{ schedule: { to: 'b', interval_hours: 0 } }, /backup\.schedule\.interval_hours/],
      [{ schedule: { to: 'b', keep: 0 } }, /backup\.schedule\.keep/],
      [{ schedule: { to: 'b', every: '1d' } }, /backup\.schedule\.every: unknown configuration key/],
    ];
    for (const [backup, message] of bad) expect(() => parseConfig({ backup })).toThrow(message);
    expect(parseConfig({}).backup.schedule).toBeUndefined();
  });
});

describe.each(databaseKinds)('scheduled backups on $name', (kind) => {
  let source: TestDatabase;
  let target: TestDatabase;
  let app: App;
  let backupDir: string;
  let closed = false;
  const logLines: Record<string, unknown>[] = [];
  beforeAll(async () => {
    source = await kind.create();
    target = await kind.create();
    const config = parseConfig({
      data_dir: source.dataDir,
      database_url: source.url,
      http: { port: 0 },
      simulator: { enabled: 'never' },
      backup: { schedule: { interval_hours: 1 / 3600, to: 'backups', keep: 2 } },
    });
    backupDir = join(source.dataDir, 'backups');
    app = await buildApp(config, { logger: loggerInto(logLines) });
  });
  afterAll(async () => {
    if (!closed) await app?.close();
    await source?.drop();
    await target?.drop();
  });

  const ownFiles = () => readdirSync(backupDir).filter((n) => OWN.test(n));
  const scrape = async () =>
    (await app.http.inject({ method: 'GET', url: '/metrics', remoteAddress: '127.0.0.1' })).body;

  it('backs up every interval while serving, keeps the newest `keep`, never deletes foreign files', async () => {
    const { port } = await app.start();
    const apiKey = (await app.tenants.create({ name: 'Backups' })).api_key;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/v1/messages`, {
        method: 'POST',
        headers: { ...bearer(apiKey), 'content-type': 'application/json' },
        body: JSON.stringify({ to: '+33612345678', from: 'Backup', text: `m${i}` }),
      });
      ids.push(((await res.json()) as { id: string }).id);
    }
    // A manual `relais backup` and an operator's file in the same directory: not the schedule's.
    writeFileSync(join(backupDir, 'relais-20260101-000000.db'), 'manual backup');
    writeFileSync(join(backupDir, 'notes.txt'), 'keep me');

    const seen = new Set<string>();
    let most = 0;
    const deadline = Date.now() + 25_000;
    while (seen.size < 4 && Date.now() < deadline) {
      const files = ownFiles();
      for (const f of files) seen.add(f);
      most = Math.max(most, files.length);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(seen.size).toBeGreaterThanOrEqual(4); // one per second, by itself
    expect(most).toBeLessThanOrEqual(2);
    const left = readdirSync(backupDir);
    expect(left).toContain('relais-20260101-000000.db');
    expect(left).toContain('notes.txt');
    expect(left.filter((n) => n.endsWith('.partial'))).toEqual([]);
    expect(await scrape()).toMatch(/relais_backup_last_success_timestamp_seconds [1-9]\d{9}/);
    expect(await scrape()).toMatch(/relais_backup_failures_total 0/);
    expect(logLines.some((l) => l.msg === 'scheduled backup done' && l.role === 'backup')).toBe(true);

    // Never two at once: a second call while one runs does nothing.
    const [a, b] = await Promise.all([app.backups!.runOnce(), app.backups!.runOnce()]);
    expect([a, b].filter((r) => r !== null).length).toBe(1);
    await app.close();
    closed = true;

    const newest = (await app.backups!.listOwn())[0]!.file;
    const restoreConfig = parseConfig({ data_dir: target.dataDir, database_url: target.url });
    await restoreDatabase(restoreConfig, newest);
    const store = openStore(restoreConfig);
    try {
      await store.migrate();
      const rows = await store.db.selectFrom('messages').select('id').where('id', 'in', ids).execute();
      expect(rows.length).toBe(ids.length);
    } finally {
      await store.close();
    }
  });
});

describe.each(databaseKinds)('a failing scheduled backup on $name', (kind) => {
  it('is logged and counted, and the next one succeeds again', async () => {
    const db = await kind.create();
    const lines: Record<string, unknown>[] = [];
    const config = parseConfig({
      data_dir: db.dataDir,
      database_url: db.url,
      simulator: { enabled: 'never' },
      backup: { schedule: { interval_hours: 24, to: 'backups', keep: 3 } },
    });
    const app = await buildApp(config, { logger: loggerInto(lines) });
    try {
      await app.http.ready();
      const dir = join(db.dataDir, 'backups');
      rmSync(dir, { recursive: true, force: true });
      writeFileSync(dir, 'a file where the directory should be');
      expect(await app.backups!.runOnce()).toBeNull();
      const metrics = (await app.http.inject({ url: '/metrics', remoteAddress: '127.0.0.1' })).body;
      expect(metrics).toMatch(/relais_backup_failures_total 1/);
      expect(metrics).toMatch(/relais_backup_last_success_timestamp_seconds 0/);
      expect(lines.find((l) => l.msg === 'scheduled backup failed')).toMatchObject({ level: 50, dir });
      rmSync(dir);
      const made = await app.backups!.runOnce();
      expect(made?.file).toMatch(/relais-scheduled-.*\.(db|pgdump)$/);
      expect(made!.bytes).toBeGreaterThan(0);
    } finally {
      await app.close();
      await db.drop();
    }
  });
});
