import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { executeOrFail, inList, insertRows, updateRows, upsertRows } from '../src/store/insert-rows.js';
import { returningRows, selectRows } from '../src/store/json-rows.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { databaseKinds } from './helpers/databases.js';
import { minimalMessageRow } from './helpers/rows.js';

describe.each(databaseKinds)('multi-row inserts and updates written by hand on $name', (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(kind);
  });
  afterAll(async () => {
    await t.close();
  });

  it('binds every value as a parameter: quotes, placeholders, emoji and nulls come back as written', async () => {
    // PostgreSQL receives each column as one array literal: its separators and escapes must survive.
    const tricky = [
      `it's "quoted"`,
      '$1 ? $2',
      'Pizza 🍕 ; drop table messages; --',
      null,
      'NULL',
      '{a,b}',
      'back\\slash \\" and, comma',
      'two\nlines',
      '',
    ];
    const rows = tricky.map((detail, i) => ({
      message_id: `msg_insert_rows_${i}`,
      status: 'submitted' as const,
      at: 1_700_000_000_000 + i,
      error_code: null,
      detail,
    }));
    await t.app.store.write((trx) => insertRows(trx, 'message_events', rows));
    const back = await t.app.store.db
      .selectFrom('message_events')
      .select(['message_id', 'detail', 'at', 'error_code'])
      .where('message_id', 'like', 'msg_insert_rows_%')
      .orderBy('message_id')
      .execute();
    expect(back).toEqual(
      rows.map(({ message_id, detail, at }) => ({ message_id, detail, at, error_code: null })),
    );
  });

  it('stores a lone UTF-16 surrogate as U+FFFD on PostgreSQL, and text that only looks like an escape as written', async () => {
    // PostgreSQL receives the rows as JSON, where JSON.stringify escapes a lone surrogate, which
    // PostgreSQL refuses to turn into text. SQLite binds the strings themselves (better-sqlite3 keeps
    // a lone surrogate's bytes): only the look-alikes concern it.
    const cases: [written: string, stored: string, lone: boolean][] = [
      ['cut \ud83c emoji', 'cut \ufffd emoji', true],
      ['x\udc00', 'x\ufffd', true],
      ['\\\ud800', '\\\ufffd', true],
      ['\\ud800 literal', '\\ud800 literal', false],
      ['pair 😀', 'pair 😀', false],
      ['\\\\ud83d', '\\\\ud83d', false],
    ];
    const mine = cases.filter(([, , lone]) => kind.name === 'postgres' || !lone);
    const rows = mine.map(([detail], i) => ({
      message_id: `msg_surrogates_${i}`,
      status: 'submitted' as const,
      at: 1,
      error_code: null,
      detail,
    }));
    await t.app.store.write((trx) => insertRows(trx, 'message_events', rows));
    const back = await t.app.store.db
      .selectFrom('message_events')
      .select('detail')
      .where('message_id', 'like', 'msg_surrogates_%')
      .orderBy('message_id')
      .execute();
    expect(back.map((r) => r.detail)).toEqual(mine.map(([, stored]) => stored));
  });

  it('appends an ON CONFLICT clause: an upsert of parts keeps the carrier id a receipt does not name', async () => {
    const onConflict = `on conflict ("message_id", "part_no") do update set
      "carrier_id" = coalesce(excluded."carrier_id", "message_parts"."carrier_id"), "status" = excluded."status"`;
    const part = {
      message_id: 'msg_insert_rows_part',
      part_no: 1,
      connector: 'carrier-a',
      carrier_id: 'abc',
      carrier_key: 'abc',
      status: 'submitted' as const,
      error_code: null,
      updated_at: 1,
    };
    await t.app.store.write((trx) => insertRows(trx, 'message_parts', [part], onConflict));
    await t.app.store.write((trx) =>
      insertRows(trx, 'message_parts', [{ ...part, carrier_id: null, status: 'delivered' }], onConflict),
    );
    const row = await t.app.store.db
      .selectFrom('message_parts')
      .select(['carrier_id', 'status'])
      .where('message_id', '=', part.message_id)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ carrier_id: 'abc', status: 'delivered' });
  });

  it('upsertRows inserts new rows, applies the conflict clause to the rows already there, and fails on a bad row', async () => {
    // On SQLite the rows go in by `insert or ignore` first, and the upsert runs only when some were
    // there already: every case must end as the one upsert would.
    const onConflict = `on conflict ("message_id", "part_no") do update set
      "carrier_id" = coalesce(excluded."carrier_id", "message_parts"."carrier_id"), "status" = excluded."status"`;
    const part = (i: number, fields: Record<string, unknown> = {}) => ({
      message_id: `msg_upsert_rows_${i}`,
      part_no: 1,
      connector: 'carrier-a',
      carrier_id: `id${i}`,
      carrier_key: `id${i}`,
      status: 'submitted' as const,
      error_code: null,
      updated_at: 1,
      ...fields,
    });
    const read = () =>
      t.app.store.db
        .selectFrom('message_parts')
        .select(['message_id', 'carrier_id', 'status'])
        .where('message_id', 'like', 'msg_upsert_rows_%')
        .orderBy('message_id')
        .execute();
    await t.app.store.write((trx) => upsertRows(trx, 'message_parts', [part(0), part(1)], onConflict));
    expect(await read()).toEqual([
      { message_id: 'msg_upsert_rows_0', carrier_id: 'id0', status: 'submitted' },
      { message_id: 'msg_upsert_rows_1', carrier_id: 'id1', status: 'submitted' },
    ]);
    // One row there already (its carrier id kept, as the clause says), two new ones.
    await t.app.store.write((trx) =>
      upsertRows(
        trx,
        'message_parts',
        [part(2), part(1, { carrier_id: null, status: 'delivered' }), part(3)],
        onConflict,
      ),
    );
    expect(await read()).toEqual([
      { message_id: 'msg_upsert_rows_0', carrier_id: 'id0', status: 'submitted' },
      { message_id: 'msg_upsert_rows_1', carrier_id: 'id1', status: 'delivered' },
      { message_id: 'msg_upsert_rows_2', carrier_id: 'id2', status: 'submitted' },
      { message_id: 'msg_upsert_rows_3', carrier_id: 'id3', status: 'submitted' },
    ]);
    // A row breaking NOT NULL fails the statement, and nothing of the transaction stays.
    await expect(
      t.app.store.write((trx) =>
        upsertRows(
          trx,
          'message_parts',
          [part(4), part(5, { status: null }), part(0, { status: 'failed' })],
          onConflict,
        ),
      ),
    ).rejects.toThrow(/not null|null value/i);
    expect((await read()).map((r) => [r.message_id, r.status])).toEqual([
      ['msg_upsert_rows_0', 'submitted'],
      ['msg_upsert_rows_1', 'delivered'],
      ['msg_upsert_rows_2', 'submitted'],
      ['msg_upsert_rows_3', 'submitted'],
    ]);
  });

  it('updateRows gives each row its own values, found by its key, and leaves the other rows alone', async () => {
    const event = (i: number) => ({
      id: `evt_update_rows_${i}`,
      tenant_id: 'ten_update_rows',
      message_id: null,
      type: 'message.status',
      url: 'https://example.com/hook',
      payload: '{}',
      status: 'pending' as const,
      attempts: 0,
      next_attempt_at: 1000 + i,
      last_error: null,
      created_at: 1000,
    });
    await t.app.store.write((trx) => insertRows(trx, 'webhook_events', [0, 1, 2, 3].map(event)));
    const errors = [`it's "quoted"`, 'back\\slash, {comma}', null];
    await t.app.store.write((trx) =>
      updateRows(
        trx,
        'webhook_events',
        'id',
        // Out of key order, and one key that matches no row.
        [2, 0, 1, 9].map((i) => ({
          id: `evt_update_rows_${i}`,
          next_attempt_at: 5_000_000_000_000 + i,
          last_error: i < errors.length ? errors[i] : 'none',
        })),
        `"attempts" = "attempts" + 1, "next_attempt_at" = "v"."next_attempt_at", "last_error" = "v"."last_error"`,
      ),
    );
    const back = await t.app.store.db
      .selectFrom('webhook_events')
      .select(['id', 'attempts', 'next_attempt_at', 'last_error'])
      .where('id', 'like', 'evt_update_rows_%')
      .orderBy('id')
      .execute();
    expect(back).toEqual([
      { id: 'evt_update_rows_0', attempts: 1, next_attempt_at: 5_000_000_000_000, last_error: errors[0] },
      { id: 'evt_update_rows_1', attempts: 1, next_attempt_at: 5_000_000_000_001, last_error: errors[1] },
      { id: 'evt_update_rows_2', attempts: 1, next_attempt_at: 5_000_000_000_002, last_error: null },
      { id: 'evt_update_rows_3', attempts: 0, next_attempt_at: 1003, last_error: null },
    ]);
  });

  it('a multi-row insert that fails on a later row leaves none of its rows, nor the earlier writes of its transaction', async () => {
    // On SQLite the insert is `insert or fail`, which keeps the rows written before the failing one:
    // the transaction's rollback is what must take them away.
    const tenant = await t.tenant('Fails');
    const events = [0, 1].map((i) => ({
      message_id: `msg_insert_fails_${i}`,
      status: 'submitted' as const,
      at: 1_700_000_000_000 + i,
      error_code: null,
      detail: null,
    }));
    const first = minimalMessageRow('msg_insert_fails_a', tenant.id);
    const rows = [first, minimalMessageRow('msg_insert_fails_b', tenant.id), { ...first, body: 'twin' }];
    await expect(
      t.app.store.write(async (trx) => {
        await insertRows(trx, 'message_events', events);
        await insertRows(trx, 'messages', rows as never);
      }),
    ).rejects.toThrow(/unique|duplicate/i);
    const db = t.app.store.db;
    const left = await db
      .selectFrom('messages')
      .select('id')
      .where('id', 'like', 'msg_insert_fails_%')
      .execute();
    const history = await db
      .selectFrom('message_events')
      .select('message_id')
      .where('message_id', 'like', 'msg_insert_fails_%')
      .execute();
    expect([left, history]).toEqual([[], []]);
    // The store goes on: the same rows without the twin commit.
    await t.app.store.write((trx) => insertRows(trx, 'messages', rows.slice(0, 2) as never));
    const written = await db
      .selectFrom('messages')
      .select('id')
      .where('id', 'like', 'msg_insert_fails_%')
      .execute();
    expect(written.map((r) => r.id).sort()).toEqual(['msg_insert_fails_a', 'msg_insert_fails_b']);
  });

  it('inList matches exactly the values given, one parameter or many, and none for an unknown one', async () => {
    // Values that a hand-written list could get wrong: separators, quotes, escapes, non-ASCII.
    const details = ['a,b', 'NULL', '{x}', 'q"uote', 'back\\slash', 'café 🍕', '["x"]', 'tab\there'];
    const rows = details.map((detail, i) => ({
      message_id: `msg_in_list_${i}`,
      status: 'submitted' as const,
      at: 1_700_000_000_000 + i,
      error_code: null,
      detail,
    }));
    await t.app.store.write((trx) => insertRows(trx, 'message_events', rows));
    const db = t.app.store.db;
    const found = await db
      .selectFrom('message_events')
      .select('message_id')
      .where(inList(db, 'message_id', ['msg_in_list_0', 'msg_in_list_2', 'msg_in_list_9']))
      .orderBy('message_id')
      .execute();
    expect(found.map((r) => r.message_id)).toEqual(['msg_in_list_0', 'msg_in_list_2']);
    const byDetail = await db
      .selectFrom('message_events')
      .select('detail')
      .where(inList(db, 'detail', [...details].reverse()))
      .where('message_id', 'like', 'msg_in_list_%')
      .orderBy('message_id')
      .execute();
    expect(byDetail.map((r) => r.detail)).toEqual(details);
    const none = await db
      .selectFrom('message_events')
      .select('message_id')
      .where(inList(db, 'message_id', []))
      .execute();
    expect(none).toEqual([]);
    const ats = await db
      .selectFrom('message_events')
      .select('message_id')
      .where(inList(db, 'at', [1_700_000_000_001, 1_700_000_000_003]))
      .where('message_id', 'like', 'msg_in_list_%')
      .orderBy('message_id')
      .execute();
    expect(ats.map((r) => r.message_id)).toEqual(['msg_in_list_1', 'msg_in_list_3']);
  });
});

