import { encodeCursor } from '../shared/cursor.js';
import { RelaisError } from '../shared/errors.js';
import { idFloor, newId } from '../shared/ids.js';
import type { InboundMessageTable } from '../store/schema.js';
import type { Db } from '../store/store.js';

const INBOUND_ID = /^mo_[0-9A-HJKMNP-TV-Z]{26}$/;

/** `mo_<ULID>`: time-ordered like every other id, from the same monotonic source. */
export function newInboundId(now: number): string {
  return `mo_${newId('msg', now).slice(4)}`;
}

/** The smallest inbound id at a time: `id >= inboundIdFloor(t)` selects those received at or after t. */
export function inboundIdFloor(timeMs: number): string {
  return `mo_${idFloor('msg', timeMs).slice(4)}`;
}

export interface InboundView {
  id: string;
  from: string;
  to: string;
  text: string;
  keyword: string | null;
  campaign_id: string | null;
  /** The tenant's last message to this phone, which the MO answers. */
  message_id: string | null;
  received_at: string;
}

export function inboundView(row: InboundMessageTable): InboundView {
  return {
    id: row.id,
    from: row.from_number,
    to: row.to_number,
    text: row.text,
    keyword: row.keyword,
    campaign_id: row.campaign_id,
    message_id: row.message_id,
    received_at: new Date(row.received_at).toISOString(),
  };
}

/** The tenant's inbound messages, newest first, on the (tenant_id, id) index. */
export async function listInbound(
  db: Db,
  tenantId: string,
  query: { cursor?: string | undefined; limit: number },
): Promise<{ data: InboundView[]; next_cursor: string | null }> {
  let q = db.selectFrom('inbound_messages').selectAll().where('tenant_id', '=', tenantId);
  if (query.cursor !== undefined) q = q.where('id', '<', decodeInboundCursor(query.cursor));
  const rows = await q
    .orderBy('id', 'desc')
    .limit(query.limit + 1)
    .execute();
  const page = rows.slice(0, query.limit);
  const more = rows.length > query.limit;
  return { data: page.map(inboundView), next_cursor: more ? encodeCursor(page.at(-1)!.id) : null };
}

export async function getInbound(db: Db, tenantId: string, id: string): Promise<InboundView | null> {
  if (!INBOUND_ID.test(id)) return null;
  const row = await db
    .selectFrom('inbound_messages')
    .selectAll()
    .where('id', '=', id)
    .where('tenant_id', '=', tenantId)
    .executeTakeFirst();
  return row ? inboundView(row) : null;
}

function decodeInboundCursor(cursor: string): string {
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!INBOUND_ID.test(id))
    throw new RelaisError('invalid_cursor', 'the cursor is not one this API gave', 'cursor');
  return id;
}
