import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, startTestApp, type TestApp } from './helpers/app.js';
import { databaseKinds } from './helpers/databases.js';

/** Contacts and lists through the HTTP API, on both databases. */
describe.each(databaseKinds)('contacts and lists on $name', (kind) => {
  let t: TestApp;
  let key: string;
  let otherKey: string;

  beforeAll(async () => {
    t = await startTestApp(kind);
    key = (await t.tenant('Acme')).apiKey;
    otherKey = (await t.tenant('Other')).apiKey;
  });
  afterAll(() => t.close());

  const call = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown, apiKey = key) =>
    t.app.http.inject({
      method,
      url,
      headers: bearer(apiKey),
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });
  const newList = async (name = 'Customers') =>
    (await call('POST', '/v1/lists', { name })).json().id as string;
  const memberCount = async (listId: string) =>
    (await call('GET', `/v1/lists/${listId}`)).json().member_count;
  const realCount = async (listId: string) =>
    Number(
      (
        await t.app.store.db
          .selectFrom('list_members')
          .select((eb) => eb.fn.countAll().as('n'))
          .where('list_id', '=', listId)
          .executeTakeFirstOrThrow()
      ).n,
    );

  it('creates a contact with a normalised number and a derived time zone', async () => {
    const res = await call('POST', '/v1/contacts', {
      phone: '06 12 34 56 78',
      country: 'FR',
      first_name: ' Marie ',
      attributes: { plan: 'gold', visits: 3, vip: true },
    });
    expect(res.statusCode).toBe(201);
    const c = res.json();
    expect(c.id).toMatch(/^ct_[0-9A-Z]{26}$/);
    expect(c).toMatchObject({
      phone: '+33612345678',
      country: 'FR',
      first_name: 'Marie',
      last_name: null,
      timezone: 'Europe/Paris',
      attributes: { plan: 'gold', visits: 3, vip: true },
    });
    expect(res.headers.location).toBe(`/v1/contacts/${c.id}`);
    expect((await call('GET', `/v1/contacts/${c.id}`)).json()).toEqual(c);
  });

  it('derives the main zone of a country with several, and keeps an explicit one', async () => {
    const us = (await call('POST', '/v1/contacts', { phone: '+12015550123' })).json();
    expect(us.timezone).toBe('America/New_York');
    const au = (
      await call('POST', '/v1/contacts', { phone: '+61412345678', timezone: 'Australia/Perth' })
    ).json();
    expect(au.timezone).toBe('Australia/Perth');
  });

  it('refuses a number that is already a contact with 409 naming the existing id', async () => {
    const first = (await call('POST', '/v1/contacts', { phone: '+33612000001' })).json();
    const res = await call('POST', '/v1/contacts', { phone: '0612000001', country: 'FR' });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ code: 'contact_exists', field: 'phone' });
    expect(res.json().detail).toContain(first.id);
    // Another tenant may have the same number.
    expect((await call('POST', '/v1/contacts', { phone: '+33612000001' }, otherKey)).statusCode).toBe(201);
  });

  it('refuses bad input with a specific problem and writes nothing', async () => {
    const before = (await call('GET', '/v1/contacts?limit=500')).json().data.length;
    const cases: [Record<string, unknown>, string, string | undefined][] = [
      [{ phone: 'not a number' }, 'invalid_phone_number', 'phone'],
      [{ phone: '0612345678' }, 'invalid_phone_number', 'phone'],
      [{ phone: '+33140000000' }, 'phone_number_not_mobile', 'phone'],
      [{ phone: '+33612000099', timezone: 'Mars/Olympus' }, 'invalid_field', 'timezone'],
      [{ phone: '+33612000099', attributes: { nested: { a: 1 } } }, 'invalid_field', undefined],
      [{ phone: '+33612000099', list_ids: ['lst_01JAAAAAAAAAAAAAAAAAAAAAAA'] }, 'not_found', 'list_ids'],
      [{ phone: '+33612000099', colour: 'red' }, 'unknown_field', undefined],
      [{ phone: '+33612000099', attributes: { ['x'.repeat(65)]: 1 } }, 'invalid_field', undefined],
    ];
    for (const [body, code, field] of cases) {
      const res = await call('POST', '/v1/contacts', body);
      expect(res.statusCode, JSON.stringify(body)).toBeGreaterThanOrEqual(400);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.json().code, JSON.stringify(body)).toBe(code);
      if (field) expect(res.json().field).toBe(field);
    }
    expect((await call('GET', '/v1/contacts?limit=500')).json().data.length).toBe(before);
  });

  it('patches fields, merges attributes, and re-derives the zone when the country changes', async () => {
    const c = (
      await call('POST', '/v1/contacts', { phone: '+33612000002', attributes: { a: 1, b: 'x' } })
    ).json();
    const res = await call('PATCH', `/v1/contacts/${c.id}`, {
      last_name: 'Durand',
      attributes: { b: null, c: true },
      phone: '+4915112345678',
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      phone: '+4915112345678',
      country: 'DE',
      last_name: 'Durand',
      timezone: 'Europe/Berlin',
      attributes: { a: 1, c: true },
    });
    const taken = await call('PATCH', `/v1/contacts/${c.id}`, { phone: '+33612345678' });
    expect(taken.statusCode).toBe(409);
    expect(taken.json().code).toBe('contact_exists');
    expect((await call('PATCH', `/v1/contacts/${c.id}`, { timezone: 'Nowhere/Land' })).json().code).toBe(
      'invalid_field',
    );
  });

  it('keeps tenants apart: another tenant gets 404 everywhere', async () => {
    const c = (await call('POST', '/v1/contacts', { phone: '+33612000003' })).json();
    const listId = await newList();
    for (const [method, url, body] of [
      ['GET', `/v1/contacts/${c.id}`],
      ['PATCH', `/v1/contacts/${c.id}`, { first_name: 'x' }],
      ['DELETE', `/v1/contacts/${c.id}`],
      ['GET', `/v1/lists/${listId}`],
      ['PATCH', `/v1/lists/${listId}`, { name: 'x' }],
      ['GET', `/v1/lists/${listId}/contacts`],
      ['POST', `/v1/lists/${listId}/contacts`, { contact_ids: [c.id] }],
      ['DELETE', `/v1/lists/${listId}`],
    ] as const) {
      const res = await call(method, url, body, otherKey);
      expect(res.statusCode, `${method} ${url}`).toBe(404);
      expect(res.json().code).toBe('not_found');
    }
    // The other tenant cannot add our contact to its own list either.
    const theirs = (await call('POST', '/v1/lists', { name: 'Theirs' }, otherKey)).json().id;
    const res = await call('POST', `/v1/lists/${theirs}/contacts`, { contact_ids: [c.id] }, otherKey);
    expect(res.statusCode).toBe(404);
    expect(res.json().field).toBe('contact_ids/0');
    expect(
      (await call('GET', `/v1/lists?limit=500`, undefined, otherKey))
        .json()
        .data.map((l: { id: string }) => l.id),
    ).not.toContain(listId);
    expect((await call('GET', `/v1/contacts/${c.id}`)).statusCode).toBe(200);
  });

  it('keeps member_count right through adds, repeats, removals and deletions', async () => {
    const listA = await newList('A');
    const listB = await newList('B');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await call('POST', '/v1/contacts', {
        phone: `+3361100000${i}`,
        list_ids: i < 2 ? [listA] : [],
      });
      ids.push(res.json().id);
    }
    expect(await memberCount(listA)).toBe(2);
    const add = await call('POST', `/v1/lists/${listA}/contacts`, {
      contact_ids: [ids[0], ids[1], ids[2], ids[2]],
    });
    expect(add.statusCode).toBe(200);
    expect(add.json()).toMatchObject({ added: 1, already_members: 2, list: { member_count: 3 } });
    // Idempotent.
    expect((await call('POST', `/v1/lists/${listA}/contacts`, { contact_ids: [ids[2]] })).json().added).toBe(
      0,
    );
    await call('POST', `/v1/lists/${listB}/contacts`, { contact_ids: ids });
    expect(await memberCount(listB)).toBe(5);
    // A contact in both lists leaves both when deleted.
    expect((await call('DELETE', `/v1/contacts/${ids[0]}`)).statusCode).toBe(204);
    expect((await call('GET', `/v1/contacts/${ids[0]}`)).statusCode).toBe(404);
    expect(await memberCount(listA)).toBe(2);
    expect(await memberCount(listB)).toBe(4);
    expect((await call('DELETE', `/v1/lists/${listB}/contacts/${ids[1]}`)).statusCode).toBe(204);
    expect((await call('DELETE', `/v1/lists/${listB}/contacts/${ids[1]}`)).statusCode).toBe(404);
    expect(await memberCount(listB)).toBe(3);
    for (const l of [listA, listB]) expect(await memberCount(l)).toBe(await realCount(l));
    // An unknown contact id changes nothing.
    const bad = await call('POST', `/v1/lists/${listA}/contacts`, { contact_ids: [ids[3], 'ct_nope'] });
    expect(bad.statusCode).toBe(404);
    expect(await memberCount(listA)).toBe(2);
    // Deleting a list keeps its contacts.
    expect((await call('DELETE', `/v1/lists/${listB}`)).statusCode).toBe(204);
    expect((await call('GET', `/v1/lists/${listB}`)).statusCode).toBe(404);
    expect(await realCount(listB)).toBe(0);
    expect((await call('GET', `/v1/contacts/${ids[3]}`)).statusCode).toBe(200);
    expect(await memberCount(listA)).toBe(2);
  });

  it('pages contacts, lists and members with cursors, and filters by list and number', async () => {
    const listId = await newList('Paged');
    const created: string[] = [];
    for (let i = 0; i < 7; i++) {
      created.push(
        (await call('POST', '/v1/contacts', { phone: `+3361300000${i}`, list_ids: [listId] })).json().id,
      );
    }
    const walk = async (url: string) => {
      const seen: string[] = [];
      let next: string | null = null;
      let pages = 0;
      do {
        const sep = url.includes('?') ? '&' : '?';
        const res = await call('GET', `${url}${sep}limit=3${next ? `&cursor=${next}` : ''}`);
        expect(res.statusCode).toBe(200);
        seen.push(...res.json().data.map((d: { id: string }) => d.id));
        next = res.json().next_cursor;
        pages++;
      } while (next);
      return { seen, pages };
    };
    const members = await walk(`/v1/lists/${listId}/contacts`);
    expect(members.seen).toEqual(created);
    expect(members.pages).toBe(3);
    expect((await walk(`/v1/contacts?list_id=${listId}`)).seen).toEqual(created);
    const byPhone = (await call('GET', '/v1/contacts?phone=0613000003&country=FR')).json();
    expect(byPhone.data.map((d: { id: string }) => d.id)).toEqual([created[3]]);
    const all = await walk('/v1/contacts');
    expect(all.seen).toEqual([...all.seen].sort());
    expect(all.seen).toEqual(expect.arrayContaining(created));
    const lists = await walk('/v1/lists');
    expect(lists.seen).toContain(listId);
    const bad = await call('GET', '/v1/contacts?cursor=garbage');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('invalid_cursor');
    expect((await call('GET', '/v1/contacts?limit=0')).statusCode).toBe(400);
  });

  it('creates, renames and validates lists', async () => {
    const res = await call('POST', '/v1/lists', { name: 'Newsletter', description: 'Weekly' });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ name: 'Newsletter', description: 'Weekly', member_count: 0 });
    expect(res.json().id).toMatch(/^lst_/);
    const id = res.json().id;
    expect(
      (await call('PATCH', `/v1/lists/${id}`, { name: 'Letters', description: null })).json(),
    ).toMatchObject({
      name: 'Letters',
      description: null,
    });
    for (const body of [{}, { name: '' }, { name: '   ' }, { name: 'x', other: 1 }]) {
      const bad = await call('POST', '/v1/lists', body);
      expect(bad.statusCode, JSON.stringify(body)).toBe(400);
    }
    expect((await call('PATCH', `/v1/lists/${id}`, { name: ' ' })).json().code).toBe('invalid_field');
    expect((await call('GET', '/v1/lists/lst_01JAAAAAAAAAAAAAAAAAAAAAAA')).statusCode).toBe(404);
  });

  it('requires an API key', async () => {
    const res = await t.app.http.inject({ method: 'GET', url: '/v1/contacts' });
    expect(res.statusCode).toBe(401);
  });
});
