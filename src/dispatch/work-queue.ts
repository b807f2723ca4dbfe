import { type RawBuilder, sql } from 'kysely';
import {
  applyStatusChanges,
  FINAL_STATUSES,
  type StatusChange,
  type StatusWriteOptions,
  type WebhookHandover,
} from '../messages/status.js';
import { applyReceiptUpdates } from '../receipts/receipt-updates.js';
import type { Clock } from '../shared/clock.js';
import { RollupBatch } from '../stats/rollups.js';
import { inList } from '../store/insert-rows.js';
import { selectRows } from '../store/json-rows.js';
import { LANE_RANK, type Lane, type MessageTable } from '../store/schema.js';
import type { Store, Trx } from '../store/store.js';
import { unsealText } from '../verify/sealing.js';
import type { WebhookTaker } from '../webhooks/outbox.js';
import type { Recordable } from './status-recorder.js';

/** A message leased to a dispatcher, with everything needed to submit it to a carrier. */
export interface ClaimedMessage {
  id: string;
  tenant_id: string;
  to: string;
  country: string | null;
  from: string;
  text: string;
  lane: Lane;
  encoding: 'GSM-7' | 'UCS-2';
  segments: number;
  expires_at: number;
  attempts: number;
  /** The campaign that created it: a cancel recalls the campaign's messages not yet sent. */
  campaign_id: string | null;
}

/** What a submit needs of a message row (a claim reads it; urgent intake hands it over). */
export type ClaimRow = Pick<
  MessageTable,
  | 'id'
  | 'tenant_id'
  | 'to_number'
  | 'country'
  | 'sender'
  | 'body'
  | 'sealed_body'
  | 'lane'
  | 'encoding'
  | 'segments'
  | 'expires_at'
  | 'campaign_id'
> & { attempts: number };

/** A claimed entry as loadClaimed reads it. */
type LoadedClaim = ClaimRow & { lane_rank: number };

const LOADED_CLAIM = [
  'id',
  'tenant_id',
  'to_number',
  'country',
  'sender',
  'body',
  'sealed_body',
  'lane',
  'encoding',
  'segments',
  'expires_at',
  'attempts',
  'lane_rank',
  'campaign_id',
] as const satisfies readonly (keyof LoadedClaim)[];

export function claimedMessage(r: ClaimRow): ClaimedMessage {
  return {
    id: r.id,
    tenant_id: r.tenant_id,
    to: r.to_number,
    country: r.country,
    from: r.sender,
    // Verify codes are stored sealed, masked in `body`: only what goes to the carrier is opened.
    text: r.sealed_body === null ? r.body : unsealText(r.sealed_body, r.tenant_id, r.id, r.body),
    lane: r.lane,
    encoding: r.encoding,
    segments: r.segments,
    expires_at: r.expires_at,
    attempts: r.attempts,
    campaign_id: r.campaign_id,
  };
}

export interface ClaimOptions {
  owner: string;
  limit: number;
  /** How long the lease lasts; an owner that dies releases its work when it ends. */
  leaseMs: number;
  /** Highest lane to take (default: every lane). */
  upToLane?: Lane;
}

/**
 * The seam between accepted messages and carriers. The dispatcher claims pending work by lane,
 * submits it, then records what happened; a message leaves the queue once the carrier has answered
 * (`submitted`) or it reached a final status, and every change notifies the webhook outbox.
 */
