import { analyzeText } from '../messages/encoding.js';
import { parseSendAt } from '../messages/prepare.js';
import { validateSender } from '../messages/sender.js';
import { withOptoutMention } from '../optouts/optouts.js';
import type { Clock } from '../shared/clock.js';
import { decodeCursor, encodeCursor } from '../shared/cursor.js';
import { RelaisError } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import type { CampaignStatus, CampaignTable } from '../store/schema.js';
import type { Store } from '../store/store.js';
import type { CampaignRunner } from './campaign-runner.js';
import { INITIAL_CURSOR } from './expansion.js';
import { loadRecipients, memberPage } from './recipients.js';
import { type SendWindow, validateWindow } from './send-window.js';
import { type CampaignStats, campaignStats } from './stats.js';
import { parseAttributes, parseTemplate, renderTemplate, type TemplateContact } from './templates.js';

export interface CreateCampaignInput {
  name: string;
  list_ids: string[];
  from: string;
  template: string;
  send_at?: string | undefined;
  window?: SendWindow | undefined;
  max_tps?: number | undefined;
}

export interface CampaignView {
  id: string;
  name: string;
  status: CampaignStatus;
  list_ids: string[];
  from: string;
  template: string;
  send_at: string | null;
  window: SendWindow | null;
  max_tps: number | null;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  completed_at: string | null;
}

export interface CampaignDetail extends CampaignView {
  stats: CampaignStats;
}

export interface CampaignPreview {
  contact: { id: string | null; phone: string; sample: boolean };
  text: string;
  encoding: 'GSM-7' | 'UCS-2';
  segments: number;
  characters: number;
  /** Members of the lists (a contact in two lists counts twice): an upper bound of recipients. */
  recipients_estimate: number;
  /** recipients_estimate × segments of this rendering: an estimate, texts vary with each contact. */
  estimated_total_segments: number;
}

export type CampaignAction = 'start' | 'pause' | 'resume' | 'cancel';

/** Which states each action leaves from. */
const ALLOWED: Record<CampaignAction, CampaignStatus[]> = {
  start: ['draft'],
  pause: ['running'],
  resume: ['paused'],
  cancel: ['draft', 'scheduled', 'running', 'paused'],
};

const SAMPLE: TemplateContact = {
  phone: '+33612345678',
  first_name: 'Marie',
  last_name: 'Martin',
  attributes: { city: 'Lyon' },
};

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

function toView(c: CampaignTable): CampaignView {
  return {
    id: c.id,
    name: c.name,
    status: c.status,
    list_ids: JSON.parse(c.list_ids) as string[],
    from: c.sender,
    template: c.template,
    send_at: iso(c.send_at),
    window: c.send_window ? (JSON.parse(c.send_window) as SendWindow) : null,
    max_tps: c.max_tps,
    created_at: new Date(c.created_at).toISOString(),
    updated_at: new Date(c.updated_at).toISOString(),
    started_at: iso(c.started_at),
    completed_at: iso(c.completed_at),
  };
}

