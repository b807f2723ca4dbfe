import { normaliseDestination } from '../messages/phone.js';
import type { Clock } from '../shared/clock.js';
import { RelaisError } from '../shared/errors.js';
import type { OptoutTable } from '../store/schema.js';
import type { Store, Trx } from '../store/store.js';
import { writeTenantEvents } from './tenant-events.js';

export interface OptoutView {
  phone: string;
  /** api | keyword | import | … */
  source: string;
  detail: string | null;
  created_at: string;
}

export interface OptoutListQuery {
  phone?: string | undefined;
  cursor?: string | undefined;
  limit: number;
}

const E164 = /^\+[1-9]\d{5,14}$/;

export function optoutView(row: Pick<OptoutTable, 'phone' | 'source' | 'detail' | 'created_at'>): OptoutView {
  return {
    phone: row.phone,
    source: row.source,
    detail: row.detail,
    created_at: new Date(row.created_at).toISOString(),
  };
}

/**
 * Adds `phone` to the tenant's opt-out list in the caller's transaction, with its `optout.created`
 * event. Idempotent: an existing entry is kept as it is (its first source and date) and `created` is
 * false — so a STOP delivered twice by a carrier has one effect only.
 */
export async function addOptout(
  trx: Trx,
  entry: { tenantId: string; phone: string; source: string; detail: string | null },
  now: number,
): Promise<{ created: boolean; row: OptoutTable }> {
  const inserted = await trx
    .insertInto('optouts')
    .values({
      tenant_id: entry.tenantId,
      phone: entry.phone,
      source: entry.source,
      detail: entry.detail,
      created_at: now,
    })
    .onConflict((oc) => oc.columns(['tenant_id', 'phone']).doNothing())
    .returningAll()
    .executeTakeFirst();
  if (inserted) {
    await writeTenantEvents(
      trx,
      entry.tenantId,
      [{ type: 'optout.created', data: optoutView(inserted) }],
      now,
    );
    return { created: true, row: inserted };
  }
  const existing = await trx
    .selectFrom('optouts')
    .selectAll()
    .where('tenant_id', '=', entry.tenantId)
    .where('phone', '=', entry.phone)
    .executeTakeFirstOrThrow();
  return { created: false, row: existing };
}

/** Removes `phone` from the list with its `optout.deleted` event; false when it was not there. */
export async function removeOptout(
  trx: Trx,
  entry: { tenantId: string; phone: string; source: string },
  now: number,
): Promise<boolean> {
  const removed = await trx
    .deleteFrom('optouts')
    .where('tenant_id', '=', entry.tenantId)
    .where('phone', '=', entry.phone)
    .returningAll()
    .executeTakeFirst();
  if (!removed) return false;
  await writeTenantEvents(
    trx,
    entry.tenantId,
    [
      {
        type: 'optout.deleted',
        data: { ...optoutView(removed), deleted_by: entry.source, deleted_at: new Date(now).toISOString() },
      },
    ],
    now,
  );
  return true;
}

/**
 * A phone number read from a URL (path or query): E.164, where a bare `+` may have arrived as a
 * space (an unencoded `+` in a query string) — then the digits are read as international.
 */
export function phoneFromUrl(raw: string, field: string): string {
  const value = raw.trim();
  const international = /^\d+$/.test(value) && raw.startsWith(' ') ? `+${value}` : value;
  if (E164.test(international)) return international;
  return normaliseDestination(international, undefined, field).e164;
}

/** The tenant-facing opt-out list (API): list, add, remove, each change with its webhook event. */
export class OptoutService {
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /** Called after webhook events are committed, so the sender delivers them at once. */
  onWebhookEvents(listener: () => void): void {
    this.listeners.add(listener);
  }

  /** In phone order (the table's key), from the cursor on. */
  async list(
    tenantId: string,
    query: OptoutListQuery,
  ): Promise<{ data: OptoutView[]; next_cursor: string | null }> {
    let q = this.store.db
      .selectFrom('optouts')
      .select(['phone', 'source', 'detail', 'created_at'])
      .where('tenant_id', '=', tenantId);
    if (query.phone !== undefined) q = q.where('phone', '=', phoneFromUrl(query.phone, 'phone'));
    if (query.cursor !== undefined) q = q.where('phone', '>', decodePhoneCursor(query.cursor));
    const rows = await q
      .orderBy('phone')
      .limit(query.limit + 1)
      .execute();
    const page = rows.slice(0, query.limit);
    const more = rows.length > query.limit;
    return {
      data: page.map(optoutView),
      next_cursor: more ? Buffer.from(page.at(-1)!.phone, 'utf8').toString('base64url') : null,
    };
  }

  async add(
    tenantId: string,
    input: { phone: string; country?: string | undefined },
  ): Promise<{ created: boolean; optout: OptoutView }> {
    const phone = normaliseDestination(input.phone, input.country, 'phone').e164;
    const now = this.clock.now();
    const result = await this.store.write((trx) =>
      addOptout(trx, { tenantId, phone, source: 'api', detail: null }, now),
    );
    if (result.created) this.notify();
    return { created: result.created, optout: optoutView(result.row) };
  }

  /** Throws not_found when the number is not on the list. */
  async remove(tenantId: string, rawPhone: string): Promise<void> {
    const phone = phoneFromUrl(rawPhone, 'phone');
    const now = this.clock.now();
    const removed = await this.store.write((trx) =>
      removeOptout(trx, { tenantId, phone, source: 'api' }, now),
    );
    if (!removed) throw new RelaisError('not_found', `${phone} is not on the opt-out list`, 'phone');
    this.notify();
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }
}

function decodePhoneCursor(cursor: string): string {
  const phone = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!E164.test(phone))
    throw new RelaisError('invalid_cursor', 'the cursor is not one this API gave', 'cursor');
  return phone;
}
