import { CompiledQuery, sql } from 'kysely';
import { newId } from '../shared/ids.js';
import type { Store, Trx } from '../store/store.js';
import type { PreparedChunk } from './csv-chunks.js';
import { groupsByZone, type ImportRow } from './import-rows.js';
import { bumpCount } from './memberships.js';
import { arrayLiteral, type ColumnGroup } from './pg-columns.js';
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
 * counts — so the list and the progress a client sees always agree. On SQLite, multi-row
 * INSERT … ON CONFLICT … RETURNING whose SQL is built once per shape (the statement cache then
 * prepares each text once); on PostgreSQL, one statement per group over the worker's column literals.
 */
export class ImportWriter {
  private readonly texts = new Map<string, string>();

  constructor(private readonly store: Store) {}

  async writeChunk(trx: Trx, target: ImportTarget, chunk: PreparedChunk, now: number): Promise<ChunkCounts> {
    const { errors } = chunk;
    let contacts = 0;
    let imported = 0;
    for (const group of chunk.groups ?? groupsByZone(chunk.rows)) {
      const written =
        'columns' in group
          ? await this.writeColumns(trx, target, group, now)
          : await this.writeRows(trx, target, group.rows, group.zoneGiven, now);
      contacts += written.contacts;
      imported += written.added;
    }
    if (imported > 0) await bumpCount(trx, target.listId, imported, now);
    for (let i = 0; i < errors.length; i += ROWS_PER_STATEMENT) {
      await trx
        .insertInto('import_errors')
        .values(errors.slice(i, i + ROWS_PER_STATEMENT).map((e) => ({ import_id: target.importId, ...e })))
        .onConflict((oc) => oc.columns(['import_id', 'line']).doNothing())
        .execute();
    }
    const counts: ChunkCounts = {
      rows: chunk.records,
      imported,
      invalid: errors.length,
      // Rows merged into an earlier row of this chunk, and rows whose contact was already a member.
      duplicates: chunk.duplicatesInChunk + (contacts - imported),
    };
    await trx
      .updateTable('imports')
      .set({
        total: sql`total + ${counts.rows}`,
        imported: sql`imported + ${counts.imported}`,
        invalid: sql`invalid + ${counts.invalid}`,
        duplicates: sql`duplicates + ${counts.duplicates}`,
        updated_at: now,
      })
      .where('id', '=', target.importId)
      .execute();
    return counts;
  }

  /**
   * PostgreSQL: the contacts (one INSERT … SELECT FROM unnest of the worker's column literals) and
   * their memberships (a CTE over the upserted ids) in one statement: binding 10,000 scalar
   * parameters cost the server more than the inserts themselves, and the ids never travel to Node.
   */
  private async writeColumns(
    trx: Trx,
    target: ImportTarget,
    group: ColumnGroup,
    now: number,
  ): Promise<{ contacts: number; added: number }> {
    const ids = arrayLiteral(Array.from({ length: group.size }, () => newId('ct', now)));
    const result = await trx.executeQuery<{ contacts: string; added: string }>(
      CompiledQuery.raw(pgContactsIntoList(group.zoneGiven), [
        target.tenantId,
        now,
        target.listId,
        ids,
        ...group.columns,
      ]),
    );
    const row = result.rows[0]!;
    return { contacts: Number(row.contacts), added: Number(row.added) };
  }

  /** SQLite: multi-row upserts of the contacts, then of their memberships. */
  private async writeRows(
    trx: Trx,
    target: ImportTarget,
    group: ImportRow[],
    zoneGiven: boolean,
    now: number,
  ): Promise<{ contacts: number; added: number }> {
    const ids: string[] = [];
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
    let added = 0;
    for (let i = 0; i < ids.length; i += ROWS_PER_STATEMENT) {
      const slice = ids.slice(i, i + ROWS_PER_STATEMENT);
      const params: unknown[] = [];
      for (const id of slice) params.push(target.listId, id, now);
      const result = await trx.executeQuery(CompiledQuery.raw(this.memberInsert(slice.length), params));
      added += result.rows.length;
    }
    return { contacts: ids.length, added };
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

/**
 * PostgreSQL: the chunk's contacts as one INSERT … SELECT FROM unnest(text[] per column), and their
 * memberships from its RETURNING. $1 tenant, $2 now, $3 list, $4… the columns.
 */
function pgContactsIntoList(zoneGiven: boolean): string {
  return `with c as (
      insert into contacts (id, tenant_id, phone, country, first_name, last_name, attributes, timezone, created_at, updated_at)
      select u.id, $1, u.phone, u.country, u.first_name, u.last_name, u.attributes, u.timezone, $2::bigint, $2::bigint
      from unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
        as u(id, phone, country, first_name, last_name, attributes, timezone)
      on conflict (tenant_id, phone) do update set
        first_name = coalesce(excluded.first_name, contacts.first_name),
        last_name = coalesce(excluded.last_name, contacts.last_name),
        attributes = (contacts.attributes::jsonb || excluded.attributes::jsonb)::text,
        ${zoneGiven ? 'timezone = excluded.timezone,' : ''}
        updated_at = excluded.updated_at
      returning id),
    m as (
      insert into list_members (list_id, contact_id, added_at)
      select $3, c.id, $2::bigint from c
      on conflict (list_id, contact_id) do nothing
      returning 1)
    select (select count(*) from c) as contacts, (select count(*) from m) as added`;
}