export class WorkQueue {
  private readonly eventListeners = new Set<() => void>();
  private lastTenant = '';
  private readonly bulkFloors = new BulkFloors();
  private webhookTaker: WebhookTaker | null = null;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /** Called after status changes created webhook events, so the sender wakes at once. */
  onWebhookEvents(listener: () => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  /** Webhook events of recorded outcomes go straight to `taker` from now on (see WebhookHandover). */
  handWebhooksTo(taker: WebhookTaker): void {
    this.webhookTaker = taker;
  }

  /**
   * Leases due work: urgent lanes first, oldest first; then bulk, shared between the tenants that
   * have some (a tenant with a million queued does not push another's thousand behind it).
   */
  async claim(options: ClaimOptions): Promise<ClaimedMessage[]> {
    const now = this.clock.now();
    // Urgent claims (the dispatcher's otp/transactional path) go ahead of queued bulk work.
    const urgentOnly = options.upToLane !== undefined && options.upToLane !== 'bulk';
    // Submitted at commit, not once durable: a claim a power cut takes back only sends the work
    // again, like the outcomes of its submits, lost with it (Store.writeCommitted).
    const { result: rows } = await this.store.writeCommitted(urgentOnly, async (trx) => {
      const urgent = await this.claimWhere(
        trx,
        options,
        now,
        sql`lane_rank <= ${Math.min(1, LANE_RANK[options.upToLane ?? 'bulk'])}`,
        options.limit,
      );
      const room = options.limit - urgent.length;
      if (room <= 0 || urgentOnly) return this.loadClaimed(trx, urgent, options.owner);
      // Only here: an urgent claim reads the few urgent entries whatever the plan.
      await this.store.walkIndexes(trx);
      const bulk = await this.claimBulk(trx, options, now, room);
      return this.loadClaimed(trx, [...urgent, ...bulk], options.owner);
    });
    this.bulkFloors.advance(rows);
    return rows.map(claimedMessage);
  }

  /**
   * Bulk work shared between the tenants that have some. First a quick pass with the last list of
   * tenants, each read above its floor; then, only when that came up short, the full pass: a fresh
   * list of tenants, each read from its oldest entry.
   */
  private async claimBulk(trx: Trx, options: ClaimOptions, now: number, room: number): Promise<string[]> {
    const floors = this.bulkFloors.current(now);
    const bulk = floors ? await this.claimTenants(trx, options, now, room, floors.tenants, floors.above) : [];
    if (bulk.length >= room) return bulk;
    const tenants = await this.tenantsWithBulk(trx);
    this.bulkFloors.reset(now, tenants);
    bulk.push(...(await this.claimTenants(trx, options, now, room - bulk.length, tenants, new Map())));
    return bulk;
  }

  private async claimTenants(
    trx: Trx,
    options: ClaimOptions,
    now: number,
    room: number,
    tenants: readonly string[],
    above: ReadonlyMap<string, string>,
  ): Promise<string[]> {
    const share = Math.max(1, Math.ceil(room / Math.max(1, tenants.length)));
    const bulk: string[] = [];
    for (const tenant of tenants) {
      if (bulk.length >= room) break;
      const limit = Math.min(share, room - bulk.length);
      const floor = above.get(tenant);
      const filter =
        floor === undefined
          ? sql`lane_rank = 2 and tenant_id = ${tenant}`
          : sql`lane_rank = 2 and tenant_id = ${tenant} and message_id > ${floor}`;
      bulk.push(...(await this.claimWhere(trx, options, now, filter, limit)));
    }
    return bulk;
  }

  /**
   * The claimed entries with what a submit needs, read in the claiming transaction: urgent lanes
   * first, then oldest first.
   */
  private async loadClaimed(trx: Trx, ids: string[], owner: string): Promise<LoadedClaim[]> {
    if (ids.length === 0) return [];
    const query = trx
      .selectFrom('queue')
      .innerJoin('messages', 'messages.id', 'queue.message_id')
      .select([
        'messages.id',
        'messages.tenant_id',
        'messages.to_number',
        'messages.country',
        'messages.sender',
        'messages.body',
        'messages.sealed_body',
        'messages.lane',
        'messages.encoding',
        'messages.segments',
        'queue.expires_at',
        'queue.attempts',
        'queue.lane_rank',
        'queue.campaign_id',
      ])
      .where(inList(trx, 'queue.message_id', ids))
      .where('queue.claimed_by', '=', owner);
    const rows = await selectRows(trx, query, LOADED_CLAIM);
    return rows.sort((a, b) => a.lane_rank - b.lane_rank || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  // A lease, not a lock: if the owner dies, the entry is claimable again once claimed_until passes.
  private async claimWhere(
    trx: Trx,
    options: ClaimOptions,
    now: number,
    filter: RawBuilder<unknown>,
    limit: number,
  ) {
    const due = sql`
      select message_id from queue
      where ${filter} and not_before <= ${now}
        and (claimed_by is null or claimed_until < ${now})
      order by lane_rank, message_id
      limit ${limit}
      ${this.store.skipLocked}`;
    const result = await sql<{ message_id: string }>`
      update queue set claimed_by = ${options.owner}, claimed_until = ${now + options.leaseMs}
      where ${this.store.anyOf(sql.ref('message_id'), due)}
      returning message_id`.execute(trx);
    return result.rows.map((r) => r.message_id);
  }

  /**
   * Up to 50 tenants with bulk work, starting after the last one served so that every tenant gets
   * its turn when there are more. A loose index scan on (lane_rank, tenant_id): one probe per tenant,
   * not a scan of the whole bulk backlog.
   */
  private async tenantsWithBulk(trx: Trx): Promise<string[]> {
    const scan = (after: string) =>
      sql<{ tenant_id: string }>`
        with recursive t(tenant_id) as (
          select min(tenant_id) from queue where lane_rank = 2 and tenant_id > ${after}
          union all
          select (select min(tenant_id) from queue where lane_rank = 2 and tenant_id > t.tenant_id)
          from t where t.tenant_id is not null
        )
        select tenant_id from t where tenant_id is not null limit ${TENANTS_PER_SCAN}`.execute(trx);
    let tenants = (await scan(this.lastTenant)).rows.map((r) => r.tenant_id);
    if (tenants.length < TENANTS_PER_SCAN && this.lastTenant !== '') {
      const wrapped = (await scan('')).rows.map((r) => r.tenant_id).filter((t) => !tenants.includes(t));
      tenants = [...tenants, ...wrapped].slice(0, TENANTS_PER_SCAN);
    }
    this.lastTenant = tenants.at(-1) ?? '';
    return tenants;
  }

  /** Records status changes of claimed work in one transaction (see recordOutcomes), durably. */
  async record(changes: StatusChange[]): Promise<void> {
    await (await this.recordOutcomes([{ changes }])).durable;
  }

  /**
   * Records outcomes in one transaction: status changes (messages that were submitted or reached a
   * final status leave the queue), then receipt updates of parts. Every change notifies the webhook
   * outbox in the same transaction. Changes go first because a receipt is only ever handed over once
   * its message's `submitted` change has been (see ReceiptMatcher), so within a batch nothing depends
   * on the reverse order — and one multi-row statement per kind keeps the batch cheap.
   *
   * Resolves once committed, with `durable` (Store.writeCommitted): the dispatcher goes on at commit,
   * while a carrier's deliver_sm is answered, and a webhook sent, only once the change is on disk.
   */
  async recordOutcomes(units: Recordable[]): Promise<{ durable: Promise<void> }> {
    if (units.length === 0) return { durable: Promise.resolve() };
    const now = this.clock.now();
    const changes = units.flatMap((u) => ('changes' in u ? u.changes : []));
    const receipts = units.flatMap((u) => ('receipts' in u ? u.receipts : []));
    const leasedUntil = this.webhookTaker?.lease() ?? null;
    const handover: WebhookHandover | undefined =
      leasedUntil === null ? undefined : { leasedUntil, events: [] };
    const { result: created, durable } = await this.store.writeCommitted(false, async (trx) => {
      // Both kinds fold into one set of rollup rows, upserted last (see RollupBatch.write).
      const rollups = new RollupBatch();
      const events =
        (await this.applyChanges(trx, changes, now, { handover, rollups })) +
        (await applyReceiptUpdates(trx, receipts, now, { handover, rollups }));
      await rollups.write(trx);
      return events;
    });
    // Not sent before it is durable. Should the sync fail, the handed-over events stay leased, and
    // come due when the lease runs out, as after a crash.
    void durable.then(
      () => {
        if (handover) {
          if (handover.events.length > 0) this.webhookTaker!.take(handover.events);
        } else if (created > 0) {
          this.notifyEvents();
        }
      },
      () => {},
    );
    return { durable };
  }

  private async applyChanges(
    trx: Trx,
    changes: StatusChange[],
    now: number,
    options: StatusWriteOptions,
  ): Promise<number> {
    const done = changes
      .filter((c) => c.status === 'submitted' || FINAL_STATUSES.has(c.status))
      .map((c) => c.messageId);
    const events = await applyStatusChanges(trx, changes, now, options);
    for (let i = 0; i < done.length; i += 500) {
      await trx
        .deleteFrom('queue')
        .where(inList(trx, 'message_id', done.slice(i, i + 500)))
        .execute();
    }
    return events;
  }

  /**
   * Puts claimed work back, due again at `at`. `countAttempt`: a failed try (temporary carrier error)
   * rather than a wait for a carrier to come back.
   */
  async retryLater(owner: string, messageIds: string[], at: number, countAttempt = true): Promise<void> {
    if (messageIds.length === 0) return;
    await this.store.write((trx) =>
      trx
        .updateTable('queue')
        .set((eb) => ({
          claimed_by: null,
          claimed_until: null,
          not_before: at,
          attempts: countAttempt ? eb('attempts', '+', 1) : eb.ref('attempts'),
        }))
        .where(inList(trx, 'message_id', messageIds))
        .where('claimed_by', '=', owner)
        .execute(),
    );
  }

  /**
   * Extends an owner's leases on the given entries (the work waiting in its memory), which stay its
   * own. By id, through the primary key: `claimed_by` has no index, and filtering on it alone scanned
   * the whole queue on every renewal (profiled on PostgreSQL: 0.3 s per renewal with a backlog).
   */
  async renewLeases(owner: string, messageIds: readonly string[], leaseMs: number): Promise<void> {
    const until = this.clock.now() + leaseMs;
    for (let i = 0; i < messageIds.length; i += 500) {
      await this.store.write((trx) =>
        trx
          .updateTable('queue')
          .set({ claimed_until: until })
          .where(inList(trx, 'message_id', messageIds.slice(i, i + 500)))
          .where('claimed_by', '=', owner)
          .execute(),
      );
    }
  }

  /**
   * Frees every lease whatever its owner. Only for a single-node installation (SQLite) at start: no
   * other dispatcher can be alive, so the leases of a crashed process need not be waited out.
   */
  async releaseEveryLease(): Promise<number> {
    const result = await this.store.write((trx) =>
      trx
        .updateTable('queue')
        .set({ claimed_by: null, claimed_until: null })
        .where('claimed_by', 'is not', null)
        .executeTakeFirst(),
    );
    return Number(result.numUpdatedRows);
  }

  /** Returns every lease of an owner (graceful shutdown), due again at once. */
  async releaseAll(owner: string): Promise<void> {
    await this.store.write((trx) =>
      trx
        .updateTable('queue')
        .set({ claimed_by: null, claimed_until: null })
        .where('claimed_by', '=', owner)
        .execute(),
    );
  }

  /** Marks queued messages whose validity has ended as `expired` (with their webhooks). */
  async expireDue(limit = 1000): Promise<number> {
    const now = this.clock.now();
    const due = await this.store.db
      .selectFrom('queue')
      .select('message_id')
      .where('expires_at', '<=', now)
      .where((eb) => eb.or([eb('claimed_by', 'is', null), eb('claimed_until', '<', now)]))
      .limit(limit)
      .execute();
    if (due.length === 0) return 0;
    await this.record(
      due.map((d) => ({
        messageId: d.message_id,
        status: 'expired' as const,
        errorCode: 'validity_expired',
        errorReason: 'the validity period ended before the message could be sent',
      })),
    );
    return due.length;
  }

  /** Pending entries per lane (for metrics and the back-office). */
  async depth(): Promise<Record<Lane, number>> {
    const rows = await this.store.db
      .selectFrom('queue')
      .select(['lane', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy('lane')
      .execute();
    const out: Record<Lane, number> = { otp: 0, transactional: 0, bulk: 0 };
    for (const r of rows) out[r.lane] = Number(r.n);
    return out;
  }

  private notifyEvents(): void {
    for (const listener of this.eventListeners) listener();
  }
}

/** Tenants with bulk work listed per claim, at most; with more, each claim takes the next ones. */
const TENANTS_PER_SCAN = 50;

/** How long a list of tenants with bulk work, and the floors read above, are used before a full pass. */
const BULK_FLOOR_TTL_MS = 1_000;

/**
 * Where the last bulk claims stopped, per tenant. PostgreSQL keeps the index entries of sent messages
 * (deleted queue rows) until a vacuum, and a claim reading a tenant's entries from the oldest walked
 * past all of them: at thousands of messages a second that was up to 3 ms per claim late in a run,
 * and 1–2 ms more to list the tenants. Entries below a floor can still become due (a retry, an expired lease, a batch
 * that committed after a later one was claimed, a scheduled message): a claim that comes up short, and
 * every claim after the floors' second, reads from the oldest entry again, so they wait at most that.
 */
class BulkFloors {
  private since = Number.NEGATIVE_INFINITY;
  private tenants: readonly string[] = [];
  private readonly above = new Map<string, string>();

  current(now: number): { tenants: readonly string[]; above: ReadonlyMap<string, string> } | null {
    if (now - this.since >= BULK_FLOOR_TTL_MS || this.tenants.length === 0) return null;
    return { tenants: this.tenants, above: this.above };
  }

  reset(now: number, tenants: readonly string[]): void {
    this.since = now;
    // A full list (the scan's limit) is one window of a rotation between more tenants: it is not kept.
    this.tenants = tenants.length < TENANTS_PER_SCAN ? tenants : [];
    this.above.clear();
  }

  /** After the claim's commit: the highest bulk entry claimed per tenant. */
  advance(rows: readonly { id: string; tenant_id: string; lane: Lane }[]): void {
    for (const r of rows) {
      if (r.lane !== 'bulk') continue;
      const floor = this.above.get(r.tenant_id);
      if (floor === undefined || r.id > floor) this.above.set(r.tenant_id, r.id);
    }
  }
}
