import { type Kysely, sql } from 'kysely';
import type { DialectName } from './index.js';

// Written out rather than imported: a released migration must not change with the code it started.
const EXCEPTION_STATUSES = ['scheduled', 'undelivered', 'expired', 'rejected', 'failed'];
const FILLFACTOR = 50;

/**
 * PostgreSQL: a message's status changes (submitted, then delivered) become heap-only updates.
 *
 * An update is heap-only — one new row version on the same page, no new index entries — only when
 * no indexed column changes value (columns in a partial index's WHERE count too) and the page has
 * room. `messages_tenant_status` held the status, so each of those two updates wrote a new entry in
 * every index of the table (profiled: the costliest statement of the carrier path, 530 MB of
 * write-ahead log per 200,000 messages). Here:
 * - the status index goes. The message list's status filter keeps an index for the statuses worth
 *   one because they are rare — scheduled, undelivered, expired, rejected, failed — through
 *   `exception_status`, which holds the status only then, so the hot path never changes it;
 * - the partitions of `messages` leave room in each page for new row versions (fillfactor); new
 *   partitions get it when they are created (src/retention/partitions.ts). So do those of
 *   `message_parts`, whose receipt update changes no indexed column but found its page full.
 * Measured: docs/architecture.md, "What limits the carrier path on PostgreSQL".
 *
 * SQLite updates rows in place and keeps `messages_tenant_status` (dropping it changed nothing
 * there); it gets the column so that both dialects write and read the same rows.
 */
export async function up(db: Kysely<unknown>, dialect: DialectName): Promise<void> {
  await db.schema.alterTable('messages').addColumn('exception_status', 'text').execute();
  await sql`update messages set exception_status = status
    where status in (${sql.join(EXCEPTION_STATUSES)})`.execute(db);
  if (dialect !== 'postgres') return;
  await sql`drop index if exists messages_tenant_status`.execute(db);
  await sql`create index messages_tenant_exception on messages (tenant_id, exception_status, id)
    where exception_status is not null`.execute(db);
  const { rows } = await sql<{ name: string }>`
    select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent in ('messages'::regclass, 'message_parts'::regclass)`.execute(db);
  // Pages written from now on get the room; existing full pages keep none until rewritten.
  for (const { name } of rows)
    await sql`alter table ${sql.table(name)} set (fillfactor = ${sql.lit(FILLFACTOR)})`.execute(db);
}
