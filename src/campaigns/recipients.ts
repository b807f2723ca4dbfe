import { sql } from 'kysely';
import type { ContactTable } from '../store/schema.js';
import type { Db } from '../store/store.js';

export interface MemberPage {
  /** Distinct contact ids in order, each once even when it is in several lists. */
  ids: string[];
  /** The keyset position after this page: every member id ≤ next has been returned. */
  next: string;
  /** No member is left after `next` (up to `upTo`). */
  exhausted: boolean;
}

/**
 * One bounded page of the union of several lists, in contact id order. Each list is read with its
 * own keyset scan on list_members' primary key (list_id, contact_id), LIMITed, all in one UNION ALL
 * statement; the merge keeps only ids up to the smallest last id among the lists that filled their
 * page, so no list can have an unread member below the new position. Work per page: at most
 * `limit` index entries per list, whatever the lists' sizes.
 */
export async function memberPage(
  db: Db,
  listIds: readonly string[],
  after: string,
  upTo: string | null,
  limit: number,
): Promise<MemberPage> {
  const scans = listIds.map(
    (listId, i) => sql`select list_id, contact_id from (
        select list_id, contact_id from list_members
        where list_id = ${listId} and contact_id > ${after}
        ${upTo === null ? sql`` : sql`and contact_id <= ${upTo}`}
        order by contact_id limit ${limit}) as ${sql.raw(`l${i}`)}`,
  );
  const rows = (
    await sql<{ list_id: string; contact_id: string }>`${sql.join(scans, sql` union all `)}`.execute(db)
  ).rows;
  const perList = new Map<string, string[]>();
  for (const r of rows) {
    const ids = perList.get(r.list_id) ?? [];
    ids.push(r.contact_id);
    perList.set(r.list_id, ids);
  }
  let bound: string | null = null;
  for (const ids of perList.values()) {
    if (ids.length < limit) continue;
    const last = [...ids].sort().at(-1)!;
    if (bound === null || last < bound) bound = last;
  }
  const unique = [...new Set(rows.map((r) => r.contact_id))]
    .filter((id) => bound === null || id <= bound)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (bound !== null) return { ids: unique, next: bound, exhausted: false };
  return { ids: unique, next: upTo ?? unique.at(-1) ?? after, exhausted: true };
}

export type RecipientRow = Pick<
  ContactTable,
  'id' | 'phone' | 'country' | 'first_name' | 'last_name' | 'attributes' | 'timezone'
>;

/** The tenant's contacts among `ids` (a member whose contact was deleted is simply absent), in id order. */
export async function loadRecipients(db: Db, tenantId: string, ids: string[]): Promise<RecipientRow[]> {
  if (ids.length === 0) return [];
  const out: RecipientRow[] = [];
  for (let i = 0; i < ids.length; i += 500) {
    out.push(
      ...(await db
        .selectFrom('contacts')
        .select(['id', 'phone', 'country', 'first_name', 'last_name', 'attributes', 'timezone'])
        .where('tenant_id', '=', tenantId)
        .where('id', 'in', ids.slice(i, i + 500))
        .execute()),
    );
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
