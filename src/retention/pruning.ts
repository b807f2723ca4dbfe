import { type RawBuilder, sql } from 'kysely';
import type { Store } from '../store/store.js';
import { idBound, type RootTable } from './history-tables.js';

/**
 * Row-by-row removal, in chunks: every removal on SQLite; on PostgreSQL only what partition drops
 * cannot do (tenants with a shorter retention than the longest one, rows in the legacy and default
 * partitions). One chunk = one short write transaction; callers pause between chunks.
 */

/** Whose rows a chunk may take: every tenant, one tenant, or the rows without a tenant (inbound). */
export type TenantScope = { all: true } | { tenantId: string | null };

/** Rows that must stay whatever their age: the message is still queued, or an event is still to send. */
const KEEP: Record<RootTable['name'], RawBuilder<unknown>> = {
  messages: sql`not exists (select 1 from queue q where q.message_id = messages.id)
    and not exists (select 1 from webhook_events w where w.message_id = messages.id and w.status = 'pending')`,
  webhook_events: sql`webhook_events.status <> 'pending'`,
  webhook_deliveries: sql`1 = 1`,
  inbound_messages: sql`1 = 1`,
};

function tenantCondition(scope: TenantScope): RawBuilder<unknown> {
  if ('all' in scope) return sql`1 = 1`;
  return scope.tenantId === null ? sql`tenant_id is null` : sql`tenant_id = ${scope.tenantId}`;
}

/**
 * Deletes the oldest `limit` rows of `root` created before `beforeMs` (with their children), within
 * `scope`. Only ids of the table's own prefix are touched. Returns how many root rows went.
 */
export async function pruneChunk(
  store: Store,
  root: RootTable,
  beforeMs: number,
  scope: TenantScope,
  limit: number,
): Promise<number> {
  const table = sql.table(root.name);
  return store.write(async (trx) => {
    const { rows } = await sql<{ id: string }>`
      select id from ${table}
      where id >= ${idBound(root.prefix, 0)} and id < ${idBound(root.prefix, beforeMs)}
        and ${tenantCondition(scope)} and ${KEEP[root.name]}
      order by id limit ${limit}`.execute(trx);
    if (rows.length === 0) return 0;
    const ids = sql.join(rows.map((r) => r.id));
    for (const child of root.children) {
      await sql`delete from ${sql.table(child.name)} where ${sql.ref(child.key)} in (${ids})`.execute(trx);
    }
    await sql`delete from ${table} where id in (${ids})`.execute(trx);
    return rows.length;
  });
}

/** Where body redaction has got to in one table: ids up to `after` have been looked at. */
export interface RedactionCursor {
  after: string;
}

const TEXT_COLUMN = { messages: 'body', inbound_messages: 'text' } as const;

/**
 * Blanks the text of up to `limit` rows created before `beforeMs`, after the cursor, and stamps
 * `redacted_at`. The scan walks ids in order (an index range, whatever was already redacted) and moves
 * the cursor, so a pass costs the same at any history size. Queued messages keep their text.
 * Returns the rows looked at (0: caught up) and the rows redacted.
 */
export async function redactChunk(
  store: Store,
  table: 'messages' | 'inbound_messages',
  prefix: string,
  cursor: RedactionCursor,
  beforeMs: number,
  now: number,
  limit: number,
): Promise<{ scanned: number; redacted: number }> {
  const t = sql.table(table);
  const floor = idBound(prefix, 0);
  if (cursor.after < floor) cursor.after = floor; // only ids of this prefix
  const { rows } = await sql<{ id: string }>`
    select id from ${t} where id > ${cursor.after} and id < ${idBound(prefix, beforeMs)}
    order by id limit ${limit}`.execute(store.db);
  if (rows.length === 0) return { scanned: 0, redacted: 0 };
  const ids = sql.join(rows.map((r) => r.id));
  const keep = table === 'messages' ? sql`and ${KEEP.messages}` : sql``;
  const wipeSealed = table === 'messages' ? sql`, sealed_body = null` : sql``;
  const result = await store.write((trx) =>
    sql`update ${t} set ${sql.ref(TEXT_COLUMN[table])} = '', redacted_at = ${now} ${wipeSealed}
      where id in (${ids}) and redacted_at is null ${keep}`.execute(trx),
  );
  cursor.after = rows.at(-1)!.id;
  return { scanned: rows.length, redacted: Number(result.numAffectedRows ?? 0) };
}

/** Deletes the oldest hour of rollups older than `beforeMs` (one hour: a few hundred rows at most). */
export async function pruneRollupHour(store: Store, beforeMs: number): Promise<number> {
  const oldest = await store.db
    .selectFrom('stats_hourly')
    .select('hour')
    .where('hour', '<', beforeMs)
    .orderBy('hour')
    .limit(1)
    .executeTakeFirst();
  if (!oldest) return 0;
  const result = await store.write((trx) =>
    trx.deleteFrom('stats_hourly').where('hour', '=', oldest.hour).executeTakeFirst(),
  );
  return Number(result.numDeletedRows);
}