describe.each(databaseKinds)('rows read through JSON on $name', (kind) => {
  let t: TestApp;
  const tricky = [
    `it's "quoted"`,
    'Pizza 🍕 ; \\ backslash, \u0001 control, \t tab, \u2028 separator',
    'two\nlines',
    '',
    null,
    'null',
    '[1,2]',
    '日本語のテキスト',
    // PostgreSQL refuses NUL in text; SQLite keeps it, and its JSON must too.
    ...(kind.name === 'sqlite' ? ['nul \u0000 inside'] : []),
  ];
  const ids = tricky.map((_, i) => `msg_json_rows_${i}`);

  beforeAll(async () => {
    t = await startTestApp(kind);
    const tenant = await t.tenant('Json');
    await t.app.store.db
      .insertInto('messages')
      .values(
        tricky.map((text, i) =>
          minimalMessageRow(ids[i]!, tenant.id, {
            body: text ?? 'x',
            client_ref: text,
            segments: i + 1,
            created_at: 1_700_000_000_123 + i,
          }),
        ) as never,
      )
      .execute();
  });
  afterAll(() => t?.close());

  it('selectRows gives every text, number and null back as stored', async () => {
    const rows = await t.app.store.write((trx) =>
      selectRows(
        trx,
        trx
          .selectFrom('messages')
          .select(['id', 'body', 'client_ref', 'segments', 'created_at'])
          .where(inList(trx, 'id', ids)),
        ['id', 'body', 'client_ref', 'segments', 'created_at'],
      ),
    );
    const direct = await t.app.store.db
      .selectFrom('messages')
      .select(['id', 'body', 'client_ref', 'segments', 'created_at'])
      .where('id', 'in', ids)
      .execute();
    const byId = (a: { id: string }, b: { id: string }) => a.id.localeCompare(b.id);
    expect(rows.sort(byId)).toEqual(
      direct.map((r) => ({ ...r, created_at: Number(r.created_at) })).sort(byId),
    );
    expect(rows.map((r) => r.client_ref).sort()).toEqual([...tricky].sort());
  });

  it('selectRows of no rows is an empty list', async () => {
    const rows = await t.app.store.write((trx) =>
      selectRows(trx, trx.selectFrom('messages').select(['id']).where('id', '=', 'msg_none'), ['id']),
    );
    expect(rows).toEqual([]);
  });

  it('returningRows gives the rows as the UPDATE left them, and only those it changed', async () => {
    const rows = await t.app.store.write((trx) =>
      returningRows<{ id: string; status: string; client_ref: string | null }>(
        trx,
        trx
          .updateTable('messages')
          .set({ status: 'submitted' })
          .where(inList(trx, 'id', [...ids.slice(0, 3), 'msg_none']))
          .where('segments', '<', 3),
        ['id', 'status', 'client_ref'],
      ),
    );
    expect(rows.sort((a, b) => a.id.localeCompare(b.id))).toEqual([
      { id: ids[0], status: 'submitted', client_ref: tricky[0] },
      { id: ids[1], status: 'submitted', client_ref: tricky[1] },
    ]);
  });

  it('an UPDATE run by executeOrFail that fails on a later row leaves every row of its transaction as it was', async () => {
    // On SQLite it is `update or fail`, which keeps the rows changed before the failing one: the
    // transaction's rollback is what must take them away.
    const rowsNow = () =>
      t.app.store.db
        .selectFrom('messages')
        .select(['id', 'status', 'body'])
        .where('id', 'in', ids)
        .orderBy('id')
        .execute();
    const before = await rowsNow();
    await expect(
      t.app.store.write(async (trx) => {
        await trx.updateTable('messages').set({ status: 'failed' }).where('id', '=', ids[4]!).execute();
        // Every row but the last of the id order keeps a body; the last one's NULL breaks NOT NULL.
        await executeOrFail(
          trx,
          trx
            .updateTable('messages')
            .set({
              status: 'delivered',
              body: sql<string>`case when id = ${ids[ids.length - 1]!} then null else body end`,
            })
            .where(inList(trx, 'id', ids)),
        );
      }),
    ).rejects.toThrow(/not null|null value/i);
    expect(await rowsNow()).toEqual(before);
  });
});
