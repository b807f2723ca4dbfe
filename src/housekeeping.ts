import type { Config } from './config/schema.js';
import type { WorkQueue } from './dispatch/work-queue.js';
import { vacuumDeadRows } from './retention/dead-rows.js';
import type { RetentionReport } from './retention/retention.js';
import type { Clock } from './shared/clock.js';
import type { Logger } from './shared/logger.js';
import type { Store } from './store/store.js';
import type { VerifyHousekeeping } from './verify/upkeep.js';

const INTERVAL_MS = 10_000;

/**
 * Periodic upkeep off the hot path: expire queued messages whose validity ended, forget old
 * Idempotency-Keys, the history's retention (src/retention/: bounded work per pass), and on
 * PostgreSQL a vacuum of the tables whose dead rows piled up.
 */
export class Housekeeping {
  private timer: NodeJS.Timeout | null = null;
  private pass: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly config: Config,
    private readonly workQueue: WorkQueue,
    private readonly log: Logger,
    /** Verify's upkeep: expiry (with events), purge, rate-limit counters, sealed texts. */
    private readonly verify?: { housekeep(): Promise<VerifyHousekeeping> },
    /** History retention: partitions, chunked deletes, body redaction, vacuum. */
    private readonly retention?: { runOnce(): Promise<RetentionReport> },
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.pass = this.pass
        .then(async () => {
          await this.runOnce();
        })
        .catch((err) => this.log.error({ err }, 'housekeeping failed'));
    }, INTERVAL_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.pass;
  }

  async runOnce(): Promise<{
    expired: number;
    idempotencyKeysPurged: number;
    verify?: VerifyHousekeeping;
    retention?: RetentionReport;
    vacuumed: string[];
  }> {
    let expired = 0;
    for (let n = await this.workQueue.expireDue(); n > 0; n = await this.workQueue.expireDue()) expired += n;
    const cutoff = this.clock.now() - this.config.messages.idempotency_ttl_hours * 3600_000;
    const purged = await this.store.write((trx) =>
      trx.deleteFrom('idempotency_keys').where('created_at', '<', cutoff).executeTakeFirst(),
    );
    if (expired > 0) this.log.info({ expired }, 'expired messages past their validity');
    const verify = await this.verify?.housekeep();
    if (verify && verify.expired + verify.purged > 0)
      this.log.info({ verify }, 'verifications expired or purged');
    const retention = await this.retention?.runOnce();
    const vacuumed = await vacuumDeadRows(this.store, this.config.postgres.vacuum_min_dead_rows);
    if (vacuumed.length > 0) this.log.debug({ vacuumed }, 'vacuumed tables with many dead rows');
    return {
      expired,
      vacuumed,
      idempotencyKeysPurged: Number(purged.numDeletedRows),
      ...(verify ? { verify } : {}),
      ...(retention ? { retention } : {}),
    };
  }
}
