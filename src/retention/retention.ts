import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import type { Config } from '../config/schema.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { Store } from '../store/store.js';
import { HISTORY_TABLES, ROOT_TABLES, type RootTable } from './history-tables.js';
import { PartitionUpkeep } from './partition-upkeep.js';
import {
  pruneChunk,
  pruneRollupHour,
  type RedactionCursor,
  redactChunk,
  type TenantScope,
} from './pruning.js';

const DAY_MS = 86_400_000;

export type RetentionSettings = Config['retention'];

export interface RetentionReport {
  /** PostgreSQL: partitions created ahead and dropped past the horizon; kept: old but still in flight. */
  partitionsCreated: number;
  partitionsDropped: string[];
  partitionsKept: string[];
  /** History rows removed one by one (root rows: messages, webhook events, inbound messages). */
  rowsDeleted: number;
  bodiesRedacted: number;
  rollupsDeleted: number;
  /** SQLite: free pages still in the file after this pass's incremental vacuum steps. */
  freePagesLeft: number;
  /** False when a budget ran out this pass: more work waits for the next passes. */
  caughtUp: boolean;
}

/** How long each tenant's history is kept, and the longest of all (the partition horizon). */
interface Policy {
  horizonMs: number;
  /** Tenants (null: rows without one) kept for less than the horizon: their rows go one by one. */
  shorter: { tenantId: string | null; keepMs: number }[];
}

/**
 * Data retention (docs/retention.md), one bounded pass per housekeeping tick, off the hot path.
 *
 * - PostgreSQL: history partitions are created ahead and dropped whole once past the horizon — the
 *   longest retention of the platform default and every tenant override.
 * - SQLite: history older than each tenant's retention is deleted in chunks, oldest first, then the
 *   freed pages are returned to the file system by incremental vacuum, a few at a time.
 * - Both: tenants kept shorter than the horizon lose their older rows in chunks (the only row-by-row
 *   deletion on PostgreSQL); message bodies are blanked after `redact_bodies_after_days`; hourly
 *   rollups older than `rollups_days` are deleted.
 * Queued messages, and webhook events still to send, are never removed.
 */
