import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { databaseTarget } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../shared/logger.js';
import type { Metrics } from './metrics.js';

export type DiskState = 'ok' | 'warn' | 'critical';

/** Free and total bytes of the file system holding a path (what an unprivileged writer may use). */
export interface VolumeSpace {
  freeBytes: number;
  totalBytes: number;
}

/** Reads a volume's space; injectable so tests can make a disk "fill" (or fail) on demand. */
export type StatfsReader = (path: string) => Promise<VolumeSpace>;

export const statfsReader: StatfsReader = async (path) => {
  // A directory not created yet (backups before the first one) lives on its nearest existing parent.
  for (let dir = path; ; dir = dirname(dir)) {
    try {
      const s = await statfs(dir);
      return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(dir) === dir) throw err;
    }
  }
};

export interface WatchedVolume {
  /** Label of the metrics and log lines: `data`, `database`, `logs`, `backups`. */
  name: string;
  path: string;
}

export interface VolumeStatus extends WatchedVolume, Partial<VolumeSpace> {
  state: DiskState;
}

type Thresholds = Config['disk_guard'];

const STATE_VALUE: Record<DiskState, number> = { ok: 0, warn: 1, critical: 2 };

/**
 * Watches free space on the volumes Relais writes to. Below the warning thresholds it says so (metric,
 * one log line per change); below the critical ones, bulk intake is refused (MessageService asks
 * isCritical()) while otp and transactional traffic, receipts and webhooks go on — they are small, and
 * what the remaining space is kept for. A volume leaves a state only once its free space is
 * `hysteresis_percent` above the threshold, so intake does not flap at the edge.
 */
export class DiskGuard {
  private readonly status = new Map<string, VolumeStatus>();
  private readonly listeners = new Set<(state: DiskState, previous: DiskState) => void>();
  private timer: NodeJS.Timeout | null = null;
  private pass: Promise<void> = Promise.resolve();
  private overall: DiskState = 'ok';

  constructor(
    volumes: WatchedVolume[],
    private readonly thresholds: Thresholds,
    private readonly log: Logger,
    private readonly read: StatfsReader = statfsReader,
  ) {
    for (const v of volumes) this.status.set(v.name, { ...v, state: 'ok' });
  }

  /**
   * The volumes of a configuration: the data directory (on PostgreSQL it still holds logs, backups,
   * imports), a SQLite database kept elsewhere, and the log and backup directories if set.
   */
  static volumesOf(config: Config, logDir: string | null, backupDir: string | null): WatchedVolume[] {
    const volumes: WatchedVolume[] = [{ name: 'data', path: config.data_dir }];
    const db = databaseTarget(config);
    if (db.kind === 'sqlite' && db.path !== ':memory:' && dirname(db.path) !== config.data_dir)
      volumes.push({ name: 'database', path: dirname(db.path) });
    if (logDir) volumes.push({ name: 'logs', path: logDir });
    if (backupDir) volumes.push({ name: 'backups', path: backupDir });
    return volumes;
  }

  /** True while any watched volume is below a critical threshold: bulk intake is refused. */
  isCritical(): boolean {
    return this.overall === 'critical';
  }

  /** The worst state over the watched volumes. */
  state(): DiskState {
    return this.overall;
  }

  volumes(): VolumeStatus[] {
    return [...this.status.values()].map((v) => ({ ...v }));
  }

  /** Called when the worst state changes (the campaign runner holds expansion while critical). */
  onChange(listener: (state: DiskState, previous: DiskState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    if (this.timer || !this.thresholds.enabled) return;
    this.timer = setInterval(() => {
      this.pass = this.pass.then(async () => {
        await this.check();
      });
    }, this.thresholds.interval_ms);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.pass;
  }

  /** One look at every volume (also run once at startup, before intake opens). */
  async check(): Promise<DiskState> {
    for (const volume of this.status.values()) {
      let space: VolumeSpace;
      try {
        space = await this.read(volume.path);
      } catch (err) {
        // Not knowing is not a reason to refuse traffic: the last state stands.
        this.log.error({ volume: volume.name, path: volume.path, err }, 'cannot read free disk space');
        continue;
      }
      volume.freeBytes = space.freeBytes;
      volume.totalBytes = space.totalBytes;
      const next = this.classify(space, volume.state);
      if (next !== volume.state) {
        const line = {
          volume: volume.name,
          path: volume.path,
          free_bytes: space.freeBytes,
          free_percent: round(percentFree(space)),
          state: next,
          previous: volume.state,
        };
        if (next === 'ok') this.log.info(line, 'disk space recovered');
        else if (next === 'critical') this.log.warn(line, 'disk space critical: bulk intake refused');
        else this.log.warn(line, 'disk space low');
        volume.state = next;
      }
    }
    const worst = [...this.status.values()].reduce<DiskState>(
      (w, v) => (STATE_VALUE[v.state] > STATE_VALUE[w] ? v.state : w),
      'ok',
    );
    if (worst !== this.overall) {
      const previous = this.overall;
      this.overall = worst;
      for (const listener of this.listeners) listener(worst, previous);
    }
    return this.overall;
  }

  /** relais_disk_free_bytes, relais_disk_size_bytes and relais_disk_state, per volume. */
  registerMetrics(metrics: Metrics): void {
    const each =
      (fn: (v: VolumeStatus, set: (labels: { volume: string }, n: number) => void) => void) =>
      (set: (labels: { volume?: string }, n: number) => void) => {
        for (const v of this.status.values()) fn(v, set);
      };
    metrics.gauge(
      'relais_disk_free_bytes',
      'Free bytes on each watched volume (data, logs, backups)',
      ['volume'],
      each((v, set) => v.freeBytes !== undefined && set({ volume: v.name }, v.freeBytes)),
    );
    metrics.gauge(
      'relais_disk_size_bytes',
      'Size of each watched volume',
      ['volume'],
      each((v, set) => v.totalBytes !== undefined && set({ volume: v.name }, v.totalBytes)),
    );
    metrics.gauge(
      'relais_disk_state',
      'Disk guard state per volume: 0 ok, 1 warn (low), 2 critical (bulk intake refused)',
      ['volume'],
      each((v, set) => set({ volume: v.name }, STATE_VALUE[v.state])),
    );
  }

  private classify(space: VolumeSpace, current: DiskState): DiskState {
    const t = this.thresholds;
    // Entering a state: below either threshold. Leaving it: above both, with the margin.
    const margin = 1 + t.hysteresis_percent / 100;
    const below = (bytes: number, percent: number, factor: number) =>
      space.freeBytes < bytes * factor || percentFree(space) < percent * factor;
    const critical = below(
      t.critical_free_bytes,
      t.critical_free_percent,
      current === 'critical' ? margin : 1,
    );
    if (critical) return 'critical';
    const warnFactor = current === 'ok' ? 1 : margin;
    return below(t.warn_free_bytes, t.warn_free_percent, warnFactor) ? 'warn' : 'ok';
  }
}

function percentFree(space: VolumeSpace): number {
  return space.totalBytes > 0 ? (space.freeBytes / space.totalBytes) * 100 : 100;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
