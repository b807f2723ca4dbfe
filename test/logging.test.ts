import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../src/app.js';
import { parseConfig } from '../src/config/load.js';
import { RotatingLogFile } from '../src/logging/log-file.js';
import { createLogger } from '../src/shared/logger.js';
import { bearer } from './helpers/app.js';
import { databaseKinds } from './helpers/databases.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'relais-logs-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  vi.useRealTimers();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Log files of a directory (the `current.log` symlink aside), with their sizes. */
function logFiles(dir: string): { name: string; bytes: number }[] {
  return readdirSync(dir)
    .filter((n) => /^relais\..*\.log$/.test(n))
    .flatMap((name) => {
      try {
        return [{ name, bytes: statSync(join(dir, name)).size }];
      } catch {
        return []; // deleted between readdir and stat
      }
    });
}

function jsonLines(path: string): Record<string, unknown>[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const tick = () => new Promise((r) => setImmediate(r));

/**
 * A log file opened two seconds before midnight, the clock faked: pino-roll schedules the daily roll
 * with setTimeout from Date.now(), both driven by the test (vi.advanceTimersByTime).
 */
async function openBeforeMidnight(dir: string): Promise<RotatingLogFile> {
  vi.useFakeTimers({ toFake: ['Date', 'setTimeout', 'clearTimeout'] });
  vi.setSystemTime(new Date(2026, 2, 14, 23, 59, 58));
  return RotatingLogFile.open({
    file: join(dir, 'relais.log'),
    maxFileBytes: 1_000_000,
    maxFiles: 5,
    maxTotalBytes: 10_000_000,
  });
}

describe('log file rotation (pino-roll + caps)', () => {
  it('keeps at most max_files files and max_total_bytes in all, over many rotations', async () => {
    const dir = tempDir();
    const caps = { maxFileBytes: 4096, maxFiles: 4, maxTotalBytes: 12_288 };
    const file = await RotatingLogFile.open({ file: join(dir, 'relais.log'), ...caps });
    const logger = createLogger('info', file);
    let worstCount = 0;
    let worstBytes = 0;
    let n = 0;
    for (let batch = 0; batch < 300; batch++) {
      for (let i = 0; i < 5; i++) logger.info({ n: n++, pad: 'x'.repeat(60) }, 'line');
      await tick();
      const files = logFiles(dir);
      worstCount = Math.max(worstCount, files.length);
      worstBytes = Math.max(
        worstBytes,
        files.reduce((sum, f) => sum + f.bytes, 0),
      );
    }
    logger.info({ n: n++ }, 'the last line');
    await file.close();
    const files = logFiles(dir);
    expect(worstCount).toBeLessThanOrEqual(caps.maxFiles);
    expect(worstBytes).toBeLessThanOrEqual(caps.maxTotalBytes);
    expect(files.length).toBeLessThanOrEqual(caps.maxFiles);
    // ~200 KB written through 4 KiB files: many rotations really happened.
    const numbers = files.map((f) => Number(f.name.split('.').at(-2)));
    expect(Math.max(...numbers)).toBeGreaterThan(30);
    for (const f of files) expect(f.bytes).toBeLessThan(caps.maxFileBytes + 200);
    // Whole JSON lines only, the newest one in the newest file, nothing dropped at this pace.
    const newest = files.sort((a, b) => Number(a.name.split('.').at(-2)) - Number(b.name.split('.').at(-2)));
    const lines = jsonLines(join(dir, newest.at(-1)!.name));
    expect(lines.at(-1)).toMatchObject({ msg: 'the last line', n: n - 1, level: 30 });
    expect(file.dropped).toBe(0);
    expect(readdirSync(dir)).toContain('current.log');
  });

  it('holds the caps when lines come faster than files can rotate (bounded memory, counted drops)', async () => {
    const dir = tempDir();
    const caps = { maxFileBytes: 2048, maxFiles: 3, maxTotalBytes: 6144 };
    const file = await RotatingLogFile.open({ file: join(dir, 'relais.log'), ...caps });
    const logger = createLogger('info', file);
    let worstBytes = 0;
    for (let batch = 0; batch < 100; batch++) {
      for (let i = 0; i < 200; i++) logger.info({ pad: 'y'.repeat(100) }, 'flood');
      await tick();
      worstBytes = Math.max(
        worstBytes,
        logFiles(dir).reduce((sum, f) => sum + f.bytes, 0),
      );
    }
    await file.close();
    expect(worstBytes).toBeLessThanOrEqual(caps.maxTotalBytes);
    expect(logFiles(dir).length).toBeLessThanOrEqual(caps.maxFiles);
  });

  it('prunes files left by earlier runs, oldest first, and never touches other files', async () => {
    const dir = tempDir();
    for (let day = 1; day <= 9; day++) {
      const name = join(dir, `relais.2026-01-0${day}.1.log`);
      writeFileSync(name, `${JSON.stringify({ day })}\n`.repeat(100));
    }
    writeFileSync(join(dir, 'relais.db'), 'not a log');
    writeFileSync(join(dir, 'notes.txt'), 'operator notes');
    writeFileSync(join(dir, 'relais.backup.log.gz'), 'foreign');
    const file = await RotatingLogFile.open({
      file: join(dir, 'relais.log'),
      maxFileBytes: 1024,
      maxFiles: 5,
      maxTotalBytes: 1_000_000,
    });
    await file.close();
    const left = readdirSync(dir).sort();
    expect(left).toEqual(
      expect.arrayContaining(['relais.db', 'notes.txt', 'relais.backup.log.gz', 'relais.2026-01-09.1.log']),
    );
    const logs = logFiles(dir).map((f) => f.name);
    expect(logs.length).toBe(5); // 4 kept from before + the one written now
    expect(logs).not.toContain('relais.2026-01-05.1.log');
    expect(logs).toContain('relais.2026-01-06.1.log');
  });

  it('rotates at midnight (daily) into a file named by the new date', async () => {
    const dir = tempDir();
    const file = await openBeforeMidnight(dir);
    const logger = createLogger('info', file);
    logger.info('before midnight');
    await tick();
    vi.advanceTimersByTime(3000);
    // The roll flushes (fsync) and reopens on libuv's thread pool: under load, more than a few turns
    // of the event loop (50 turns were not always enough in CI). performance.now() is not faked.
    const until = performance.now() + 10_000;
    while (!file.current.includes('2026-03-15') && performance.now() < until) await tick();
    logger.info('after midnight');
    vi.useRealTimers();
    await file.close();
    expect(file.current).toBe(join(dir, 'relais.2026-03-15.1.log'));
    expect(jsonLines(join(dir, 'relais.2026-03-14.1.log')).map((l) => l.msg)).toEqual(['before midnight']);
    expect(jsonLines(join(dir, 'relais.2026-03-15.1.log')).map((l) => l.msg)).toEqual(['after midnight']);
  });
});

describe('log file shutdown', () => {
  it('closes when a midnight rotation is still in flight, with the lines written before it kept', async () => {
    const dir = tempDir();
    const file = await openBeforeMidnight(dir);
    createLogger('info', file).info('before midnight');
    vi.advanceTimersByTime(3000); // the roll starts: a flush, then a reopen
    vi.useRealTimers();
    // Closed at once, before the roll has reopened the file: this wait never ended before.
    const started = performance.now();
    await file.close();
    expect(performance.now() - started).toBeLessThan(5000);
    const lines = readdirSync(dir)
      .filter((n) => /^relais\.2026-03-1[45]\.1\.log$/.test(n))
      .flatMap((n) => jsonLines(join(dir, n)).map((l) => l.msg));
    expect(lines).toEqual(['before midnight']);
  });
});

describe('log configuration', () => {
  it('rejects caps that cannot hold, naming the key', () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ max_file_bytes: 10_000, max_total_bytes: 15_000 }, /log\.max_total_bytes: .*twice max_file_bytes/],
      [{ max_files: 1 }, /log\.max_files/],
      [{ max_file_bytes: 100 }, /log\.max_file_bytes/],
      [{ file: '' }, /log\.file/],
      [{ rotate: 'daily' }, /log\.rotate: unknown configuration key/],
    ];
    for (const [log, message] of bad) expect(() => parseConfig({ log })).toThrow(message);
    expect(parseConfig({ log: { file: 'logs/relais.log' } }).log).toMatchObject({
      max_file_bytes: 50 * 1024 * 1024,
      max_files: 10,
      max_total_bytes: 500 * 1024 * 1024,
    });
  });
});

