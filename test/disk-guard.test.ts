import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import SqliteDatabase from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, buildApp } from '../src/app.js';
import { parseConfig } from '../src/config/load.js';
import { DiskGuard, type VolumeSpace } from '../src/observability/disk-guard.js';
import { createLogger } from '../src/shared/logger.js';
import { bearer } from './helpers/app.js';
import { databaseKinds, type TestDatabase } from './helpers/databases.js';

const MiB = 1024 * 1024;
const GUARD = {
  interval_ms: 100,
  warn_free_bytes: 100 * MiB,
  warn_free_percent: 0,
  critical_free_bytes: 10 * MiB,
  critical_free_percent: 0,
  hysteresis_percent: 10,
};

/** A disk whose free space the test sets: the injected statfs reader. */
class FakeDisk {
  free = 500 * MiB;
  failing = false;
  readonly read = async (): Promise<VolumeSpace> => {
    if (this.failing) throw Object.assign(new Error('EIO: i/o error, statfs'), { code: 'EIO' });
    return { freeBytes: this.free, totalBytes: 1000 * MiB };
  };
}

function capture() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  return { lines, logger: createLogger('info', sink) };
}

describe('disk_guard configuration', () => {
  it('rejects thresholds that make no sense, naming the key', () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ critical_free_bytes: 3 * 1024 ** 3 }, /disk_guard\.critical_free_bytes: critical thresholds/],
      [{ critical_free_percent: 20 }, /disk_guard\.critical_free_bytes: critical thresholds/],
      [{ warn_free_percent: 101 }, /disk_guard\.warn_free_percent/],
      [{ interval_ms: 10 }, /disk_guard\.interval_ms/],
      [{ critical_free_bytes: -1 }, /disk_guard\.critical_free_bytes/],
      [{ watch: ['/'] }, /disk_guard\.watch: unknown configuration key/],
    ];
    for (const [disk_guard, message] of bad) expect(() => parseConfig({ disk_guard })).toThrow(message);
  });
});

describe('DiskGuard states', () => {
  it('warns, turns critical, holds with hysteresis, recovers; one log line per change', async () => {
    const disk = new FakeDisk();
    const { lines, logger } = capture();
    const guard = new DiskGuard(
      [{ name: 'data', path: '/data' }],
      { enabled: true, ...GUARD },
      logger,
      disk.read,
    );
    const changes: string[] = [];
    guard.onChange((state, previous) => changes.push(`${previous}->${state}`));
    const at = async (freeMiB: number) => {
      disk.free = freeMiB * MiB;
      return guard.check();
    };
    expect(await at(500)).toBe('ok');
    expect(await at(90)).toBe('warn');
    expect(await at(80)).toBe('warn');
    expect(await at(9)).toBe('critical');
    expect(guard.isCritical()).toBe(true);
    expect(await at(10.5)).toBe('critical'); // above the threshold, not above it + 10 %
    expect(await at(11.5)).toBe('warn');
    expect(await at(105)).toBe('warn'); // same margin on the warning threshold
    expect(await at(120)).toBe('ok');
    expect(guard.isCritical()).toBe(false);
    expect(changes).toEqual(['ok->warn', 'warn->critical', 'critical->warn', 'warn->ok']);
    const stateLines = lines.filter((l) => l.volume === 'data');
    expect(stateLines.map((l) => [l.previous, l.state, l.level])).toEqual([
      ['ok', 'warn', 40],
      ['warn', 'critical', 40],
      ['critical', 'warn', 40],
      ['warn', 'ok', 30],
    ]);
    expect(stateLines[1]).toMatchObject({ free_bytes: 9 * MiB, path: '/data' });
  });

  it('watches the data directory, a SQLite file kept elsewhere, the log and backup directories', () => {
    const config = parseConfig({ data_dir: '/srv/relais', database_url: 'sqlite:/fast/relais.db' });
    expect(DiskGuard.volumesOf(config, '/var/log/relais', '/backups')).toEqual([
      { name: 'data', path: '/srv/relais' },
      { name: 'database', path: '/fast' },
      { name: 'logs', path: '/var/log/relais' },
      { name: 'backups', path: '/backups' },
    ]);
    expect(DiskGuard.volumesOf(parseConfig({ data_dir: '/srv/relais' }), null, null)).toEqual([
      { name: 'data', path: '/srv/relais' },
    ]);
  });

  it('percent thresholds count too, and an unreadable volume keeps its last state (logged)', async () => {
    const disk = new FakeDisk();
    const { lines, logger } = capture();
    const guard = new DiskGuard(
      [{ name: 'logs', path: '/logs' }],
      { ...GUARD, enabled: true, critical_free_bytes: 0, critical_free_percent: 5, warn_free_percent: 10 },
      logger,
      disk.read,
    );
    disk.free = 40 * MiB; // 4 % of 1000 MiB, far above 0 bytes
    expect(await guard.check()).toBe('critical');
    disk.failing = true;
    expect(await guard.check()).toBe('critical');
    expect(lines.at(-1)).toMatchObject({ volume: 'logs', msg: 'cannot read free disk space' });
    expect(guard.volumes()[0]).toMatchObject({ name: 'logs', state: 'critical', freeBytes: 40 * MiB });
  });
});

