import { type Kysely, sql } from 'kysely';
import type { DialectName } from './index.js';

/**
 * PostgreSQL: room in every queue page for a second version of each row. A claim, a lease renewal
 * and a retry change only columns no index holds, so with room on the page the new version is a
 * heap-only tuple: no entry in the queue's four indexes. Full pages made each claimed row cost four
 * index insertions (profiled: the claim was the costliest statement of the carrier path). Pages
 * written from now on get the room; the queue is transient, so that is soon all of them.
 * SQLite updates rows in place: nothing to do.
 */
export async function up(db: Kysely<unknown>, dialect: DialectName): Promise<void> {
  if (dialect !== 'postgres') return;
  await sql`alter table queue set (fillfactor = 50)`.execute(db);
}
