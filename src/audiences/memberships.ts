import { sql } from 'kysely';
import type { Trx } from '../store/store.js';

/**
 * Every membership change goes through here, in the caller's write transaction, so that
 * `lists.member_count` always equals the rows of `list_members` (reads never COUNT(*)).
 */

/** Adds contacts to a list (already-members are left alone); returns how many were added. */
export async function addMembers(
  trx: Trx,
  listId: string,
  contactIds: string[],
  now: number,
): Promise<number> {
  if (contactIds.length === 0) return 0;
  let added = 0;
  // 500 rows × 3 parameters stays far below both databases' parameter limits.
  for (let i = 0; i < contactIds.length; i += 500) {
    const rows = await trx
      .insertInto('list_members')
      .values(
        contactIds.slice(i, i + 500).map((contact_id) => ({ list_id: listId, contact_id, added_at: now })),
      )
      .onConflict((oc) => oc.columns(['list_id', 'contact_id']).doNothing())
      .returning('contact_id')
      .execute();
    added += rows.length;
  }
  if (added > 0) await bumpCount(trx, listId, added, now);
  return added;
}

/** Removes one membership; returns whether it existed. */
export async function removeMember(
  trx: Trx,
  listId: string,
  contactId: string,
  now: number,
): Promise<boolean> {
  const result = await trx
    .deleteFrom('list_members')
    .where('list_id', '=', listId)
    .where('contact_id', '=', contactId)
    .executeTakeFirst();
  const removed = Number(result.numDeletedRows) > 0;
  if (removed) await bumpCount(trx, listId, -1, now);
  return removed;
}

/** Takes a contact out of every list it is in (before the contact is deleted). */
export async function removeFromAllLists(trx: Trx, contactId: string, now: number): Promise<void> {
  await trx
    .updateTable('lists')
    .set({ member_count: sql`member_count - 1`, updated_at: now })
    .where('id', 'in', (eb) =>
      eb.selectFrom('list_members').select('list_id').where('contact_id', '=', contactId),
    )
    .execute();
  await trx.deleteFrom('list_members').where('contact_id', '=', contactId).execute();
}

/**
 * Deletes up to `limit` memberships of a list and lowers its count to match: a list of a million
 * members is emptied in many short transactions rather than one that holds the writer for seconds.
 */
export async function removeSomeMembers(
  trx: Trx,
  listId: string,
  limit: number,
  now: number,
): Promise<number> {
  const batch = await trx
    .selectFrom('list_members')
    .select('contact_id')
    .where('list_id', '=', listId)
    .orderBy('contact_id')
    .limit(limit)
    .execute();
  if (batch.length === 0) return 0;
  const last = batch.at(-1)!.contact_id;
  const result = await trx
    .deleteFrom('list_members')
    .where('list_id', '=', listId)
    .where('contact_id', '<=', last)
    .executeTakeFirst();
  const removed = Number(result.numDeletedRows);
  await bumpCount(trx, listId, -removed, now);
  return removed;
}

export async function bumpCount(trx: Trx, listId: string, delta: number, now: number): Promise<void> {
  await trx
    .updateTable('lists')
    .set({ member_count: sql`member_count + ${delta}`, updated_at: now })
    .where('id', '=', listId)
    .execute();
}
