import type { Config } from '../config/schema.js';
import { applyStatusChanges, type StatusChange } from '../messages/status.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { Store } from '../store/store.js';
import { cursorExhausted, expandPage, parseCursor } from './expansion.js';

export interface CampaignRunnerDeps {
  store: Store;
  clock: Clock;
  config: Config;
  logger: Logger;
  /** Submits per second the carriers can take in total (the connectors' TPS). */
  capacityTps: () => number;
  /** New campaign messages were committed: wake the dispatcher. */
  onQueued: () => void;
  /** Status changes created webhook events: wake the webhook sender. */
  onWebhookEvents: () => void;
  /**
   * A cancel: ends, with `outcome`, the campaign's messages this process's dispatcher holds in memory
   * and has not started sending; resolves with how many once that is committed.
   */
  recallHeld: (campaignId: string, outcome: Omit<StatusChange, 'messageId'>) => Promise<number>;
}

/** What a cancel makes of the campaign's messages not sent yet. */
const CANCELLED: Omit<StatusChange, 'messageId'> = {
  status: 'failed',
  errorCode: 'campaign_cancelled',
  errorReason: 'the campaign was cancelled before this message was sent',
};

/**
 * Turns running campaigns into messages lazily. Each tick, for each running campaign, it counts the
 * campaign's messages still in the queue (index queue_campaign) and tops that up to
 * `campaigns.queue_seconds` of the campaign's pace — min(max_tps, the connectors' TPS) — one bounded
 * page (one transaction) at a time. A million-recipient campaign thus never has more than a few
 * seconds of messages queued, starts within a tick of `start`, and holds memory flat.
 */
