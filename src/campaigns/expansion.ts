import type { Config } from '../config/schema.js';
import { prepareMessage } from '../messages/prepare.js';
import { writeSubmitUnits } from '../messages/writer.js';
import { optedOutAmong, withOptoutMention } from '../optouts/optouts.js';
import { RelaisError } from '../shared/errors.js';
import type { MessageTable } from '../store/schema.js';
import type { Db, Store, Trx } from '../store/store.js';
import { loadRecipients, memberPage } from './recipients.js';
import { isWindowOpen, recipientZone, type SendWindow } from './send-window.js';
import { parseAttributes, parseTemplate, renderTemplate } from './templates.js';

/**
 * Where a campaign stands in its recipients, stored as JSON in campaigns.cursor.
 *
 * `after` is the main keyset cursor over the lists' members (contact id order). With a send window,
 * a recipient whose local window is closed when the main cursor passes it gets no message row; its
 * zone instead keeps a lagging cursor `lag[zone]` (the position from which that zone still has
 * recipients to send). When the zone's window opens, the runner walks from `lag[zone]` up to
 * `after`, sending only that zone's recipients, and drops the entry once it catches up; meanwhile
 * the main cursor defers that zone too, so nothing is sent twice. The stored state is a few entries
 * per time zone, whatever the campaign's size.
 */
export interface CursorState {
  after: string;
  /** The main cursor reached the end of the lists. */
  done: boolean;
  lag: Record<string, string>;
}

export const INITIAL_CURSOR: CursorState = { after: '', done: false, lag: {} };

export function parseCursor(json: string | null): CursorState {
  if (!json) return { ...INITIAL_CURSOR, lag: {} };
  const c = JSON.parse(json) as CursorState;
  return { after: c.after, done: c.done, lag: { ...c.lag } };
}

/** Every recipient has been handled: the main cursor is at the end and no zone lags behind. */
export function cursorExhausted(c: CursorState): boolean {
  return c.done && Object.keys(c.lag).length === 0;
}

export interface PageResult {
  /** Message rows created (committed with the page). */
  created: number;
  /** Recipients scanned (the page made progress when > 0 or the cursor moved). */
  moved: boolean;
  exhausted: boolean;
}

export interface ExpandContext {
  campaignId: string;
  /** Recipients to read at most per list (the page's bound). */
  limit: number;
  now: number;
  messages: Config['messages'];
  webhooks: Config['webhooks'];
}

/** Thrown inside the transaction to roll it back when the campaign changed under the page. */
class CampaignChanged extends Error {}

/** A page read and rendered, ready to commit. */
interface PagePlan {
  tenantId: string;
  rows: MessageTable[];
  skippedOptout: number;
  skippedInvalid: number;
  cursorBefore: string;
  cursorAfter: CursorState;
}

/**
 * Reads and renders one page outside any transaction: the next recipients, minus opted-out and
 * invalid ones, each rendered and built through the common row builder. The CPU work (rendering,
 * number parsing) thus never holds the write lock; commitPage makes it count only if the cursor has
 * not moved meanwhile. Returns null when the campaign is not running, or a result when there is
 * nothing to read (waiting for windows, or done).
 */