describe('secrets never reach a log line', () => {
  it('censors connector passwords, tokens, webhook secrets, sealing keys and one-time codes', () => {
    let text = '';
    const sink = new Writable({
      write(chunk, _encoding, done) {
        text += chunk.toString();
        done();
      },
    });
    const logger = createLogger('trace', sink);
    const config = parseConfig({
      data_dir: tempDir(),
      admin: { token: 'admin-token-0123456789' },
      metrics: { token: 'metrics-token-0123456789' },
      verify: { sealing_key: 'sealing-key-0123456789-0123456789-abc' },
      connectors: [
        {
          name: 'orange',
          host: '127.0.0.1',
          port: 2775,
          system_id: 'relais',
          password: 'smppPw1',
        },
      ],
    });
    logger.info({ config }, 'configuration');
    logger.info(config, 'configuration at the top level');
    logger.info({ connector: config.connectors[0] }, 'connector');
    logger.info({ tenant: { id: 't1', webhook_secret: 'whsec_abcdef0123' }, token: 'bare-token-value' }, 't');
    logger.info({ body: { code: '913572' } }, 'verify check body');
    logger.info({ req: { headers: { authorization: 'Bearer rk_live_secret' } } }, 'request');
    for (const secret of [
      'admin-token-0123456789',
      'metrics-token-0123456789',
      'sealing-key-0123456789-0123456789-abc',
      'smppPw1',
      'whsec_abcdef0123',
      'bare-token-value',
      '913572',
      'rk_live_secret',
    ]) {
      expect(text).not.toContain(secret);
    }
    expect(text).toContain('[redacted]');
    expect(text).toContain('"system_id":"relais"'); // the rest is still there
  });
});

