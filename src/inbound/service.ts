import type { InboundMessage } from '../carriers/smpp-connector.js';
import type { Config } from '../config/schema.js';
import { numberWalk } from '../messages/queries.js';
import { addOptout, removeOptout } from '../optouts/optout-service.js';
import { writeTenantEvents } from '../optouts/tenant-events.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { InboundMessageTable } from '../store/schema.js';
import type { Store, Trx } from '../store/store.js';
import { moSender, numberForms } from './addresses.js';
import { collectPart, purgeStaleParts, readMo } from './content.js';
import { type Keyword, KeywordMatcher } from './keywords.js';
import { inboundIdFloor, inboundView, newInboundId } from './queries.js';

export type ReceiveOutcome =
  | { kind: 'stored'; id: string; tenantId: string | null; keyword: Keyword | null }
  /** One part of a long message, stored until the others come. */
  | { kind: 'partial' }
  /** An identical MO was stored moments ago: a carrier redelivery, acknowledged without effect. */
  | { kind: 'duplicate'; id: string };

interface Attribution {
  tenantId: string | null;
  messageId: string | null;
  campaignId: string | null;
}

const PURGE_EVERY_MS = 3600_000;

/**
 * Mobile-originated messages: each deliver_sm that is not a receipt lands here. The message (or,
 * for a long one, each part) is committed before the connector acknowledges it, together with its
 * effects — tenant and campaign attribution, STOP/START on the opt-out list, webhook events — in
 * one transaction, so a crash never leaves half of them.
 */
