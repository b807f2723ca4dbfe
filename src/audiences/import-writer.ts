import { CompiledQuery, sql } from 'kysely';
import { newId } from '../shared/ids.js';
import type { Store, Trx } from '../store/store.js';
import type { ImportRow, RowError } from './import-rows.js';
import { bumpCount } from './memberships.js';
import { countryTimezone } from './timezones.js';

/** Rows per multi-row statement: 500 × 10 parameters, far below both databases' limits. */
const ROWS_PER_STATEMENT = 500;
const CONTACT_COLUMNS = 10;

export interface ImportTarget {
  importId: string;
  tenantId: string;
  listId: string;
}

export interface ChunkCounts {
  /** Data rows read in this chunk (valid, invalid and duplicate). */
  rows: number;
  imported: number;
  invalid: number;
  duplicates: number;
}

/**
 * Writes one chunk of an import in the caller's transaction: contacts (upserted, new non-empty fields
 * merged into existing ones), memberships, the list's member_count, rejected rows and the import's
 * counts — so the list and the progress a client sees always agree. Statements are multi-row
 * INSERT … ON CONFLICT … RETURNING whose SQL is built once per shape (Kysely compiles it, both
 * dialects); SQLite's statement cache then prepares each text once.
 */
export class ImportWriter {
  private readonly texts = new Map<string, string>();

  constructor(private readonly store: Store) {}

  async writeChunk(
    trx: Trx,
    target: ImportTarget,
    rows: ImportRow[],
    errors: RowError[],
    counts: { rows: number; duplicatesInChunk: number },
    now: number,
  ): Promise<ChunkCounts> {
    const contactIds: string[] = [];
    // Rows giving a zone overwrite the contact's; the others keep it (a derived zone is only a default).
    const withZone = rows.filter((r) => r.timezone !== null);
    const withoutZone = rows.filter((r) => r.timezone === null);
    for (const [group, zoneGiven] of [
      [withZone, true],
      [withoutZone, false],
    ] as const) {
      if (group.length > 0)
        contactIds.push(...(await this.upsertContacts(trx, target, group, zoneGiven, now)));
    }
    const imported = await this.addMembers(trx, target.listId, contactIds, now);
    if (imported > 0) await bumpCount(trx, target.listId, imported, now);
    for (let i = 0; i < errors.length; i += ROWS_PER_STATEMENT) {
      await trx
        .insertInto('import_errors')
        .values(errors.slice(i, i + ROWS_PER_STATEMENT).map((e) => ({ import_id: target.importId, ...e })))
        .onConflict((oc) => oc.columns(['import_id', 'line']).doNothing())
        .execute();
    }
    const chunk: ChunkCounts = {
      rows: counts.rows,
      imported,
      invalid: errors.length,
      // Rows merged into an earlier row of this chunk, and rows whose contact was already a member.
      duplicates: counts.duplicatesInChunk + (contactIds.length - imported),
    };
    await trx
      .updateTable('imports')
      .set({
        total: sql`total + ${chunk.rows}`,
        imported: sql`imported + ${chunk.imported}`,
        invalid: sql`invalid + ${chunk.invalid}`,
        duplicates: sql`duplicates + ${chunk.duplicates}`,
        updated_at: now,
      })
      .where('id', '=', target.importId)
      .execute();
    return chunk;
  }

  /** Upserts contacts, returning their ids (new or existing). */
  private async upsertContacts(
    trx: Trx,
    target: ImportTarget,
    group: ImportRow[],
    zoneGiven: boolean,
    now: number,
  ): Promise<string[]> {
    const ids: string[] = [];
    if (this.store.dialect === 'postgres') {
      // One statement per chunk with a text[] per column: binding 10,000 scalar parameters cost the
      // server more than the inserts themselves (the import ran at half the speed).
      const columns: (string | null)[][] = [[], [], [], [], [], [], []];
      for (const r of group) {
        columns[0]!.push(newId('ct', now));
        columns[1]!.push(r.phone);
        columns[2]!.push(r.country);
        columns[3]!.push(r.first_name);
        columns[4]!.push(r.last_name);
        columns[5]!.push(JSON.stringify(r.attributes));
        columns[6]!.push(r.timezone ?? countryTimezone(r.country));
      }
      const result = await trx.executeQuery<{ id: string }>(
        CompiledQuery.raw(pgContactUpsert(zoneGiven), [target.tenantId, now, ...columns]),
      );
      for (const row of result.rows) ids.push(row.id);
      return ids;
    }
    for (let i = 0; i < group.length; i += ROWS_PER_STATEMENT) {
      const slice = group.slice(i, i + ROWS_PER_STATEMENT);
      const params: unknown[] = [];
      for (const r of slice) {
        params.push(
          newId('ct', now),
          target.tenantId,
          r.phone,
          r.country,
          r.first_name,
          r.last_name,
          JSON.stringify(r.attributes),
          r.timezone ?? countryTimezone(r.country),
          now,
          now,
        );
      }
      const result = await trx.executeQuery<{ id: string }>(
        CompiledQuery.raw(this.contactUpsert(slice.length, zoneGiven), params),
      );
      for (const row of result.rows) ids.push(row.id);
    }
    return ids;
  }