describe.each(databaseKinds)('the server with log.file on $name', (kind) => {
  it('writes JSON lines to the file, request id on each request line, no secret', async () => {
    const db = await kind.create();
    const adminToken = 'admin-token-for-logs-0123';
    const metricsToken = 'metrics-token-for-logs-0123';
    const config = parseConfig({
      data_dir: db.dataDir,
      database_url: db.url,
      http: { port: 0 },
      log: { level: 'info', file: 'logs/relais.log' },
      admin: { token: adminToken },
      metrics: { token: metricsToken },
      simulator: { enabled: 'never' },
    });
    const app = await buildApp(config);
    let instance = '';
    let apiKey = '';
    try {
      const { port } = await app.start();
      const base = `http://127.0.0.1:${port}`;
      const tenant = await app.tenants.create({ name: 'Logs' });
      const post = (body: unknown) =>
        fetch(`${base}/v1/messages`, {
          method: 'POST',
          headers: { ...bearer(tenant.api_key), 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
      const ok = await post({ to: '+33612345678', from: 'Logs', text: 'hello' });
      expect(ok.status).toBe(202);
      const bad = await post({ to: 'nope', from: 'Logs', text: 'hello' });
      expect(bad.status).toBe(400);
      instance = ((await bad.json()) as { instance: string }).instance;
      apiKey = tenant.api_key;
      const metrics = await fetch(`${base}/metrics`, {
        headers: { authorization: `Bearer ${metricsToken}` },
      });
      expect(metrics.status).toBe(200);
      await fetch(`${base}/admin/nothing`, { headers: { authorization: `Bearer ${adminToken}` } });
      const verification = await fetch(`${base}/v1/verifications`, {
        method: 'POST',
        headers: { ...bearer(tenant.api_key), 'content-type': 'application/json' },
        body: JSON.stringify({ to: '+33612345679' }),
      });
      const { id } = (await verification.json()) as { id: string };
      await fetch(`${base}/v1/verifications/${id}/check`, {
        method: 'POST',
        headers: { ...bearer(tenant.api_key), 'content-type': 'application/json' },
        body: JSON.stringify({ code: '48151623' }),
      });
    } finally {
      await app.close();
    }
    const logDir = join(db.dataDir, 'logs');
    const files = logFiles(logDir);
    expect(files.length).toBe(1);
    const text = readFileSync(join(logDir, files[0]!.name), 'utf8');
    const lines = jsonLines(join(logDir, files[0]!.name));
    expect(lines.length).toBeGreaterThan(8);
    for (const line of lines) expect(line).toMatchObject({ service: 'relais', level: expect.any(Number) });
    const requestLines = lines.filter((l) => l.req !== undefined || l.res !== undefined);
    expect(requestLines.length).toBeGreaterThanOrEqual(10);
    for (const line of requestLines) expect(line.reqId).toMatch(/^req_/);
    // The id a client sees in a problem leads to that request's lines.
    expect(requestLines.filter((l) => l.reqId === instance).length).toBeGreaterThanOrEqual(2);
    for (const secret of [adminToken, metricsToken, '48151623', apiKey]) expect(text).not.toContain(secret);
    await db.drop();
  });
});
