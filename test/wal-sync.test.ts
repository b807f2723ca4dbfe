import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WalSync } from '../src/store/store.js';

describe('WalSync: the write-ahead log synced off the event loop', () => {
  const dirs: string[] = [];
  const walFile = () => {
    const dir = mkdtempSync(join(tmpdir(), 'relais-walsync-'));
    dirs.push(dir);
    const path = join(dir, 'relais.db-wal');
    writeFileSync(path, 'frames');
    return path;
  };
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('answers every caller after a sync that started after its call, and shares syncs between callers', async () => {
    const wal = new WalSync(walFile());
    const first = wal.sync(); // starts a sync at once
    // Committed while that one runs: it may have started before their commit, so they wait for the next.
    const later = [wal.sync(), wal.sync(), wal.sync()];
    expect(later[1]).toBe(later[0]);
    await Promise.all([first, ...later]);
    expect(wal.syncs).toBe(2);
    await wal.sync(); // nothing running: a new one
    expect(wal.syncs).toBe(3);
    await wal.close();
  });

  it('fails the writes it covers when the log cannot be synced', async () => {
    const wal = new WalSync(join(tmpdir(), 'relais-walsync-missing', 'relais.db-wal'));
    await expect(wal.sync()).rejects.toThrow(/ENOENT/);
    await wal.close();
  });
});
