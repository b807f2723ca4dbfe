import { randomBytes } from 'node:crypto';
import type { ContactTable, ListMemberTable } from '../store/schema.js';
import type { Store } from '../store/store.js';

/**
 * Fills a list with contacts straight into the database (tests and the campaign benchmark): multi-row
 * inserts of 500, committed every `perTransaction` rows, so a million contacts take seconds and
 * nothing depends on the audiences API.
 */
export interface SeedOptions {
  tenantId: string;
  count: number;
  /** An existing list to add to; a new one is created otherwise. */
  listId?: string;
  /** The i-th contact's number (default: distinct French mobiles +33612000000 + i). */
  phone?: (i: number) => string;
  timezone?: (i: number) => string | null;
  firstName?: (i: number) => string | null;
  attributes?: (i: number) => Record<string, unknown>;
  /** Contact ids are `${idPrefix}${i padded}`: sortable in seeding order. */
  idPrefix?: string;
  perTransaction?: number;
}

export const seedPhone = (i: number) => `+336${String(12_000_000 + i).padStart(8, '0')}`;

export function seedContactId(prefix: string, i: number): string {
  return `${prefix}${String(i).padStart(9, '0')}`;
}

export async function seedList(
  store: Store,
  options: SeedOptions,
): Promise<{ listId: string; idPrefix: string }> {
  const now = Date.now();
  const idPrefix = options.idPrefix ?? `con_${randomBytes(4).toString('hex').toUpperCase()}`;
  const listId = options.listId ?? `lst_${randomBytes(8).toString('hex').toUpperCase()}`;
  if (!options.listId) {
    await store.write((trx) =>
      trx
        .insertInto('lists')
        .values({
          id: listId,
          tenant_id: options.tenantId,
          name: `seed ${listId}`,
          description: null,
          member_count: 0,
          created_at: now,
          updated_at: now,
        })
        .execute(),
    );
  }
  const perTransaction = options.perTransaction ?? 20_000;
  for (let from = 0; from < options.count; from += perTransaction) {
    const to = Math.min(options.count, from + perTransaction);
    await store.write(async (trx) => {
      for (let i = from; i < to; i += 500) {
        const contacts: ContactTable[] = [];
        const members: ListMemberTable[] = [];
        for (let j = i; j < Math.min(to, i + 500); j++) {
          const id = seedContactId(idPrefix, j);
          contacts.push({
            id,
            tenant_id: options.tenantId,
            phone: (options.phone ?? seedPhone)(j),
            country: null,
            first_name: options.firstName ? options.firstName(j) : `Name${j}`,
            last_name: null,
            attributes: JSON.stringify(options.attributes ? options.attributes(j) : {}),
            timezone: options.timezone ? options.timezone(j) : null,
            created_at: now,
            updated_at: now,
          });
          members.push({ list_id: listId, contact_id: id, added_at: now });
        }
        await trx.insertInto('contacts').values(contacts).execute();
        await trx.insertInto('list_members').values(members).execute();
      }
      await trx
        .updateTable('lists')
        .set((eb) => ({ member_count: eb('member_count', '+', to - from) }))
        .where('id', '=', listId)
        .execute();
    });
  }
  return { listId, idPrefix };
}

/** Adds existing contacts to another list (overlapping lists in tests). */
export async function addMembers(store: Store, listId: string, contactIds: string[]): Promise<void> {
  const now = Date.now();
  await store.write(async (trx) => {
    for (let i = 0; i < contactIds.length; i += 500) {
      await trx
        .insertInto('list_members')
        .values(
          contactIds.slice(i, i + 500).map((id) => ({ list_id: listId, contact_id: id, added_at: now })),
        )
        .execute();
    }
    await trx
      .updateTable('lists')
      .set((eb) => ({ member_count: eb('member_count', '+', contactIds.length) }))
      .where('id', '=', listId)
      .execute();
  });
}