  /** Adds the contacts to the list; returns how many were not members yet. */
  private async addMembers(trx: Trx, listId: string, contactIds: string[], now: number): Promise<number> {
    if (this.store.dialect === 'postgres') {
      if (contactIds.length === 0) return 0;
      const result = await trx.executeQuery(CompiledQuery.raw(PG_MEMBER_INSERT, [listId, now, contactIds]));
      return result.rows.length;
    }
    let added = 0;
    for (let i = 0; i < contactIds.length; i += ROWS_PER_STATEMENT) {
      const slice = contactIds.slice(i, i + ROWS_PER_STATEMENT);
      const params: unknown[] = [];
      for (const id of slice) params.push(listId, id, now);
      const result = await trx.executeQuery(CompiledQuery.raw(this.memberInsert(slice.length), params));
      added += result.rows.length;
    }
    return added;
  }

  private contactUpsert(rows: number, zoneGiven: boolean): string {
    const key = `contacts:${rows}:${zoneGiven}`;
    let text = this.texts.get(key);
    if (text === undefined) {
      const merge = sql<string>`json_patch(contacts.attributes, excluded.attributes)`;
      const compiled = this.store.db
        .insertInto('contacts')
        .values(
          Array.from({ length: rows }, () => ({
            id: '',
            tenant_id: '',
            phone: '',
            country: '',
            first_name: '',
            last_name: '',
            attributes: '',
            timezone: '',
            created_at: 0,
            updated_at: 0,
          })),
        )
        .onConflict((oc) =>
          oc.columns(['tenant_id', 'phone']).doUpdateSet({
            first_name: sql`coalesce(excluded.first_name, contacts.first_name)`,
            last_name: sql`coalesce(excluded.last_name, contacts.last_name)`,
            attributes: merge,
            ...(zoneGiven ? { timezone: sql`excluded.timezone` } : {}),
            updated_at: sql`excluded.updated_at`,
          }),
        )
        .returning('id')
        .compile();
      // The parameters must be exactly the values, row by row, in the order writeChunk pushes them.
      if (compiled.parameters.length !== rows * CONTACT_COLUMNS)
        throw new Error('unexpected contact upsert shape');
      text = compiled.sql;
      this.texts.set(key, text);
    }
    return text;
  }

  private memberInsert(rows: number): string {
    const key = `members:${rows}`;
    let text = this.texts.get(key);
    if (text === undefined) {
      text = this.store.db
        .insertInto('list_members')
        .values(Array.from({ length: rows }, () => ({ list_id: '', contact_id: '', added_at: 0 })))
        .onConflict((oc) => oc.columns(['list_id', 'contact_id']).doNothing())
        .returning('contact_id')
        .compile().sql;
      this.texts.set(key, text);
    }
    return text;
  }
}

/** PostgreSQL: the chunk's contacts as one INSERT … SELECT FROM unnest(text[] per column). */
function pgContactUpsert(zoneGiven: boolean): string {
  return `insert into contacts (id, tenant_id, phone, country, first_name, last_name, attributes, timezone, created_at, updated_at)
    select u.id, $1, u.phone, u.country, u.first_name, u.last_name, u.attributes, u.timezone, $2::bigint, $2::bigint
    from unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
      as u(id, phone, country, first_name, last_name, attributes, timezone)
    on conflict (tenant_id, phone) do update set
      first_name = coalesce(excluded.first_name, contacts.first_name),
      last_name = coalesce(excluded.last_name, contacts.last_name),
      attributes = (contacts.attributes::jsonb || excluded.attributes::jsonb)::text,
      ${zoneGiven ? 'timezone = excluded.timezone,' : ''}
      updated_at = excluded.updated_at
    returning id`;
}

const PG_MEMBER_INSERT = `insert into list_members (list_id, contact_id, added_at)
  select $1, u.contact_id, $2::bigint from unnest($3::text[]) as u(contact_id)
  on conflict (list_id, contact_id) do nothing
  returning contact_id`;
