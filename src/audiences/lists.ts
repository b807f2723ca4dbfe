import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Clock } from '../shared/clock.js';
import { decodeCursor } from '../shared/cursor.js';
import { RelaisError } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import type { ListTable } from '../store/schema.js';
import type { Store, Trx } from '../store/store.js';
import { type ContactView, toContactView } from './contact-fields.js';
import { addMembers, removeMember, removeSomeMembers } from './memberships.js';
import { type PageRequest, toPage } from './paging.js';

export interface ListView {
  id: string;
  name: string;
  description: string | null;
  member_count: number;
  created_at: string;
  updated_at: string;
}

const NAME_MAX = 200;
const DESCRIPTION_MAX = 2000;
/** Memberships deleted per transaction when a list is deleted. */
const DELETE_CHUNK = 5000;

const iso = (ms: number) => new Date(ms).toISOString();

export function toListView(row: ListTable): ListView {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    member_count: Number(row.member_count),
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

function listName(name: string): string {
  const v = name.trim();
  if (!v) throw new RelaisError('invalid_field', 'name must not be empty', 'name');
  if (v.length > NAME_MAX)
    throw new RelaisError('invalid_field', `name is at most ${NAME_MAX} characters`, 'name');
  return v;
}

function listDescription(description: string | null | undefined): string | null {
  if (description === undefined || description === null) return null;
  if (description.length > DESCRIPTION_MAX)
    throw new RelaisError(
      'invalid_field',
      `description is at most ${DESCRIPTION_MAX} characters`,
      'description',
    );
  return description;
}

/** Contact lists and their memberships (docs/contacts.md). */
export class ListService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async create(tenantId: string, input: { name: string; description?: string | null }): Promise<ListView> {
    const now = this.clock.now();
    const row: ListTable = {
      id: newId('lst', now),
      tenant_id: tenantId,
      name: listName(input.name),
      description: listDescription(input.description),
      member_count: 0,
      created_at: now,
      updated_at: now,
    };
    await this.store.write((trx) => trx.insertInto('lists').values(row).execute());
    return toListView(row);
  }

  async get(tenantId: string, id: string): Promise<ListView | undefined> {
    const row = await findList(this.store.db, tenantId, id);
    return row ? toListView(row) : undefined;
  }

  async require(tenantId: string, id: string): Promise<ListView> {
    const list = await this.get(tenantId, id);
    if (!list) throw new RelaisError('not_found', `no list ${id}`, 'id');
    return list;
  }

  async list(tenantId: string, page: PageRequest) {
    let query = this.store.db.selectFrom('lists').selectAll().where('tenant_id', '=', tenantId);
    if (page.cursor) query = query.where('id', '>', decodeCursor(page.cursor, 'lst'));
    const rows = await query
      .orderBy('id')
      .limit(page.limit + 1)
      .execute();
    return toPage(rows, page.limit, toListView);
  }

  async update(
    tenantId: string,
    id: string,
    patch: { name?: string | undefined; description?: string | null | undefined },
  ): Promise<ListView> {
    const set: { name?: string; description?: string | null; updated_at: number } = {
      updated_at: this.clock.now(),
    };
    if (patch.name !== undefined) set.name = listName(patch.name);
    if (patch.description !== undefined) set.description = listDescription(patch.description);
    const row = await this.store.write(async (trx) => {
      await trx
        .updateTable('lists')
        .set(set)
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .execute();
      return findList(trx, tenantId, id);
    });
    if (!row) throw new RelaisError('not_found', `no list ${id}`, 'id');
    return toListView(row);
  }

  /**
   * Deletes a list: its memberships go (in short transactions, the count following), its contacts
   * stay. Refused while an import into it is running.
   */
  async delete(tenantId: string, id: string): Promise<void> {
    await this.require(tenantId, id);
    const running = await this.store.db
      .selectFrom('imports')
      .select('id')
      .where('tenant_id', '=', tenantId)
      .where('list_id', '=', id)
      .where('status', '=', 'running')
      .executeTakeFirst();
    if (running) {
      throw new RelaisError(
        'list_import_running',
        `import ${running.id} into this list is running; delete the list once it has finished`,
        'id',
      );
    }
    for (;;) {
      const removed = await this.store.write((trx) =>
        removeSomeMembers(trx, id, DELETE_CHUNK, this.clock.now()),
      );
      if (removed < DELETE_CHUNK) break;
      await yieldToLoop();
    }
    await this.store.write(async (trx) => {
      await trx.deleteFrom('list_members').where('list_id', '=', id).execute();
      await trx.deleteFrom('lists').where('tenant_id', '=', tenantId).where('id', '=', id).execute();
    });
  }

  /** Adds this tenant's contacts to a list; already-members are counted, not added twice. */
  async addContacts(tenantId: string, id: string, contactIds: string[]) {
    const unique = [...new Set(contactIds)];
    return this.store.write(async (trx) => {
      if (!(await findList(trx, tenantId, id))) throw new RelaisError('not_found', `no list ${id}`, 'id');
      const found = await trx
        .selectFrom('contacts')
        .select('id')
        .where('tenant_id', '=', tenantId)
        .where('id', 'in', unique)
        .execute();
      const known = new Set(found.map((r) => r.id));
      const missingIndex = contactIds.findIndex((c) => !known.has(c));
      if (missingIndex >= 0) {
        throw new RelaisError(
          'not_found',
          `no contact ${contactIds[missingIndex]}`,
          `contact_ids/${missingIndex}`,
        );
      }
      const added = await addMembers(trx, id, unique, this.clock.now());
      const list = (await findList(trx, tenantId, id))!;
      return { added, already_members: unique.length - added, list: toListView(list) };
    });
  }

  async removeContact(tenantId: string, id: string, contactId: string): Promise<void> {
    await this.store.write(async (trx) => {
      if (!(await findList(trx, tenantId, id))) throw new RelaisError('not_found', `no list ${id}`, 'id');
      if (!(await removeMember(trx, id, contactId, this.clock.now())))
        throw new RelaisError('not_found', `contact ${contactId} is not in list ${id}`, 'contact_id');
    });
  }

  /** Members in contact id order: the order campaigns walk a list in. */
  async members(
    tenantId: string,
    id: string,
    page: PageRequest,
  ): Promise<{ data: ContactView[]; next_cursor: string | null }> {
    await this.require(tenantId, id);
    let query = this.store.db
      .selectFrom('list_members')
      .innerJoin('contacts', 'contacts.id', 'list_members.contact_id')
      .selectAll('contacts')
      .where('list_members.list_id', '=', id);
    if (page.cursor) query = query.where('list_members.contact_id', '>', decodeCursor(page.cursor, 'ct'));
    const rows = await query
      .orderBy('list_members.contact_id')
      .limit(page.limit + 1)
      .execute();
    return toPage(rows, page.limit, toContactView);
  }
}

export function findList(db: Trx, tenantId: string, id: string) {
  return db
    .selectFrom('lists')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .executeTakeFirst();
}