export class Retention {
  private readonly partitions: PartitionUpkeep | null;
  private readonly redaction: Record<'messages' | 'inbound_messages', RedactionCursor> = {
    messages: { after: '' },
    inbound_messages: { after: '' },
  };

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly settings: RetentionSettings,
    private readonly log: Logger,
  ) {
    this.partitions = store.dialect === 'postgres' ? new PartitionUpkeep(store, settings) : null;
  }

  /** PostgreSQL: partitions for now and the days ahead, before intake starts. */
  async preparePartitions(): Promise<void> {
    await this.partitions?.ensureAhead(this.clock.now());
  }

  async runOnce(): Promise<RetentionReport> {
    const now = this.clock.now();
    const policy = await this.policy();
    const report: RetentionReport = {
      partitionsCreated: 0,
      partitionsDropped: [],
      partitionsKept: [],
      rowsDeleted: 0,
      bodiesRedacted: 0,
      rollupsDeleted: 0,
      freePagesLeft: 0,
      caughtUp: true,
    };
    // Free pages before this pass: the churn of the queue and the outbox, which inserts reuse. Only
    // what this pass frees is handed back to the file system; vacuuming the churn too moved tens of
    // MB per pass under load (measured: end-to-end throughput fell by 40%) for nothing.
    const churn = this.store.dialect === 'sqlite' ? await this.freePages() : 0;
    const horizon = now - policy.horizonMs;
    if (this.partitions) {
      report.partitionsCreated = (await this.partitions.ensureAhead(now)).length;
      const { dropped, kept } = await this.partitions.dropExpired(horizon);
      report.partitionsDropped = dropped;
      report.partitionsKept = kept;
    }
    const budget = { chunks: this.settings.max_chunks_per_pass, exhausted: false };
    for (const root of ROOT_TABLES) {
      report.rowsDeleted += await this.prune(
        root,
        await this.platformCutoff(root, horizon),
        { all: true },
        budget,
      );
      for (const t of policy.shorter) {
        if (t.tenantId === null && root.name !== 'inbound_messages') continue;
        report.rowsDeleted += await this.prune(root, now - t.keepMs, { tenantId: t.tenantId }, budget);
      }
    }
    const redaction = await this.redactBodies(now);
    report.bodiesRedacted = redaction.redacted;
    report.rollupsDeleted = await this.pruneRollups(now - this.settings.rollups_days * DAY_MS);
    report.freePagesLeft = await this.reclaimSpace(churn);
    report.caughtUp = !budget.exhausted && redaction.caughtUp && report.freePagesLeft <= churn;
    if (report.partitionsDropped.length + report.rowsDeleted + report.bodiesRedacted > 0)
      this.log.info({ retention: report }, 'retention pass');
    if (report.partitionsKept.length > 0)
      this.log.warn({ partitions: report.partitionsKept }, 'old partitions kept: messages still in flight');
    return report;
  }

  private async policy(): Promise<Policy> {
    const defaultMs = this.settings.messages_days * DAY_MS;
    const tenants = await this.store.db.selectFrom('tenants').select(['id', 'retention_days']).execute();
    const keep = tenants.map((t) => ({
      tenantId: t.id as string | null,
      keepMs: t.retention_days === null ? defaultMs : t.retention_days * DAY_MS,
    }));
    keep.push({ tenantId: null, keepMs: defaultMs });
    const horizonMs = Math.max(...keep.map((k) => k.keepMs));
    return { horizonMs, shorter: keep.filter((k) => k.keepMs < horizonMs) };
  }

  /**
   * Rows past the horizon for everyone. On PostgreSQL only those below the first time-slice partition
   * (legacy and default partitions): the slices themselves go by partition drop, never by DELETE.
   */
  private async platformCutoff(root: RootTable, horizon: number): Promise<number> {
    if (!this.partitions) return horizon;
    const table = HISTORY_TABLES.find((t) => t.name === root.name)!;
    return Math.min(horizon, await this.partitions.sliceFloor(table));
  }

  /** Chunks until caught up or out of budget; only full chunks count against it (a miss is one probe). */
  private async prune(
    root: RootTable,
    beforeMs: number,
    scope: TenantScope,
    budget: { chunks: number; exhausted: boolean },
  ) {
    let deleted = 0;
    for (;;) {
      if (budget.chunks <= 0) {
        budget.exhausted = true;
        break;
      }
      const n = await pruneChunk(this.store, root, beforeMs, scope, this.settings.chunk_size);
      deleted += n;
      if (n < this.settings.chunk_size) break;
      budget.chunks--;
      await sleep(this.settings.pause_ms);
    }
    return deleted;
  }

  private async redactBodies(now: number): Promise<{ redacted: number; caughtUp: boolean }> {
    const days = this.settings.redact_bodies_after_days;
    if (days === undefined) return { redacted: 0, caughtUp: true };
    let redacted = 0;
    let chunks = this.settings.max_chunks_per_pass;
    let caughtUp = true;
    for (const root of ROOT_TABLES) {
      if (root.name === 'webhook_events' || root.name === 'webhook_deliveries') continue;
      for (;;) {
        if (chunks-- <= 0) {
          caughtUp = false;
          break;
        }
        const r = await redactChunk(
          this.store,
          root.name,
          root.prefix,
          this.redaction[root.name],
          now - days * DAY_MS,
          now,
          this.settings.chunk_size,
        );
        redacted += r.redacted;
        if (r.scanned < this.settings.chunk_size) break;
        await sleep(this.settings.pause_ms);
      }
    }
    return { redacted, caughtUp };
  }

  private async pruneRollups(beforeMs: number): Promise<number> {
    let deleted = 0;
    for (let i = 0; i < this.settings.max_chunks_per_pass; i++) {
      const n = await pruneRollupHour(this.store, beforeMs);
      if (n === 0) break;
      deleted += n;
    }
    return deleted;
  }

  /** SQLite: gives the pages freed by deletions back to the file system, one short step at a time. */
  private async reclaimSpace(keep: number): Promise<number> {
    if (this.store.dialect !== 'sqlite') return 0;
    let left = await this.freePages();
    for (let i = 0; left > keep && i < this.settings.max_chunks_per_pass; i++) {
      left = await this.store.incrementalVacuum(Math.min(this.settings.vacuum_pages_per_step, left - keep));
      await sleep(this.settings.pause_ms);
    }
    return left;
  }

  private async freePages(): Promise<number> {
    const { rows } = await sql<{ freelist_count: number }>`pragma freelist_count`.execute(this.store.db);
    return rows[0]?.freelist_count ?? 0;
  }
}
