import { type RawBuilder, type SqlBool, sql } from 'kysely';
import { decodeCursor, encodeCursor } from '../shared/cursor.js';
import { idFloor } from '../shared/ids.js';
import type { DialectName } from '../store/migrations/index.js';
import { EXCEPTION_STATUSES, type Lane, type MessageStatus, type MessageTable } from '../store/schema.js';
import type { Db, Store } from '../store/store.js';

export interface MessageView {
  id: string;
  status: MessageStatus;
  to: string;
  country: string | null;
  from: string;
  text: string;
  lane: Lane;
  encoding: 'GSM-7' | 'UCS-2';
  segments: number;
  client_ref: string | null;
  callback_url: string | null;
  connector: string | null;
  error_code: string | null;
  error_reason: string | null;
  send_at: string | null;
  expires_at: string;
  created_at: string;
  updated_at: string;
  /** Set once retention blanked `text` (retention.redact_bodies_after_days). */
  redacted_at: string | null;
}

export interface MessageDetail extends MessageView {
  history: { status: MessageStatus; at: string; error_code: string | null; detail: string | null }[];
  parts: {
    part_no: number;
    connector: string | null;
    carrier_id: string | null;
    status: MessageStatus;
    error_code: string | null;
  }[];
}

export interface ListFilters {
  status?: MessageStatus | undefined;
  to?: string | undefined;
  lane?: Lane | undefined;
  client_ref?: string | undefined;
  /** Inclusive lower and exclusive upper bounds on created_at, epoch ms. */
  from?: number | undefined;
  until?: number | undefined;
  cursor?: string | undefined;
  limit: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

export function toView(m: MessageTable): MessageView {
  return {
    id: m.id,
    status: m.status,
    to: m.to_number,
    country: m.country,
    from: m.sender,
    text: m.body,
    lane: m.lane,
    encoding: m.encoding,
    segments: m.segments,
    client_ref: m.client_ref,
    callback_url: m.callback_url,
    connector: m.connector,
    error_code: m.error_code,
    error_reason: m.error_reason,
    send_at: m.send_at === null ? null : iso(m.send_at),
    expires_at: iso(m.expires_at),
    created_at: iso(m.created_at),
    updated_at: iso(m.updated_at),
    redacted_at: m.redacted_at == null ? null : iso(m.redacted_at),
  };
}

/** A tenant's message with its history and parts; another tenant's id is simply not found. */
export async function getMessage(db: Db, tenantId: string, id: string): Promise<MessageDetail | undefined> {
  const row = await db
    .selectFrom('messages')
    .selectAll()
    .where('id', '=', id)
    .where('tenant_id', '=', tenantId)
    .executeTakeFirst();
  if (!row) return undefined;
  const [history, parts] = await Promise.all([
    db
      .selectFrom('message_events')
      .select(['status', 'at', 'error_code', 'detail'])
      .where('message_id', '=', id)
      .orderBy('id')
      .execute(),
    db
      .selectFrom('message_parts')
      .select(['part_no', 'connector', 'carrier_id', 'status', 'error_code'])
      .where('message_id', '=', id)
      .orderBy('part_no')
      .execute(),
  ]);
  return {
    ...toView(row),
    // The first status is the row's creation (see messages/writer.ts), the rest are recorded changes.
    history: [
      {
        status: row.send_at === null ? 'accepted' : 'scheduled',
        at: iso(row.created_at),
        error_code: null,
        detail: null,
      },
      ...history.map((h) => ({ ...h, at: iso(h.at) })),
    ],
    parts,
  };
}

/**
 * Newest first, keyset-paged on the time-ordered id: page N costs the same as page 1 whatever the
 * history size. The cursor is the last id of the previous page.
 *
 * Filtered by number on SQLite, the walk is that of `messages_to`, which indexes the number alone
 * (migration 012): newest first is then the order of insertion (rowid), and the cursor's row marks
 * where the next page starts. `numberWalk` says how.
 */
export async function listMessages(
  store: Pick<Store, 'db' | 'dialect'>,
  tenantId: string,
  filters: ListFilters,
): Promise<{ data: MessageView[]; next_cursor: string | null }> {
  const rows = await listQuery(store, tenantId, filters).execute();
  const page = rows.slice(0, filters.limit);
  const more = rows.length > filters.limit;
  return { data: page.map(toView), next_cursor: more ? encodeCursor(page.at(-1)!.id) : null };
}

/** The statement of listMessages: a page and one row more (which says whether there is a next page). */
export function listQuery(store: Pick<Store, 'db' | 'dialect'>, tenantId: string, filters: ListFilters) {
  const walk = filters.to === undefined ? null : numberWalk(store.dialect);
  const tenantCol = walk?.unindexed('tenant_id') ?? 'tenant_id';
  const idCol = walk?.unindexed('id') ?? 'id';
  let query = store.db.selectFrom('messages').selectAll().where(tenantCol, '=', tenantId);
  if (filters.status) {
    query = query.where('status', '=', filters.status);
    // A rare status has an index of its own on PostgreSQL (migration 011); the others are common,
    // and the newest-first walk of (tenant_id, id) finds a page of them quickly.
    if (EXCEPTION_STATUSES.has(filters.status)) query = query.where('exception_status', '=', filters.status);
  }
  if (filters.to) query = query.where('to_number', '=', filters.to);
  if (filters.lane) query = query.where('lane', '=', filters.lane);
  if (filters.client_ref) query = query.where('client_ref', '=', filters.client_ref);
  // Ids are time-ordered, so a time range is an id range and stays on the (tenant_id, id) index
  // (with a number on SQLite, a filter on the number's walk).
  if (filters.from !== undefined) query = query.where(idCol, '>=', idFloor('msg', filters.from));
  if (filters.until !== undefined) query = query.where(idCol, '<', idFloor('msg', filters.until));
  if (filters.cursor) {
    const after = decodeCursor(filters.cursor, 'msg');
    query = walk ? query.where(walk.before(after)) : query.where('id', '<', after);
  }
  return query.orderBy(walk?.newestFirst ?? 'id', 'desc').limit(filters.limit + 1);
}

/**
 * How a query walks the messages sent to one number, newest first; null where it needs nothing
 * special (PostgreSQL indexes (tenant_id, to_number, id), so ordering by id is already the walk).
 *
 * SQLite indexes the number alone (`messages_to`, migration 012), and an index entry ends with the
 * rowid: one number's entries are in the order the messages were inserted. Ordering by rowid reads
 * only the rows a page returns, however many messages the number has had; ordering by id would
 * read and sort them all. A unary `+` keeps the planner from walking the tenant's whole history
 * through (tenant_id, …) indexes instead.
 */
export function numberWalk(dialect: DialectName): {
  unindexed(column: 'tenant_id' | 'id'): RawBuilder<string>;
  newestFirst: RawBuilder<number>;
  /** Rows inserted before the message `id` (none when it no longer exists). */
  before(id: string): RawBuilder<SqlBool>;
} | null {
  if (dialect !== 'sqlite') return null;
  return {
    unindexed: (column) => sql<string>`+${sql.ref(column)}`,
    newestFirst: sql<number>`rowid`,
    before: (id) => sql<SqlBool>`rowid < (select rowid from messages where id = ${id})`,
  };
}
