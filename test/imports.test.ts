import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { createLogger } from '../src/shared/logger.js';
import { bearer, startTestApp, type TestApp } from './helpers/app.js';
import { databaseKinds } from './helpers/databases.js';

/** CSV imports through the HTTP API, on both databases: good, messy and hostile files, progress, crashes. */

/** `n` distinct valid French mobile numbers from `start`. */
const mobiles = (start: number, n: number) =>
  Array.from({ length: n }, (_, i) => `+3367${String(start + i).padStart(7, '0')}`);

describe.each(databaseKinds)('CSV imports on $name', (kind) => {
  let t: TestApp;
  let key: string;
  let otherKey: string;

  beforeAll(async () => {
    t = await startTestApp(kind, { imports: { max_bytes: 128 * 1024, chunk_rows: 50 } });
    key = (await t.tenant('Acme')).apiKey;
    otherKey = (await t.tenant('Other')).apiKey;
  });
  afterAll(() => t.close());

  const api = (method: 'GET' | 'POST', url: string, payload?: Record<string, unknown>, apiKey = key) =>
    t.app.http.inject({ method, url, headers: bearer(apiKey), ...(payload ? { payload } : {}) });
  const newList = async (name = 'Imported') => (await api('POST', '/v1/lists', { name })).json().id as string;
  const upload = (
    listId: string,
    body: string | Buffer,
    query = '',
    contentType = 'text/csv',
    apiKey = key,
  ) =>
    t.app.http.inject({
      method: 'POST',
      url: `/v1/lists/${listId}/import${query}`,
      headers: { ...bearer(apiKey), 'content-type': contentType },
      payload: body,
    });
  async function finished(importId: string) {
    for (let i = 0; i < 500; i++) {
      const view = (await api('GET', `/v1/imports/${importId}`)).json();
      if (view.status !== 'running') return view;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`import ${importId} still running`);
  }
  const importFile = async (listId: string, body: string | Buffer, query = '') => {
    const res = await upload(listId, body, query);
    expect(res.statusCode, res.body).toBe(202);
    return finished(res.json().id);
  };
  const members = async (listId: string) =>
    (await api('GET', `/v1/lists/${listId}/contacts?limit=500`)).json().data as {
      phone: string;
      first_name: string | null;
      last_name: string | null;
      attributes: Record<string, string>;
      timezone: string;
    }[];
  const errorsCsv = async (importId: string) => {
    const res = await api('GET', `/v1/imports/${importId}/errors`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/csv');
    return res.body;
  };
  const count = async (table: 'list_members' | 'imports', listId: string) =>
    Number(
      (
        await t.app.store.db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll().as('n'))
          .where('list_id', '=', listId)
          .executeTakeFirstOrThrow()
      ).n,
    );
  const spoolFiles = () => {
    const dir = join(t.config.data_dir, 'imports');
    return existsSync(dir) ? readdirSync(dir) : [];
  };

  it('imports a clean file: fields, attributes, zones, counts', async () => {
    const listId = await newList();
    const csv =
      'phone,first_name,last_name,city,timezone\n+33612340001,Ana,Lopez,Lyon,\n+12015550101,Bob,,Boston,America/Chicago\n+33612340002,,,,\n';
    const res = await upload(listId, csv);
    expect(res.statusCode).toBe(202);
    expect(res.json().id).toMatch(/^imp_/);
    expect(res.headers.location).toBe(`/v1/imports/${res.json().id}`);
    const done = await finished(res.json().id);
    expect(done).toMatchObject({
      status: 'completed',
      total: 3,
      imported: 3,
      invalid: 0,
      duplicates: 0,
      bytes: csv.length,
    });
    expect(done.completed_at).not.toBeNull();
    const rows = await members(listId);
    expect(rows.map((r) => r.phone).sort()).toEqual(['+12015550101', '+33612340001', '+33612340002']);
    const ana = rows.find((r) => r.phone === '+33612340001')!;
    expect(ana).toMatchObject({
      first_name: 'Ana',
      last_name: 'Lopez',
      attributes: { city: 'Lyon' },
      timezone: 'Europe/Paris',
    });
    expect(rows.find((r) => r.phone === '+12015550101')!.timezone).toBe('America/Chicago');
    expect((await api('GET', `/v1/lists/${listId}`)).json().member_count).toBe(3);
    expect(await errorsCsv(done.id)).toBe('line,value,reason\r\n');
    await expect.poll(spoolFiles).toEqual([]); // removed once the final status has committed
  });

  it('copes with a messy file: BOM, CRLF, semicolons, aliases, quotes, bad rows with their line numbers, duplicates', async () => {
    const listId = await newList();
    // Already a member before the import: counted as a duplicate, its new fields merged in.
    const existing = (
      await api('POST', '/v1/contacts', {
        phone: '+33612350009',
        first_name: 'Old',
        attributes: { keep: 'me' },
        list_ids: [listId],
      })
    ).json();
    const lines = [
      '\uFEFFMobile Number;First Name;Note;Extra',
      '06 12 35 00 01;Zoé;"semi;colon, comma";x', // 2
      '0612350002;"multi', // 3
      'line";;', // 4 (the record of line 3 ends here)
      'not-a-number;Bad;;', // 5
      '+33140000000;Landline;;', // 6
      '0612350001;Again;;', // 7: duplicate of line 2
      ';NoPhone;;', // 8
      '0612350003;Too;many;fields;here', // 9
      '=HYPERLINK("http://evil");Formula;;', // 10
      '', // 11: blank, skipped
      '0612350009;;vip;', // 12: already in the list
      '0612350004;Short', // 13: missing trailing columns is fine
    ];
    const csv = `${lines.join('\r\n')}\r\n`;
    const done = await importFile(listId, csv, '?default_country=fr');
    expect(done).toMatchObject({
      status: 'completed',
      total: 10,
      imported: 3,
      invalid: 5,
      duplicates: 2,
      default_country: 'FR',
    });
    const byPhone = new Map((await members(listId)).map((m) => [m.phone, m]));
    // 0003 had too many fields: it is not imported.
    expect([...byPhone.keys()].sort()).toEqual([
      '+33612350001',
      '+33612350002',
      '+33612350004',
      '+33612350009',
    ]);
    expect(byPhone.get('+33612350001')).toMatchObject({
      first_name: 'Again',
      attributes: { Note: 'semi;colon, comma', Extra: 'x' },
    });
    expect(byPhone.get('+33612350002')).toMatchObject({ first_name: 'multi\r\nline' });
    expect(byPhone.get('+33612350009')).toMatchObject({
      first_name: 'Old',
      attributes: { keep: 'me', Note: 'vip' },
    });
    expect((await api('GET', `/v1/contacts/${existing.id}`)).json().attributes).toEqual({
      keep: 'me',
      Note: 'vip',
    });
    expect((await api('GET', `/v1/lists/${listId}`)).json().member_count).toBe(4);
    expect(await count('list_members', listId)).toBe(4);
    const errors = (await errorsCsv(done.id)).trim().split('\r\n');
    expect(errors[0]).toBe('line,value,reason');
    expect(errors.slice(1).map((l) => l.split(',')[0])).toEqual(['5', '6', '8', '9', '10']);
    expect(errors[1]).toContain('not-a-number');
    expect(errors[2]).toMatch(/fixed line/);
    expect(errors[3]).toContain('no phone number');
    expect(errors[4]).toContain('5 fields but the header has 4');
    // A formula is neutralised in the errors file.
    expect(errors[5]).toMatch(/^10,"'=HYPERLINK\(""http:\/\/evil""\)",/);
  });

  it('keeps every character of names and attributes: quotes, backslashes, braces, commas, NULL-like words, emoji', async () => {
    const listId = await newList();
    const csv = [
      'phone,first_name,last_name,note',
      '+33612370001,"O""Brien \\ {a,b}",NULL,"\\N ""x"" 🎉"',
      '+33612370002,"{""json"": 1}",\\,"tab\there"',
    ].join('\n');
    const done = await importFile(listId, `${csv}\n`);
    expect(done).toMatchObject({ status: 'completed', imported: 2, invalid: 0 });
    const byPhone = new Map((await members(listId)).map((m) => [m.phone, m]));
    expect(byPhone.get('+33612370001')).toMatchObject({
      first_name: 'O"Brien \\ {a,b}',
      last_name: 'NULL',
      attributes: { note: '\\N "x" 🎉' },
    });
    expect(byPhone.get('+33612370002')).toMatchObject({
      first_name: '{"json": 1}',
      last_name: '\\',
      attributes: { note: 'tab\there' },
    });
  });

  it('finds the phone column by phone_column= and reads national numbers with default_country', async () => {
    const listId = await newList();
    const csv = 'name,contact\nAna,612360001\nBob,0612360002\n';
    const noColumn = await upload(listId, csv, '?default_country=FR');
    expect(noColumn.statusCode).toBe(400);
    expect(noColumn.json()).toMatchObject({ code: 'csv_missing_phone_column' });
    expect(noColumn.json().detail).toContain('"contact"');
    const done = await importFile(listId, csv, '?default_country=FR&phone_column=CONTACT');
    expect(done).toMatchObject({ status: 'completed', imported: 2, phone_column: 'CONTACT' });
    expect((await members(listId)).map((m) => m.attributes)).toEqual([{ name: 'Ana' }, { name: 'Bob' }]);
    const national = await importFile(listId, 'phone\n0612360003\n');
    expect(national).toMatchObject({ invalid: 1 });
    expect(await errorsCsv(national.id)).toContain('international format');
  });

  it('refuses hostile uploads with a clear problem, storing and importing nothing', async () => {
    const listId = await newList();
    const before = spoolFiles().length;
    const cases: [string | Buffer, string, number, string][] = [
      [
        `phone,name\n${mobiles(0, 10_000)
          .map((p) => `${p},x`)
          .join('\n')}\n`,
        'text/csv',
        413,
        'import_too_large',
      ],
      ['name,email\nAna,a@b.c\n', 'text/csv', 400, 'csv_missing_phone_column'],
      [
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48]),
        'text/csv',
        400,
        'invalid_csv',
      ],
      [
        Buffer.concat([Buffer.from('ph'), Buffer.from([0xff, 0xfe]), Buffer.from('one\n+33612370001\n')]),
        'text/csv',
        400,
        'invalid_csv',
      ],
      ['', 'text/csv', 400, 'invalid_csv'],
      ['\r\n\r\n', 'text/csv', 400, 'invalid_csv'],
      ['x'.repeat(70 * 1024), 'text/csv', 400, 'invalid_csv'],
      ['{"phone":"+33612370001"}', 'application/json', 415, 'unsupported_media_type'],
      ['phone\n+33612370001\n', 'text/plain', 415, 'unsupported_media_type'],
    ];
    for (const [body, type, status, code] of cases) {
      const res = await upload(listId, body, '', type);
      expect(res.statusCode, `${code}: ${res.body}`).toBe(status);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.json().code).toBe(code);
    }
    const badCountry = await upload(listId, 'phone\n0612370001\n', '?default_country=XX');
    expect(badCountry.json()).toMatchObject({ code: 'invalid_field', field: 'default_country' });
    expect((await upload(listId, 'phone\n', '?surprise=1')).statusCode).toBe(400);
    expect((await upload('lst_01JAAAAAAAAAAAAAAAAAAAAAAA', 'phone\n+33612370001\n')).statusCode).toBe(404);
    expect(await count('imports', listId)).toBe(0);
    expect(await count('list_members', listId)).toBe(0);
    expect((await api('GET', `/v1/lists/${listId}`)).json().member_count).toBe(0);
    expect(spoolFiles().length).toBe(before);
  });

  it('reports broken rows inside a file and fails clearly on an unterminated quote, keeping the rows before', async () => {
    const listId = await newList();
    const onlyHeader = await importFile(listId, 'phone;name\r\n');
    expect(onlyHeader).toMatchObject({ status: 'completed', total: 0, imported: 0 });
    const badBytes = Buffer.concat([
      Buffer.from('phone,name\n+33612380001,ok\n+33612380002,'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('\n'),
    ]);
    const binary = await importFile(listId, badBytes);
    expect(binary).toMatchObject({ status: 'completed', imported: 1, invalid: 1 });
    expect(await errorsCsv(binary.id)).toContain('not UTF-8');
    const long = await importFile(
      listId,
      `phone,note\n+33612380003,${'y'.repeat(5000)}\n+33612380004,short\n`,
    );
    expect(long).toMatchObject({ status: 'completed', imported: 1, invalid: 1 });
    const unclosed = await importFile(
      listId,
      'phone,name\n+33612380005,Ana\n+33612380006,"Bob\n+33612380007,Cy\n',
    );
    expect(unclosed).toMatchObject({ status: 'failed', error_code: 'invalid_csv', imported: 1 });
    expect(unclosed.error).toMatch(/line 3: a quoted value is never closed/);
    expect((await api('GET', `/v1/lists/${listId}`)).json().member_count).toBe(
      await count('list_members', listId),
    );
    await expect.poll(spoolFiles).toEqual([]); // removed once the final status has committed
  });

  it('keeps imports to their tenant', async () => {
    const listId = await newList();
    const done = await importFile(listId, 'phone\n+33612390001\nbad\n');
    for (const url of [`/v1/imports/${done.id}`, `/v1/imports/${done.id}/errors`]) {
      const res = await api('GET', url, undefined, otherKey);
      expect(res.statusCode).toBe(404);
      expect(res.json().code).toBe('not_found');
    }
    expect((await upload(listId, 'phone\n+33612390002\n', '', 'text/csv', otherKey)).statusCode).toBe(404);
    const mine = (await api('GET', `/v1/imports?list_id=${listId}`)).json();
    expect(mine.data.map((i: { id: string }) => i.id)).toEqual([done.id]);
    expect((await api('GET', '/v1/imports', undefined, otherKey)).json().data).toEqual([]);
  });
});