export class InboundService {
  /** Since start: for logs and tests (unknown numbers are never an error). */
  readonly counters = { stored: 0, unknown_number: 0, unattributed: 0, duplicates: 0, parts: 0 };
  private readonly keywords: KeywordMatcher;
  private readonly listeners = new Set<() => void>();
  private lastPurge = 0;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly config: Config['inbound'],
    private readonly log: Logger,
  ) {
    this.keywords = new KeywordMatcher(config.stop_keywords, config.start_keywords);
  }

  /** Called after webhook events are committed, so the sender delivers them at once. */
  onWebhookEvents(listener: () => void): void {
    this.listeners.add(listener);
  }

  /** Stores one deliver_sm; resolves once committed (the connector acknowledges it then). */
  async receive(connector: string, message: InboundMessage): Promise<ReceiveOutcome> {
    const content = readMo(message);
    const from = moSender(message.from, this.config.default_country);
    const to = message.to.trim();
    const now = this.clock.now();
    const outcome = await this.store.write(async (trx) => {
      let text = content.text;
      if (content.concat) {
        const whole = await collectPart(
          this.store,
          trx,
          { connector, from, to, concat: content.concat },
          text,
          now,
        );
        if (whole === null) return { kind: 'partial' as const, events: 0 };
        text = whole;
      }
      return this.storeMessage(trx, { connector, from, to, text }, now);
    });
    if (outcome.events > 0) for (const listener of this.listeners) listener();
    if (content.concat) await this.purgeIfDue(now);
    const { events: _, ...result } = outcome;
    if (result.kind === 'partial') this.counters.parts++;
    return result;
  }

  private async storeMessage(
    trx: Trx,
    mo: { connector: string; from: string; to: string; text: string },
    now: number,
  ): Promise<ReceiveOutcome & { events: number }> {
    const duplicate = await this.recentTwin(trx, mo, now);
    if (duplicate) {
      this.counters.duplicates++;
      return { kind: 'duplicate', id: duplicate, events: 0 };
    }
    const who = await this.attribute(trx, mo.to, mo.from);
    const keyword = who.tenantId ? this.keywords.match(mo.text) : null;
    const row: InboundMessageTable = {
      id: newInboundId(now),
      tenant_id: who.tenantId,
      to_number: mo.to,
      from_number: mo.from,
      text: mo.text,
      connector: mo.connector,
      keyword,
      campaign_id: who.campaignId,
      message_id: who.messageId,
      received_at: now,
    };
    await trx.insertInto('inbound_messages').values(row).execute();
    this.counters.stored++;
    if (!who.tenantId) {
      this.log.warn(
        { connector: mo.connector, to: mo.to, id: row.id },
        'inbound message to a number no tenant owns (or not attributable on a shared number): stored unassigned',
      );
      return { kind: 'stored', id: row.id, tenantId: null, keyword: null, events: 0 };
    }
    const tenantId = who.tenantId;
    let events = await writeTenantEvents(
      trx,
      tenantId,
      [{ type: 'message.inbound', data: inboundView(row) }],
      now,
    );
    let optedOut = false;
    if (keyword === 'stop') {
      const added = await addOptout(
        trx,
        { tenantId, phone: mo.from, source: 'keyword', detail: row.id },
        now,
      );
      optedOut = added.created;
      if (added.created) events++;
    } else if (keyword === 'start') {
      if (await removeOptout(trx, { tenantId, phone: mo.from, source: 'keyword' }, now)) events++;
    }
    if (row.campaign_id) {
      await trx
        .updateTable('campaigns')
        .set((eb) => ({
          replies: eb('replies', '+', 1),
          ...(optedOut ? { optouts: eb('optouts', '+', 1) } : {}),
        }))
        .where('id', '=', row.campaign_id)
        .where('tenant_id', '=', tenantId)
        .execute();
    }
    return { kind: 'stored', id: row.id, tenantId, keyword, events };
  }

  /**
   * The tenant the MO belongs to: the owner of the number; on a number shared by several tenants, the
   * one that last sent to this phone (one indexed probe per candidate, newest message id wins).
   */
  private async attribute(trx: Trx, to: string, from: string): Promise<Attribution> {
    const owners = await trx
      .selectFrom('numbers')
      .select('tenant_id')
      .distinct()
      .where('number', 'in', numberForms(to))
      .execute();
    if (owners.length === 0) {
      this.counters.unknown_number++;
      return { tenantId: null, messageId: null, campaignId: null };
    }
    let newest: { tenant_id: string; id: string; campaign_id: string | null } | undefined;
    const walk = numberWalk(this.store.dialect);
    for (const owner of owners) {
      const last = await trx
        .selectFrom('messages')
        .select(['tenant_id', 'id', 'campaign_id'])
        .where(walk?.unindexed('tenant_id') ?? 'tenant_id', '=', owner.tenant_id)
        .where('to_number', '=', from)
        .orderBy(walk?.newestFirst ?? 'id', 'desc')
        .limit(1)
        .executeTakeFirst();
      if (last && (!newest || last.id > newest.id)) newest = last;
    }
    if (newest) return { tenantId: newest.tenant_id, messageId: newest.id, campaignId: newest.campaign_id };
    if (owners.length === 1) return { tenantId: owners[0]!.tenant_id, messageId: null, campaignId: null };
    // Shared, and none of its tenants ever wrote to this phone: nobody can claim the reply.
    this.counters.unattributed++;
    return { tenantId: null, messageId: null, campaignId: null };
  }

  /** The id of an identical MO stored within the dedupe window, if any (the PK range keeps it cheap). */
  private async recentTwin(
    trx: Trx,
    mo: { from: string; to: string; text: string },
    now: number,
  ): Promise<string | null> {
    if (this.config.dedupe_seconds === 0) return null;
    const twin = await trx
      .selectFrom('inbound_messages')
      .select('id')
      .where('id', '>=', inboundIdFloor(now - this.config.dedupe_seconds * 1000))
      .where('from_number', '=', mo.from)
      .where('to_number', '=', mo.to)
      .where('text', '=', mo.text)
      .limit(1)
      .executeTakeFirst();
    return twin?.id ?? null;
  }

  private async purgeIfDue(now: number): Promise<void> {
    if (now - this.lastPurge < PURGE_EVERY_MS) return;
    this.lastPurge = now;
    const olderThan = now - this.config.part_ttl_hours * 3600_000;
    try {
      const purged = await this.store.write((trx) => purgeStaleParts(trx, olderThan));
      if (purged > 0) this.log.warn({ purged }, 'dropped parts of long inbound messages never completed');
    } catch (err) {
      this.log.error({ err }, 'could not purge stale inbound parts');
    }
  }
}