describe.each(databaseKinds)('disk guard in the server on $name', (kind) => {
  let db: TestDatabase;
  let app: App;
  let apiKey: string;
  const disk = new FakeDisk();
  beforeAll(async () => {
    db = await kind.create();
    const config = parseConfig({
      data_dir: db.dataDir,
      database_url: db.url,
      http: { port: 0 },
      log: { level: 'silent' },
      simulator: { enabled: 'never' },
      disk_guard: GUARD,
      backup: { schedule: { to: 'backups', interval_hours: 24 } },
    });
    app = await buildApp(config, { logger: createLogger('silent'), statfs: disk.read });
    await app.http.ready();
    apiKey = (await app.tenants.create({ name: 'Disk' })).api_key;
  });
  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  const send = (lane: string, path = '/v1/messages') =>
    app.http.inject({
      method: 'POST',
      url: path,
      headers: bearer(apiKey),
      payload: { to: '+33612345678', from: 'Disk', text: `a ${lane} message`, lane },
    });
  const scrape = async () =>
    (await app.http.inject({ method: 'GET', url: '/metrics', remoteAddress: '127.0.0.1' })).body;
  const stored = async (lane: string) =>
    Number(
      (
        await app.store.db
          .selectFrom('messages')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('lane', '=', lane as never)
          .executeTakeFirstOrThrow()
      ).n,
    );

  it('refuses bulk with 507 while critical, lets otp and transactional through, and recovers', async () => {
    disk.free = 500 * MiB;
    await app.diskGuard.check();
    expect((await send('bulk')).statusCode).toBe(202);
    expect(await scrape()).toMatch(/relais_disk_state\{volume="data"\} 0/);

    disk.free = 5 * MiB;
    await app.diskGuard.check();
    const bulkBefore = await stored('bulk');
    const refused = await send('bulk');
    expect(refused.statusCode).toBe(507);
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(refused.json()).toMatchObject({
      type: 'urn:relais:problem:insufficient_storage',
      status: 507,
      code: 'insufficient_storage',
      title: 'Insufficient storage',
      field: 'lane',
    });
    expect(refused.json().detail).toMatch(/bulk messages are refused/);
    expect(await stored('bulk')).toBe(bulkBefore); // nothing written for it
    expect((await send('otp')).statusCode).toBe(202);
    expect((await send('transactional')).statusCode).toBe(202);
    expect(app.campaignRunner.shouldHold?.()).toBe(true);

    const batch = await app.http.inject({
      method: 'POST',
      url: '/v1/messages/batch',
      headers: bearer(apiKey),
      payload: {
        messages: ['otp', 'bulk', 'transactional', 'bulk'].map((lane, i) => ({
          to: '+33612345678',
          from: 'Disk',
          text: `batch ${i}`,
          lane,
        })),
      },
    });
    expect(batch.statusCode).toBe(202);
    const body = batch.json() as {
      accepted: number;
      rejected: number;
      results: { index: number; status: string; error?: { code: string; field: string } }[];
    };
    expect(body).toMatchObject({ accepted: 2, rejected: 2 });
    expect(body.results.map((r) => r.status)).toEqual(['accepted', 'rejected', 'accepted', 'rejected']);
    expect(body.results[1]!.error).toMatchObject({ code: 'insufficient_storage', field: 'messages/1/lane' });
    expect(body.results[3]!.error).toMatchObject({ code: 'insufficient_storage', field: 'messages/3/lane' });

    const metrics = await scrape();
    expect(metrics).toMatch(new RegExp(`relais_disk_free_bytes\\{volume="data"\\} ${5 * MiB}`));
    expect(metrics).toMatch(/relais_disk_state\{volume="data"\} 2/);
    expect(metrics).toMatch(/relais_disk_state\{volume="backups"\} 2/);
    expect(metrics).toMatch(/relais_disk_size_bytes\{volume="data"\} \d+/);
    // The scheduled backup does not fill the last of the disk.
    expect(await app.backups!.runOnce()).toBeNull();

    disk.free = 12 * MiB; // above critical + 10 %: bulk is taken again, by itself
    await app.diskGuard.check();
    expect((await send('bulk')).statusCode).toBe(202);
    expect(await stored('bulk')).toBe(bulkBefore + 1);
    expect(app.campaignRunner.shouldHold?.()).toBe(false);
    expect(await scrape()).toMatch(/relais_disk_state\{volume="data"\} 1/);
  });

  it('watches by itself once started (interval_ms)', async () => {
    disk.free = 500 * MiB;
    await app.diskGuard.check();
    app.diskGuard.start();
    disk.free = 1 * MiB;
    const deadline = Date.now() + 5000;
    while (!app.diskGuard.isCritical() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(app.diskGuard.isCritical()).toBe(true);
    disk.free = 500 * MiB;
    while (app.diskGuard.isCritical() && Date.now() < deadline + 5000)
      await new Promise((r) => setTimeout(r, 50));
    expect(app.diskGuard.state()).toBe('ok');
    await app.diskGuard.stop();
  });
});

/** A real, small file system (tmpfs) that really fills up; root in a container may mount one. */
function mountTmpfs(dir: string, size: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const probe = mkdtempSync(join(tmpdir(), 'relais-tmpfs-probe-'));
const canMount = mountTmpfs(probe, '1m');
if (canMount) execFileSync('umount', [probe]);
rmSync(probe, { recursive: true, force: true });

describe.skipIf(!canMount)('a disk that really fills (tmpfs, SQLite)', () => {
  it('answers errors while full, loses no acknowledged message, and recovers when space returns', async () => {
    const mountpoint = mkdtempSync(join(tmpdir(), 'relais-tmpfs-'));
    expect(mountTmpfs(mountpoint, '16m')).toBe(true);
    let app: App | null = null;
    try {
      const dataDir = join(mountpoint, 'data');
      mkdirSync(dataDir);
      const config = parseConfig({
        data_dir: dataDir,
        http: { port: 0 },
        log: { level: 'silent' },
        simulator: { enabled: 'never' },
        // The real statfs: with 1 MiB left the guard turns critical; transactional traffic goes on.
        disk_guard: { ...GUARD, critical_free_bytes: 2 * MiB, warn_free_bytes: 4 * MiB },
      });
      app = await buildApp(config, { logger: createLogger('silent') });
      await app.http.ready();
      const apiKey = (await app.tenants.create({ name: 'Full' })).api_key;
      const freeBytes = () => {
        const s = statfsSync(mountpoint);
        return s.bavail * s.bsize;
      };
      // Fill all but ~1 MiB.
      writeFileSync(join(mountpoint, 'filler'), Buffer.alloc(Math.max(0, freeBytes() - MiB)));
      expect(await app.diskGuard.check()).toBe('critical');
      const batch = (n: number, lane: string) =>
        app!.http.inject({
          method: 'POST',
          url: '/v1/messages/batch',
          headers: bearer(apiKey),
          payload: {
            messages: Array.from({ length: 100 }, (_, i) => ({
              to: '+33612345678',
              from: 'Full',
              text: `${lane} ${n}-${i} ${'z'.repeat(100)}`,
              lane,
            })),
          },
        });
      expect((await batch(0, 'bulk')).json().results[0].error.code).toBe('insufficient_storage');

      const acknowledged: string[] = [];
      let failure: { statusCode: number; body: string } | null = null;
      for (let n = 0; n < 500 && !failure; n++) {
        const res = await batch(n, 'transactional');
        if (res.statusCode === 202) {
          for (const r of res.json().results as { message: { id: string } }[])
            acknowledged.push(r.message.id);
        } else failure = { statusCode: res.statusCode, body: res.body };
      }
      expect(failure).not.toBeNull(); // the disk really filled
      expect(failure!.statusCode).toBeGreaterThanOrEqual(500);
      expect(JSON.parse(failure!.body)).toMatchObject({ code: expect.any(String) });
      expect(JSON.parse(failure!.body).detail).not.toMatch(/SQLITE|ENOSPC/); // internals stay internal
      expect(acknowledged.length).toBeGreaterThan(0);

      rmSync(join(mountpoint, 'filler'));
      expect(await app.diskGuard.check()).toBe('ok');
      const after = await batch(9999, 'bulk');
      expect(after.statusCode).toBe(202);
      expect(after.json().accepted).toBe(100);
      await app.close();
      app = null;

      const check = new SqliteDatabase(join(dataDir, 'relais.db'), { readonly: true });
      try {
        expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
        const found = new Set<string>();
        for (let i = 0; i < acknowledged.length; i += 500) {
          const ids = acknowledged.slice(i, i + 500);
          const rows = check
            .prepare(`select id from messages where id in (${ids.map(() => '?').join(',')})`)
            .all(...ids) as { id: string }[];
          for (const r of rows) found.add(r.id);
        }
        expect(found.size).toBe(acknowledged.length);
      } finally {
        check.close();
      }
    } finally {
      await app?.close();
      execFileSync('umount', [mountpoint]);
      rmSync(mountpoint, { recursive: true, force: true });
    }
  });
});
