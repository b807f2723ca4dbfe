import { type Kysely, sql } from 'kysely';
import type { DialectName } from './index.js';

/**
 * SQLite: the messages sent to a number are found through an index on the number alone, in place
 * of (tenant_id, to_number, id).
 *
 * Numbers arrive in random order, so every new message puts its index entry on a page of its own,
 * and each commit copies every page it touched into the write-ahead log. An entry of
 * (tenant_id, to_number, id) is about 75 bytes; one of (to_number) with SQLite's implicit rowid
 * about 20. The smaller index has a quarter of the pages, so a commit touches and copies far fewer of them.
 * Measured: docs/architecture.md, "What limits the carrier path on SQLite".
 *
 * Entries of one number are in rowid order, the order the messages were inserted: queries that
 * want the newest messages to a number order by rowid there (src/messages/queries.ts) and still read
 * only the rows they return. The tenant is checked on each row (a number is rarely shared).
 *
 * PostgreSQL keeps (tenant_id, to_number, id): its carrier path is not limited by that index.
 */
export async function up(db: Kysely<unknown>, dialect: DialectName): Promise<void> {
  if (dialect !== 'sqlite') return;
  await sql`create index if not exists messages_to on messages (to_number)`.execute(db);
  await sql`drop index if exists messages_tenant_to`.execute(db);
}