async function planPage(db: Db, ctx: ExpandContext): Promise<PagePlan | PageResult | null> {
  const campaign = await db
    .selectFrom('campaigns')
    .innerJoin('tenants', 'tenants.id', 'campaigns.tenant_id')
    .select([
      'campaigns.tenant_id',
      'campaigns.list_ids',
      'campaigns.sender',
      'campaigns.template',
      'campaigns.status',
      'campaigns.send_window',
      'campaigns.cursor',
      'tenants.optout_mention',
    ])
    .where('campaigns.id', '=', ctx.campaignId)
    .executeTakeFirst();
  if (campaign?.status !== 'running') return null;
  const state = parseCursor(campaign.cursor);
  const window = campaign.send_window ? (JSON.parse(campaign.send_window) as SendWindow) : null;
  const zoneOpen = new Map<string, boolean>();
  const open = (zone: string): boolean => {
    const known = zoneOpen.get(zone);
    if (known !== undefined) return known;
    const o = window === null || isWindowOpen(window, zone, ctx.now);
    zoneOpen.set(zone, o);
    return o;
  };
  // Lagging zones whose window is open go first: their recipients are the oldest.
  const lagZone = Object.keys(state.lag).find((z) => open(z)) ?? null;
  if (lagZone === null && state.done) return { created: 0, moved: false, exhausted: cursorExhausted(state) };
  const cursorBefore = campaign.cursor ?? '';

  const listIds = JSON.parse(campaign.list_ids) as string[];
  const from = lagZone === null ? state.after : state.lag[lagZone]!;
  const page = await memberPage(db, listIds, from, lagZone === null ? null : state.after, ctx.limit);
  const contacts = await loadRecipients(db, campaign.tenant_id, page.ids);

  const chosen: typeof contacts = [];
  for (const c of contacts) {
    const zone = window === null ? '' : recipientZone(c);
    if (lagZone !== null) {
      if (zone === lagZone) chosen.push(c);
    } else if (window === null || (open(zone) && state.lag[zone] === undefined)) {
      chosen.push(c);
    } else {
      // Deferred: the zone's lagging cursor starts before this page, so it will come back here.
      state.lag[zone] ??= from;
    }
  }
  if (lagZone !== null) {
    if (page.exhausted) delete state.lag[lagZone];
    else state.lag[lagZone] = page.next;
  } else {
    state.after = page.next;
    state.done = page.exhausted;
  }

  const optedOut = await optedOutAmong(
    db,
    campaign.tenant_id,
    chosen.map((c) => c.phone),
  );
  const template = parseTemplate(campaign.template);
  const rows: MessageTable[] = [];
  let skippedOptout = 0;
  let skippedInvalid = 0;
  for (const c of chosen) {
    if (optedOut.has(c.phone)) {
      skippedOptout++;
      continue;
    }
    const text = withOptoutMention(
      renderTemplate(template, {
        phone: c.phone,
        first_name: c.first_name,
        last_name: c.last_name,
        attributes: parseAttributes(c.attributes),
      }),
      campaign.optout_mention,
    );
    try {
      const { row } = prepareMessage(
        campaign.tenant_id,
        { to: c.phone, from: campaign.sender, text, lane: 'bulk', campaignId: ctx.campaignId },
        ctx.now,
        ctx.messages,
        ctx.webhooks,
      );
      rows.push(row);
    } catch (err) {
      if (!(err instanceof RelaisError)) throw err;
      skippedInvalid++;
    }
  }
  return {
    tenantId: campaign.tenant_id,
    rows,
    skippedOptout,
    skippedInvalid,
    cursorBefore,
    cursorAfter: state,
  };
}

/**
 * Commits a planned page in one write transaction: the messages and their queue entries (the common
 * writer), the new cursor and the counters — all or nothing, so a crash resumes at the committed
 * cursor and never creates a recipient's message twice. The cursor update is a compare-and-set on
 * (status, cursor): a pause/cancel or another node's page in between rolls this one back.
 */
async function commitPage(trx: Trx, ctx: ExpandContext, plan: PagePlan): Promise<void> {
  if (plan.rows.length > 0) {
    await writeSubmitUnits(trx, [{ tenantId: plan.tenantId, createdAt: ctx.now, rows: plan.rows }]);
  }
  const handled = plan.rows.length + plan.skippedOptout + plan.skippedInvalid;
  const updated = await trx
    .updateTable('campaigns')
    .set((eb) => ({
      cursor: JSON.stringify(plan.cursorAfter),
      targeted: eb('targeted', '+', handled),
      queued: eb('queued', '+', plan.rows.length),
      skipped_optout: eb('skipped_optout', '+', plan.skippedOptout),
      skipped_invalid: eb('skipped_invalid', '+', plan.skippedInvalid),
      updated_at: ctx.now,
    }))
    .where('id', '=', ctx.campaignId)
    .where('status', '=', 'running')
    .where('cursor', '=', plan.cursorBefore)
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) !== 1) throw new CampaignChanged();
}

/**
 * One expansion page: planned outside, committed in one write transaction. Null when the campaign is
 * not running, or changed between the two (the next page starts again from the committed cursor).
 */
export async function expandPage(store: Store, ctx: ExpandContext): Promise<PageResult | null> {
  const plan = await planPage(store.db, ctx);
  if (plan === null || !('rows' in plan)) return plan;
  try {
    await store.write((trx) => commitPage(trx, ctx, plan));
  } catch (err) {
    if (err instanceof CampaignChanged) return null;
    throw err;
  }
  return { created: plan.rows.length, moved: true, exhausted: cursorExhausted(plan.cursorAfter) };
}
