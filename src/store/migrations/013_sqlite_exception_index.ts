import { type Kysely, sql } from 'kysely';
import type { DialectName } from './index.js';

/**
 * SQLite: the message list's status filter gets the index PostgreSQL has had since migration 011,
 * (tenant_id, exception_status, id) over the rare statuses only, in place of (tenant_id, status, id).
 *
 * Every message changes status twice on the carrier path (submitted, then delivered), and each
 * change moved its entry in `messages_tenant_status`: a delete and an insert in that index, whose
 * pages each commit then copied into the write-ahead log. `exception_status` does not change on that
 * path. Measured: docs/architecture.md, "Kept on 2026-11-27 (afternoon)".
 *
 * The filter on a common status (accepted, submitted, delivered) walks the tenant's messages newest
 * first, as it does on PostgreSQL.
 */
export async function up(db: Kysely<unknown>, dialect: DialectName): Promise<void> {
  if (dialect !== 'sqlite') return;
  await sql`create index if not exists messages_tenant_exception on messages (tenant_id, exception_status, id)
    where exception_status is not null`.execute(db);
  await sql`drop index if exists messages_tenant_status`.execute(db);
}