describe.each(databaseKinds)('long CSV imports on $name', (kind) => {
  const rows = 8_000;
  const csv = `phone,first_name\n${mobiles(1_000_000, rows)
    .map((p, i) => `${p},N${i}`)
    .join('\n')}\n`;

  /** A tenant, a list, and the upload of `csv` into it (answered once stored). */
  async function startBigImport(t: TestApp) {
    const { apiKey } = await t.tenant();
    const listId = (
      await t.app.http.inject({
        method: 'POST',
        url: '/v1/lists',
        headers: bearer(apiKey),
        payload: { name: 'Big' },
      })
    ).json().id as string;
    const res = await t.app.http.inject({
      method: 'POST',
      url: `/v1/lists/${listId}/import`,
      headers: { ...bearer(apiKey), 'content-type': 'text/csv' },
      payload: csv,
    });
    return { apiKey, listId, res };
  }

  it('shows progress while running, and keeps the list consistent with the counts at every poll', async () => {
    const t = await startTestApp(kind, { imports: { chunk_rows: 100 } });
    try {
      const { apiKey, listId, res } = await startBigImport(t);
      expect(res.statusCode).toBe(202);
      expect(res.json().status).toBe('running');
      const partial: number[] = [];
      for (;;) {
        const view = (
          await t.app.http.inject({ url: `/v1/imports/${res.json().id}`, headers: bearer(apiKey) })
        ).json();
        const list = (
          await t.app.http.inject({ url: `/v1/lists/${listId}`, headers: bearer(apiKey) })
        ).json();
        if (view.status !== 'running') {
          expect(view).toMatchObject({ status: 'completed', total: rows, imported: rows });
          expect(list.member_count).toBe(rows);
          break;
        }
        // Counts and members are committed together: a reader never sees one without the other.
        expect(list.member_count).toBeGreaterThanOrEqual(view.imported);
        if (view.total > 0) partial.push(view.total);
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(partial.length).toBeGreaterThan(0);
      expect(partial.some((n) => n < rows)).toBe(true);
    } finally {
      await t.close();
    }
  }, 120_000); // on a 2-core machine shared with other suites

  for (const spoolSurvives of [true, false]) {
    it(`survives a stop mid-import (${spoolSurvives ? 'resumed from its spool file' : 'marked failed without it'})`, async () => {
      const t = await startTestApp(kind, { imports: { chunk_rows: 100, orphan_after_seconds: 0 } });
      let second: Awaited<ReturnType<typeof buildApp>> | undefined;
      try {
        const { listId, res } = await startBigImport(t);
        const importId = res.json().id;
        const read = (app: typeof t.app) =>
          Promise.all([
            app.store.db
              .selectFrom('imports')
              .selectAll()
              .where('id', '=', importId)
              .executeTakeFirstOrThrow(),
            app.store.db
              .selectFrom('lists')
              .select('member_count')
              .where('id', '=', listId)
              .executeTakeFirstOrThrow(),
            app.store.db
              .selectFrom('list_members')
              .select((eb) => eb.fn.countAll().as('n'))
              .where('list_id', '=', listId)
              .executeTakeFirstOrThrow(),
          ]);
        for (;;) {
          const [imp] = await read(t.app);
          if (Number(imp.total) >= 1000) break;
          await new Promise((r) => setTimeout(r, 2));
        }
        await t.app.close();
        const spool = join(t.config.data_dir, 'imports', `${importId}.csv`);
        expect(existsSync(spool)).toBe(true);
        if (!spoolSurvives) {
          const { rmSync } = await import('node:fs');
          rmSync(spool);
        }
        second = await buildApp(t.config, { logger: createLogger('silent') });
        const [stopped, stoppedList, stoppedMembers] = await read(second);
        expect(stopped.status).toBe('running');
        expect(Number(stopped.total)).toBeLessThan(rows);
        expect(Number(stoppedList.member_count)).toBe(Number(stoppedMembers.n));
        expect(Number(stoppedList.member_count)).toBe(Number(stopped.imported));
        await second.start();
        let final = stopped;
        for (let i = 0; i < 1000 && final.status === 'running'; i++) {
          await new Promise((r) => setTimeout(r, 20));
          [final] = await read(second);
        }
        const [, list, memberRows] = await read(second);
        expect(Number(list.member_count)).toBe(Number(memberRows.n));
        expect(Number(list.member_count)).toBe(Number(final.imported));
        if (spoolSurvives) {
          expect(final).toMatchObject({
            status: 'completed',
            total: rows,
            imported: rows,
            invalid: 0,
            duplicates: 0,
          });
        } else {
          expect(final).toMatchObject({ status: 'failed', error_code: 'import_interrupted' });
          expect(final.error).toMatch(/upload the file again/);
          expect(Number(final.total)).toBe(Number(stopped.total));
        }
        // Removed once the final status is committed (readers may see that status a moment before).
        await expect.poll(() => existsSync(spool)).toBe(false);
      } finally {
        await second?.close();
        await t.db.drop();
      }
    }, 120_000);
  }
});