/** Campaigns as the API sees them: creation and checks, lifecycle, statistics and preview. */
export class CampaignService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly runner: CampaignRunner,
  ) {}

  async create(tenantId: string, input: CreateCampaignInput): Promise<CampaignDetail> {
    const now = this.clock.now();
    if (input.name.trim() === '') throw new RelaisError('invalid_field', 'name is empty', 'name');
    const { sender } = validateSender(input.from);
    parseTemplate(input.template);
    const listIds = [...new Set(input.list_ids)];
    if (listIds.length === 0) throw new RelaisError('invalid_field', 'list_ids names no list', 'list_ids');
    const sendAt = input.send_at === undefined ? null : parseSendAt(input.send_at, now);
    const window = input.window === undefined ? null : validateWindow(input.window);
    await this.requireLists(tenantId, listIds);
    const row: CampaignTable = {
      id: newId('cmp', now),
      tenant_id: tenantId,
      name: input.name.trim(),
      list_ids: JSON.stringify(listIds),
      sender,
      template: input.template,
      status: 'draft',
      send_at: sendAt,
      send_window: window === null ? null : JSON.stringify(window),
      max_tps: input.max_tps ?? null,
      cursor: null,
      targeted: 0,
      skipped_optout: 0,
      skipped_invalid: 0,
      queued: 0,
      replies: 0,
      optouts: 0,
      error: null,
      created_at: now,
      updated_at: now,
      started_at: null,
      completed_at: null,
    };
    await this.store.write((trx) => trx.insertInto('campaigns').values(row).execute());
    return { ...toView(row), stats: await campaignStats(this.store.db, row) };
  }

  private async requireLists(tenantId: string, listIds: string[]): Promise<void> {
    const found = await this.store.db
      .selectFrom('lists')
      .select('id')
      .where('tenant_id', '=', tenantId)
      .where('id', 'in', listIds)
      .execute();
    const known = new Set(found.map((l) => l.id));
    const index = listIds.findIndex((id) => !known.has(id));
    if (index !== -1) throw new RelaisError('not_found', `no list ${listIds[index]}`, `list_ids/${index}`);
  }

  private async row(tenantId: string, id: string): Promise<CampaignTable> {
    const row = await this.store.db
      .selectFrom('campaigns')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) throw new RelaisError('not_found', `no campaign ${id}`, 'id');
    return row;
  }

  async get(tenantId: string, id: string): Promise<CampaignDetail> {
    const row = await this.row(tenantId, id);
    return { ...toView(row), stats: await campaignStats(this.store.db, row) };
  }

  /** Newest first, keyset-paged by id. */
  async list(
    tenantId: string,
    options: { cursor?: string | undefined; limit?: number | undefined; status?: CampaignStatus | undefined },
  ): Promise<{ data: CampaignView[]; next_cursor: string | null }> {
    const limit = options.limit ?? 50;
    let q = this.store.db.selectFrom('campaigns').selectAll().where('tenant_id', '=', tenantId);
    if (options.cursor !== undefined) q = q.where('id', '<', decodeCursor(options.cursor, 'cmp'));
    if (options.status !== undefined) q = q.where('status', '=', options.status);
    const rows = await q
      .orderBy('id', 'desc')
      .limit(limit + 1)
      .execute();
    const page = rows.slice(0, limit);
    return {
      data: page.map(toView),
      next_cursor: rows.length > limit ? encodeCursor(page.at(-1)!.id) : null,
    };
  }

  /**
   * A lifecycle action, as one conditional UPDATE: it applies only from the states the action
   * leaves from, so two racing requests cannot both win; anything else is a 409 naming both states.
   */
  async transition(tenantId: string, id: string, action: CampaignAction): Promise<CampaignDetail> {
    const now = this.clock.now();
    const current = await this.row(tenantId, id);
    if (!ALLOWED[action].includes(current.status)) throw notAllowed(action, current.status);
    let next: CampaignStatus;
    if (action === 'start')
      next = current.send_at !== null && current.send_at > now ? 'scheduled' : 'running';
    else if (action === 'pause') next = 'paused';
    else if (action === 'resume') next = 'running';
    else next = 'cancelled';
    const updated = await this.store.write((trx) =>
      trx
        .updateTable('campaigns')
        .set({
          status: next,
          updated_at: now,
          ...(action === 'start' ? { cursor: JSON.stringify(INITIAL_CURSOR) } : {}),
          ...(next === 'running' && current.started_at === null ? { started_at: now } : {}),
          ...(next === 'cancelled' ? { completed_at: now } : {}),
        })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .where('status', 'in', ALLOWED[action])
        .executeTakeFirst(),
    );
    if (Number(updated.numUpdatedRows) !== 1) {
      throw notAllowed(action, (await this.row(tenantId, id)).status);
    }
    if (next === 'cancelled') await this.runner.failQueued(id);
    if (next === 'running') this.runner.notify();
    return this.get(tenantId, id);
  }

  /** Renders the template for one contact and estimates the campaign's size in segments. */
  async preview(tenantId: string, id: string, contactId: string | undefined): Promise<CampaignPreview> {
    const campaign = await this.row(tenantId, id);
    const listIds = JSON.parse(campaign.list_ids) as string[];
    let contactRowId: string | null = null;
    let contact: TemplateContact = SAMPLE;
    const pickId = contactId ?? (await memberPage(this.store.db, listIds, '', null, 1)).ids[0];
    if (pickId !== undefined) {
      const [c] = await loadRecipients(this.store.db, tenantId, [pickId]);
      if (!c && contactId !== undefined)
        throw new RelaisError('not_found', `no contact ${contactId}`, 'contact_id');
      if (c) {
        contactRowId = c.id;
        contact = {
          phone: c.phone,
          first_name: c.first_name,
          last_name: c.last_name,
          attributes: parseAttributes(c.attributes),
        };
      }
    }
    const tenant = await this.store.db
      .selectFrom('tenants')
      .select('optout_mention')
      .where('id', '=', tenantId)
      .executeTakeFirstOrThrow();
    const text = withOptoutMention(
      renderTemplate(parseTemplate(campaign.template), contact),
      tenant.optout_mention,
    );
    const analysis = analyzeText(text);
    const members = await this.store.db
      .selectFrom('lists')
      .select((eb) => eb.fn.sum<number>('member_count').as('n'))
      .where('tenant_id', '=', tenantId)
      .where('id', 'in', listIds)
      .executeTakeFirst();
    const recipients = Number(members?.n ?? 0);
    return {
      contact: { id: contactRowId, phone: contact.phone, sample: contactRowId === null },
      text,
      encoding: analysis.encoding,
      segments: analysis.segments,
      characters: [...text].length,
      recipients_estimate: recipients,
      estimated_total_segments: recipients * analysis.segments,
    };
  }
}

function notAllowed(action: CampaignAction, status: CampaignStatus): RelaisError {
  return new RelaisError(
    'campaign_transition_not_allowed',
    `cannot ${action} a ${status} campaign (${action} applies to: ${ALLOWED[action].join(', ')})`,
  );
}