export class CampaignRunner {
  /** Set by a guard (e.g. low disk): while it returns true, no campaign expands. */
  shouldHold: (() => boolean) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = true;
  /** stop() was called: a pass in progress ends after its current page. */
  private closed = false;
  /** Per campaign with max_tps: messages it may still create (a token bucket), and when it was filled. */
  private readonly credit = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly deps: CampaignRunnerDeps) {}

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /** A campaign was started or resumed: run a tick now rather than at the next interval. */
  notify(): void {
    if (!this.stopped) this.schedule(0);
  }

  /** One full pass (scheduled starts, top-ups, completions); concurrent calls share or follow it. */
  async runOnce(): Promise<void> {
    if (this.running) {
      this.again = true;
      await this.running;
      if (!this.again) return;
    }
    this.again = false;
    this.running = this.pass().finally(() => {
      this.running = null;
    });
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.runOnce()
        .catch((err) => this.deps.logger.error({ err }, 'campaign runner pass failed'))
        .finally(() => {
          if (!this.stopped && !this.timer) this.schedule(this.deps.config.campaigns.tick_ms);
        });
    }, ms);
  }

  private async pass(): Promise<void> {
    const { store, clock } = this.deps;
    const now = clock.now();
    // A read first: the write lock is taken only when a scheduled campaign is due.
    const due = await store.db
      .selectFrom('campaigns')
      .select('id')
      .where('status', '=', 'scheduled')
      .where('send_at', '<=', now)
      .execute();
    if (due.length > 0) {
      await store.write((trx) =>
        trx
          .updateTable('campaigns')
          .set({ status: 'running', started_at: now, updated_at: now })
          .where('status', '=', 'scheduled')
          .where('send_at', '<=', now)
          .execute(),
      );
    }
    const running = await store.db
      .selectFrom('campaigns')
      .select(['id', 'max_tps', 'cursor'])
      .where('status', '=', 'running')
      .orderBy('id')
      .execute();
    for (const id of this.credit.keys()) if (!running.some((c) => c.id === id)) this.credit.delete(id);
    for (const c of running) {
      if (this.closed || this.shouldHold?.()) return;
      await this.topUp(c.id, c.max_tps, cursorExhausted(parseCursor(c.cursor)));
    }
  }

  private async queuedOf(campaignId: string): Promise<number> {
    const row = await this.deps.store.db
      .selectFrom('queue')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('campaign_id', '=', campaignId)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  private async topUp(campaignId: string, maxTps: number | null, exhausted: boolean): Promise<void> {
    const { config, store, clock } = this.deps;
    const queued = await this.queuedOf(campaignId);
    if (exhausted) {
      if (queued === 0) await this.complete(campaignId);
      return;
    }
    const pace = Math.min(maxTps ?? Number.POSITIVE_INFINITY, Math.max(1, this.deps.capacityTps()));
    const target = Math.max(1, Math.ceil(config.campaigns.queue_seconds * pace));
    let room = target - queued;
    // The bucket holds a quarter second at most: a late tick (busy machine) cannot turn into a burst.
    if (maxTps !== null) room = Math.min(room, this.takeCredit(campaignId, maxTps, Math.max(1, maxTps / 4)));
    let created = 0;
    for (let pages = 0; room > 0 && pages < config.campaigns.max_pages_per_tick; pages++) {
      const result = await expandPage(store, {
        campaignId,
        limit: Math.min(config.campaigns.page_size, room),
        now: clock.now(),
        messages: config.messages,
        webhooks: config.webhooks,
      });
      if (!result) break;
      if (result.created > 0) {
        created += result.created;
        room -= result.created;
        this.deps.onQueued();
      }
      if (!result.moved || result.exhausted) break;
      // Yield between pages: urgent intake and claims get the event loop (and the SQLite writer).
      await new Promise((r) => setImmediate(r));
    }
    if (maxTps !== null) this.spendCredit(campaignId, created);
  }

  private takeCredit(campaignId: string, maxTps: number, cap: number): number {
    const now = performance.now();
    const c = this.credit.get(campaignId) ?? { tokens: Math.min(cap, maxTps / 10 + 1), at: now };
    c.tokens = Math.min(cap, c.tokens + ((now - c.at) * maxTps) / 1000);
    c.at = now;
    this.credit.set(campaignId, c);
    return Math.floor(c.tokens);
  }

  private spendCredit(campaignId: string, n: number): void {
    const c = this.credit.get(campaignId);
    if (c) c.tokens = Math.max(0, c.tokens - n);
  }

  /** Every recipient handled and nothing of it left in the queue. */
  private async complete(campaignId: string): Promise<void> {
    const now = this.deps.clock.now();
    const done = await this.deps.store.write((trx) =>
      trx
        .updateTable('campaigns')
        .set({ status: 'completed', completed_at: now, updated_at: now })
        .where('id', '=', campaignId)
        .where('status', '=', 'running')
        .executeTakeFirst(),
    );
    if (Number(done.numUpdatedRows) === 1)
      this.deps.logger.info({ campaign: campaignId }, 'campaign completed');
  }

  /**
   * After a cancel: the campaign's messages not yet sent end `failed` / campaign_cancelled, through the
   * common status path (history, rollups, webhooks). First those this process's dispatcher holds in
   * memory and has not started (recalled), then those in the queue that no dispatcher holds: the
   * DELETE … RETURNING takes them atomically, so a claim cannot take one at the same moment; then
   * the dispatcher once more, for what it claimed between two of those deletes (it refills its
   * buffer as soon as the recall has emptied half of it). Only messages already at a connector, and
   * on PostgreSQL those other nodes hold, are still sent.
   */
  async failQueued(campaignId: string): Promise<number> {
    const now = this.deps.clock.now();
    let total = await this.deps.recallHeld(campaignId, CANCELLED);
    total += await this.deleteQueued(campaignId, now);
    return total + (await this.deps.recallHeld(campaignId, CANCELLED));
  }

  private async deleteQueued(campaignId: string, now: number): Promise<number> {
    let total = 0;
    for (;;) {
      const { selected, deleted, events } = await this.deps.store.write(async (trx) => {
        const ids = await trx
          .selectFrom('queue')
          .select('message_id')
          .where('campaign_id', '=', campaignId)
          .where((eb) => eb.or([eb('claimed_by', 'is', null), eb('claimed_until', '<', now)]))
          .limit(500)
          .execute();
        if (ids.length === 0) return { selected: 0, deleted: 0, events: 0 };
        const deleted = await trx
          .deleteFrom('queue')
          .where(
            'message_id',
            'in',
            ids.map((r) => r.message_id),
          )
          .where((eb) => eb.or([eb('claimed_by', 'is', null), eb('claimed_until', '<', now)]))
          .returning('message_id')
          .execute();
        const events = await applyStatusChanges(
          trx,
          deleted.map((d) => ({ ...CANCELLED, messageId: d.message_id })),
          now,
        );
        return { selected: ids.length, deleted: deleted.length, events };
      });
      total += deleted;
      if (events > 0) this.deps.onWebhookEvents();
      if (selected < 500) return total;
    }
  }
}
