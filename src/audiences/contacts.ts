import type { Clock } from '../shared/clock.js';
import { decodeCursor } from '../shared/cursor.js';
import { RelaisError } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import type { Store, Trx } from '../store/store.js';
import {
  type Attributes,
  type ContactView,
  checkAttributes,
  contactNumber,
  mergeAttributes,
  optionalText,
  resolveTimezone,
  toContactView,
} from './contact-fields.js';
import { addMembers, removeFromAllLists } from './memberships.js';
import { type PageRequest, toPage } from './paging.js';

export interface ContactInput {
  phone: string;
  country?: string | undefined;
  first_name?: string | null | undefined;
  last_name?: string | null | undefined;
  attributes?: Record<string, string | number | boolean | null> | undefined;
  timezone?: string | null | undefined;
  list_ids?: string[] | undefined;
}

export type ContactPatch = Partial<Omit<ContactInput, 'list_ids'>>;

export interface ContactFilters extends PageRequest {
  list_id?: string | undefined;
  phone?: string | undefined;
  country?: string | undefined;
}

/** A tenant's address book (docs/contacts.md). Another tenant's ids are simply not found. */
export class ContactService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async create(tenantId: string, input: ContactInput): Promise<ContactView> {
    const number = contactNumber(input.phone, input.country);
    const attributes = mergeAttributes({}, checkAttributes(input.attributes ?? {}));
    const now = this.clock.now();
    const row = {
      id: newId('ct', now),
      tenant_id: tenantId,
      phone: number.e164,
      country: number.country,
      first_name: optionalText(input.first_name, 'first_name'),
      last_name: optionalText(input.last_name, 'last_name'),
      attributes: JSON.stringify(attributes),
      timezone: resolveTimezone(input.timezone, number.country),
      created_at: now,
      updated_at: now,
    };
    const listIds = [...new Set(input.list_ids ?? [])];
    await this.raceSafe(tenantId, row.phone, () =>
      this.store.write(async (trx) => {
        await requireLists(trx, tenantId, listIds);
        await this.refuseTaken(trx, tenantId, row.phone);
        await trx.insertInto('contacts').values(row).execute();
        for (const listId of listIds) await addMembers(trx, listId, [row.id], now);
      }),
    );
    return toContactView(row);
  }

  async get(tenantId: string, id: string): Promise<ContactView | undefined> {
    const row = await this.store.db
      .selectFrom('contacts')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? toContactView(row) : undefined;
  }

  async update(tenantId: string, id: string, patch: ContactPatch): Promise<ContactView> {
    const checked = patch.attributes === undefined ? undefined : checkAttributes(patch.attributes);
    const number = patch.phone === undefined ? undefined : contactNumber(patch.phone, patch.country);
    return this.raceSafe(tenantId, number?.e164, () =>
      this.store.write(async (trx) => {
        const row = await trx
          .selectFrom('contacts')
          .selectAll()
          .where('tenant_id', '=', tenantId)
          .where('id', '=', id)
          .executeTakeFirst();
        if (!row) throw new RelaisError('not_found', `no contact ${id}`, 'id');
        const next = { ...row, updated_at: this.clock.now() };
        if (number && number.e164 !== row.phone) {
          await this.refuseTaken(trx, tenantId, number.e164);
          next.phone = number.e164;
          // A new country moves the derived zone with it, unless the patch sets one.
          if (number.country !== row.country && patch.timezone === undefined)
            next.timezone = resolveTimezone(null, number.country);
          next.country = number.country;
        }
        if (patch.first_name !== undefined) next.first_name = optionalText(patch.first_name, 'first_name');
        if (patch.last_name !== undefined) next.last_name = optionalText(patch.last_name, 'last_name');
        if (patch.timezone !== undefined) next.timezone = resolveTimezone(patch.timezone, next.country);
        if (checked)
          next.attributes = JSON.stringify(
            mergeAttributes(JSON.parse(row.attributes) as Attributes, checked),
          );
        await trx
          .updateTable('contacts')
          .set({
            phone: next.phone,
            country: next.country,
            first_name: next.first_name,
            last_name: next.last_name,
            attributes: next.attributes,
            timezone: next.timezone,
            updated_at: next.updated_at,
          })
          .where('id', '=', id)
          .execute();
        return toContactView(next);
      }),
    );
  }

  /** Deletes a contact and its memberships (each list's count follows). */
  async delete(tenantId: string, id: string): Promise<void> {
    await this.store.write(async (trx) => {
      const row = await trx
        .selectFrom('contacts')
        .select('id')
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .executeTakeFirst();
      if (!row) throw new RelaisError('not_found', `no contact ${id}`, 'id');
      await removeFromAllLists(trx, id, this.clock.now());
      await trx.deleteFrom('contacts').where('id', '=', id).execute();
    });
  }

  /** Contacts in id order (oldest first), keyset-paged; filtered by list membership or number. */
  async list(tenantId: string, filters: ContactFilters) {
    let query = this.store.db
      .selectFrom('contacts')
      .selectAll('contacts')
      .where('contacts.tenant_id', '=', tenantId);
    if (filters.list_id) {
      const listId = filters.list_id;
      query = query.where('contacts.id', 'in', (eb) =>
        eb.selectFrom('list_members').select('contact_id').where('list_id', '=', listId),
      );
    }
    if (filters.phone !== undefined) {
      query = query.where('contacts.phone', '=', contactNumber(filters.phone, filters.country).e164);
    }
    if (filters.cursor) query = query.where('contacts.id', '>', decodeCursor(filters.cursor, 'ct'));
    const rows = await query
      .orderBy('contacts.id')
      .limit(filters.limit + 1)
      .execute();
    return toPage(rows, filters.limit, toContactView);
  }

  /**
   * Two requests racing for one number both pass refuseTaken on PostgreSQL; the unique index stops the
   * second, which then gets the same 409 as if it had come later.
   */
  private async raceSafe<T>(tenantId: string, phone: string | undefined, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (phone === undefined || !isUniqueViolation(err)) throw err;
      await this.refuseTaken(this.store.db, tenantId, phone);
      throw err;
    }
  }

  /** 409 naming the contact that already has this number. */
  private async refuseTaken(trx: Trx, tenantId: string, phone: string): Promise<void> {
    const existing = await trx
      .selectFrom('contacts')
      .select('id')
      .where('tenant_id', '=', tenantId)
      .where('phone', '=', phone)
      .executeTakeFirst();
    if (existing) {
      throw new RelaisError(
        'contact_exists',
        `contact ${existing.id} already has the number ${phone}; update it with PATCH /v1/contacts/${existing.id}`,
        'phone',
      );
    }
  }
}

/** 404 for a list id that is not this tenant's (nothing is written). */
export async function requireLists(trx: Trx, tenantId: string, listIds: string[]): Promise<void> {
  if (listIds.length === 0) return;
  const found = await trx
    .selectFrom('lists')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where('id', 'in', listIds)
    .execute();
  const known = new Set(found.map((r) => r.id));
  const missing = listIds.find((id) => !known.has(id));
  if (missing) throw new RelaisError('not_found', `no list ${missing}`, 'list_ids');
}

function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
