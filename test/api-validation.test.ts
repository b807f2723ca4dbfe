import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, type ErrorCode } from '../src/shared/errors.js';
import { bearer, startTestApp, type TestApp } from './helpers/app.js';
import { databaseKinds } from './helpers/databases.js';

/**
 * Every kind of bad input to the send endpoints is answered with an RFC 9457 problem carrying a stable
 * code (and the field at fault), and nothing is written: no message, no queue entry, no idempotency
 * record. The edge cases that must be ACCEPTED sit next to the ones that must not.
 */

const GOOD = { to: '+33612345678', from: 'Pizzeria', text: 'Your pizza is on its way!' };
const JSON_TYPE = { 'content-type': 'application/json' };
const HOUR = 3600_000;
const DAY = 24 * HOUR;

interface Case {
  name: string;
  body: unknown;
  status?: number;
  code: ErrorCode;
  /** The field named by the problem; null when the problem must name none. */
  field: string | null;
  detail?: RegExp;
}

/** An ISO time with a zone, `ms` from now. */
const inMs = (ms: number) => new Date(Date.now() + ms).toISOString();

/** Asserts an RFC 9457 problem with our extensions; returns its body. */
function expectProblem(
  res: LightMyRequestResponse,
  status: number,
  code: ErrorCode,
  field: string | null,
): Record<string, unknown> {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json\b/);
  const body = res.json() as Record<string, unknown>;
  expect(body).toMatchObject({
    type: `urn:relais:problem:${code}`,
    status,
    code,
    title: ERROR_CODES[code].title,
  });
  expect(typeof body.detail).toBe('string');
  expect((body.detail as string).length).toBeGreaterThan(0);
  if (field === null) expect(body).not.toHaveProperty('field');
  else expect(body.field).toBe(field);
  return body;
}

describe.each(databaseKinds)('request validation on $name', (kind) => {
  let t: TestApp;
  /** Small body limit and no private callback targets. */
  let strict: TestApp;
  let key: string;
  let strictKey: string;

  beforeAll(async () => {
    [t, strict] = await Promise.all([
      startTestApp(kind),
      startTestApp(kind, {
        http: { port: 0, body_limit_bytes: 2048 },
        webhooks: { allow_private_targets: false },
      }),
    ]);
    key = (await t.tenant('Pizzeria')).apiKey;
    strictKey = (await strict.tenant('Strict')).apiKey;
  });
  afterAll(async () => {
    await Promise.all([t?.close(), strict?.close()]);
  });

  async function rowCounts(app: TestApp) {
    const count = async (table: 'messages' | 'queue' | 'idempotency_keys') => {
      const row = await app.app.store.db
        .selectFrom(table)
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      return Number(row.n);
    };
    return {
      messages: await count('messages'),
      queue: await count('queue'),
      idempotency_keys: await count('idempotency_keys'),
    };
  }

  /** Sends the request and asserts it is refused with the given problem and that nothing was written. */
  async function expectRejected(
    request: InjectOptions,
    status: number,
    code: ErrorCode,
    field: string | null,
    app: TestApp = t,
  ): Promise<Record<string, unknown>> {
    const before = await rowCounts(app);
    const res = await app.app.http.inject(request);
    const problem = expectProblem(res, status, code, field);
    expect(await rowCounts(app)).toEqual(before);
    return problem;
  }

  /** Sends the request and asserts one message (and its queue entry) was accepted; returns the answer. */
  async function expectAccepted(request: InjectOptions, app: TestApp = t) {
    const before = await rowCounts(app);
    const res = await app.app.http.inject(request);
    expect(res.statusCode, res.body).toBe(202);
    expect(res.headers['content-type']).toMatch(/^application\/json\b/);
    const after = await rowCounts(app);
    expect(after.messages).toBe(before.messages + 1);
    expect(after.queue).toBe(before.queue + 1);
    return res.json() as Record<string, unknown>;
  }

  const send = (body: unknown, headers: Record<string, string> = {}, apiKey = key): InjectOptions => ({
    method: 'POST',
    url: '/v1/messages',
    headers: { ...bearer(apiKey), ...headers },
    payload: body as object,
  });
  const sendRaw = (payload: string, headers: Record<string, string> = JSON_TYPE): InjectOptions => ({
    method: 'POST',
    url: '/v1/messages',
    headers: { ...bearer(key), ...headers },
    payload,
  });
  const sendBatch = (body: unknown): InjectOptions => ({
    method: 'POST',
    url: '/v1/messages/batch',
    headers: bearer(key),
    payload: body as object,
  });

  describe('the body as a whole', () => {
    it('refuses malformed JSON', async () => {
      await expectRejected(sendRaw('{"to":'), 400, 'malformed_json', null);
    });

    it('refuses an empty body sent as JSON', async () => {
      await expectRejected(sendRaw(''), 400, 'malformed_json', null);
    });

    it.each([
      ['an array', '[]'],
      ['an array of messages', JSON.stringify([GOOD])],
      ['a string', '"hello"'],
      ['a number', '42'],
      ['null', 'null'],
    ])('refuses %s instead of an object', async (_what, payload) => {
      const problem = await expectRejected(sendRaw(payload), 400, 'invalid_request', null);
      expect(problem.detail).toBe('the body must be a JSON object');
    });

    it.each([
      ['text/plain', 'hello'],
      ['text/plain', JSON.stringify(GOOD)],
      ['application/x-www-form-urlencoded', 'to=%2B33612345678&from=Pizzeria&text=hi'],
      ['application/xml', '<message/>'],
    ])('refuses a %s body with 415', async (contentType, payload) => {
      await expectRejected(
        sendRaw(payload, { 'content-type': contentType }),
        415,
        'unsupported_media_type',
        null,
      );
    });

    it('refuses a body larger than http.body_limit_bytes with 413', async () => {
      const body = { ...GOOD, text: 'a'.repeat(3000) };
      await expectRejected(send(body, {}, strictKey), 413, 'body_too_large', null, strict);
      // Just under the limit is fine.
      await expectAccepted(send({ ...GOOD, text: 'a'.repeat(1500) }, {}, strictKey), strict);
    });

    it.each([
      [
        'at the top level',
        `{"__proto__":{"polluted":true},"to":"+33612345678","from":"Pizzeria","text":"hi"}`,
      ],
      [
        'nested',
        `{"to":"+33612345678","from":"Pizzeria","text":"hi","lane":{"__proto__":{"polluted":true}}}`,
      ],
      ['through constructor.prototype', `{"constructor":{"prototype":{"polluted":true}},"text":"hi"}`],
    ])('refuses a prototype pollution attempt %s', async (_where, payload) => {
      await expectRejected(sendRaw(payload), 400, 'malformed_json', null);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });
  });

  describe('fields', () => {
    const cases: Case[] = [
      {
        name: 'an unknown field',
        body: { ...GOOD, priority: 'high' },
        code: 'unknown_field',
        field: 'priority',
      },
      { name: 'a missing to', body: { from: 'Pizzeria', text: 'hi' }, code: 'missing_field', field: 'to' },
      { name: 'a missing from', body: { to: GOOD.to, text: 'hi' }, code: 'missing_field', field: 'from' },
      {
        name: 'a missing text',
        body: { to: GOOD.to, from: 'Pizzeria' },
        code: 'missing_field',
        field: 'text',
      },
      // Wrong JSON types are errors, never coerced.
      { name: 'text as a number', body: { ...GOOD, text: 42 }, code: 'invalid_field', field: 'text' },
      { name: 'text as null', body: { ...GOOD, text: null }, code: 'invalid_field', field: 'text' },
      {
        name: 'to as a number',
        body: { ...GOOD, to: 33612345678 },
        code: 'invalid_phone_number',
        field: 'to',
      },
      {
        name: 'from as an array',
        body: { ...GOOD, from: ['Pizzeria'] },
        code: 'invalid_sender',
        field: 'from',
      },
      {
        name: 'country as a number',
        body: { ...GOOD, country: 33 },
        code: 'invalid_field',
        field: 'country',
      },
      {
        name: 'validity_minutes as a string',
        body: { ...GOOD, validity_minutes: '60' },
        code: 'invalid_validity',
        field: 'validity_minutes',
      },
      // Destinations.
      {
        name: 'a too short number',
        body: { ...GOOD, to: '+331' },
        code: 'invalid_phone_number',
        field: 'to',
      },
      { name: 'a word as number', body: { ...GOOD, to: 'hello' }, code: 'invalid_phone_number', field: 'to' },
      { name: 'an empty number', body: { ...GOOD, to: '' }, code: 'invalid_phone_number', field: 'to' },
      {
        name: 'a French fixed line',
        body: { ...GOOD, to: '+33 1 23 45 67 89' },
        code: 'phone_number_not_mobile',
        field: 'to',
        detail: /fixed line/,
      },
      {
        name: 'a premium-rate number',
        body: { ...GOOD, to: '+33 8 99 23 45 67' },
        code: 'phone_number_not_mobile',
        field: 'to',
      },
      {
        name: 'a national number without country',
        body: { ...GOOD, to: '06 12 34 56 78' },
        code: 'invalid_phone_number',
        field: 'to',
        detail: /country/,
      },
      {
        name: 'an unknown country code',
        body: { ...GOOD, to: '06 12 34 56 78', country: 'XX' },
        code: 'invalid_field',
        field: 'country',
        detail: /ISO 3166/,
      },
      // Sender ids.
      {
        name: 'a 12-character sender',
        body: { ...GOOD, from: 'PizzeriaNapo' },
        code: 'invalid_sender',
        field: 'from',
      },
      { name: 'an emoji sender', body: { ...GOOD, from: 'Pizza🍕' }, code: 'invalid_sender', field: 'from' },
      { name: 'a 2-digit sender', body: { ...GOOD, from: '12' }, code: 'invalid_sender', field: 'from' },
      { name: 'an empty sender', body: { ...GOOD, from: '' }, code: 'invalid_sender', field: 'from' },
      { name: 'a blank sender', body: { ...GOOD, from: '   ' }, code: 'invalid_sender', field: 'from' },
      {
        name: 'a sender with braces',
        body: { ...GOOD, from: 'Pizza{}' },
        code: 'invalid_sender',
        field: 'from',
      },
      // Text.
      { name: 'an empty text', body: { ...GOOD, text: '' }, code: 'empty_text', field: 'text' },
      {
        name: 'a whitespace-only text',
        body: { ...GOOD, text: ' \t\n ' },
        code: 'empty_text',
        field: 'text',
      },
      {
        name: 'a GSM text over 10 segments',
        body: { ...GOOD, text: 'a'.repeat(10 * 153 + 1) },
        code: 'text_too_long',
        field: 'text',
        detail: /11 GSM-7 segments/,
      },
      {
        name: 'a UCS-2 text over 10 segments',
        body: { ...GOOD, text: 'ж'.repeat(10 * 67 + 1) },
        code: 'text_too_long',
        field: 'text',
        detail: /UCS-2/,
      },
      {
        name: 'a text longer than the schema allows',
        body: { ...GOOD, text: 'a'.repeat(10_001) },
        code: 'text_too_long',
        field: 'text',
      },
      // Lane.
      {
        name: 'an unknown lane',
        body: { ...GOOD, lane: 'express' },
        code: 'invalid_lane',
        field: 'lane',
        detail: /"otp", "transactional", "bulk"/,
      },
      // send_at.
      {
        name: 'a send_at that is not ISO',
        body: { ...GOOD, send_at: 'tomorrow at noon' },
        code: 'invalid_send_at',
        field: 'send_at',
      },
      {
        name: 'a send_at without a zone',
        body: { ...GOOD, send_at: inMs(HOUR).slice(0, 19) },
        code: 'invalid_send_at',
        field: 'send_at',
        detail: /with a zone/,
      },
      {
        name: 'a send_at more than 30 days ahead',
        body: { ...GOOD, send_at: inMs(31 * DAY) },
        code: 'invalid_send_at',
        field: 'send_at',
        detail: /30 days/,
      },
      {
        // Date.parse would roll this over to March 1st (and, being past, send it at once).
        name: 'a send_at on a day that does not exist',
        body: { ...GOOD, send_at: '2020-02-30T10:00:00Z' },
        code: 'invalid_send_at',
        field: 'send_at',
      },
      {
        name: 'a send_at at hour 24',
        body: { ...GOOD, send_at: '2020-01-01T24:00:00Z' },
        code: 'invalid_send_at',
        field: 'send_at',
      },
      // validity_minutes.
      {
        name: 'validity_minutes 0',
        body: { ...GOOD, validity_minutes: 0 },
        code: 'invalid_validity',
        field: 'validity_minutes',
      },
      {
        name: 'validity_minutes over a week',
        body: { ...GOOD, validity_minutes: 7 * 24 * 60 + 1 },
        code: 'invalid_validity',
        field: 'validity_minutes',
      },
      {
        name: 'a fractional validity_minutes',
        body: { ...GOOD, validity_minutes: 1.5 },
        code: 'invalid_validity',
        field: 'validity_minutes',
      },
      // callback_url.
      {
        name: 'an ftp callback_url',
        body: { ...GOOD, callback_url: 'ftp://x' },
        code: 'invalid_callback_url',
        field: 'callback_url',
      },
      {
        name: 'a callback_url that is not a URL',
        body: { ...GOOD, callback_url: 'not a url' },
        code: 'invalid_callback_url',
        field: 'callback_url',
      },
      {
        name: 'a callback_url with credentials',
        body: { ...GOOD, callback_url: 'https://user:pw@example.com/hook' },
        code: 'invalid_callback_url',
        field: 'callback_url',
      },
      {
        name: 'a long client_ref',
        body: { ...GOOD, client_ref: 'r'.repeat(129) },
        code: 'invalid_field',
        field: 'client_ref',
      },
    ];

    it.each(cases)('refuses $name', async ({ body, status = 400, code, field, detail }) => {
      const problem = await expectRejected(send(body), status, code, field);
      if (detail) expect(problem.detail).toMatch(detail);
    });

    it.each([
      ['a private address', 'http://10.0.0.1/hook'],
      ['loopback', 'http://127.0.0.1:8080/hook'],
      ['localhost', 'http://localhost/hook'],
    ])('refuses a callback_url at %s when private targets are not allowed', async (_what, url) => {
      await expectRejected(
        send({ ...GOOD, callback_url: url }, {}, strictKey),
        400,
        'callback_url_not_allowed',
        'callback_url',
        strict,
      );
    });

    it('accepts a public callback_url when private targets are not allowed', async () => {
      await expectAccepted(
        send({ ...GOOD, callback_url: 'https://hooks.example.com/sms' }, {}, strictKey),
        strict,
      );
    });

    it.each([
      ['a national number with its country', { to: '06 12 34 56 78', country: 'FR' }],
      ['a national number with a lower-case country', { to: '0612345678', country: 'fr' }],
      ['an E.164 number with spaces', { to: '+33 6 12 34 56 78' }],
      ['a number with the 00 international prefix', { to: '0033612345678' }],
    ])('accepts %s', async (_what, fields) => {
      const answer = await expectAccepted(send({ ...GOOD, ...fields }));
      expect(answer.to).toBe('+33612345678');
    });

    it.each(['Pizzeria', 'PIZZA-42', '+33612345678', '36111', "Joe's Bar"])(
      'accepts the sender id %s',
      async (from) => {
        const answer = await expectAccepted(send({ ...GOOD, from }));
        expect(answer.from).toBe(from);
      },
    );

    it('accepts exactly 10 segments, in GSM-7 and in UCS-2', async () => {
      const gsm = await expectAccepted(send({ ...GOOD, text: 'a'.repeat(10 * 153) }));
      expect(gsm).toMatchObject({ encoding: 'GSM-7', segments: 10, parts: 10 });
      const ucs2 = await expectAccepted(send({ ...GOOD, text: 'ж'.repeat(10 * 67) }));
      expect(ucs2).toMatchObject({ encoding: 'UCS-2', segments: 10, parts: 10 });
    });

    it('sends a past send_at at once, and schedules one 29 days ahead', async () => {
      const past = await expectAccepted(send({ ...GOOD, send_at: inMs(-HOUR) }));
      expect(past).toMatchObject({ status: 'accepted', send_at: null });
      const later = await expectAccepted(send({ ...GOOD, send_at: inMs(29 * DAY) }));
      expect(later.status).toBe('scheduled');
    });

    it('accepts a send_at with an explicit offset', async () => {
      const at = new Date(Date.now() + 2 * HOUR);
      // The same instant written in UTC+02:00.
      const local = new Date(at.getTime() + 2 * HOUR).toISOString().replace('Z', '+02:00');
      const answer = await expectAccepted(send({ ...GOOD, send_at: local }));
      expect(answer.send_at).toBe(at.toISOString());
    });

    it('accepts the validity bounds 1 and 10080 minutes', async () => {
      await expectAccepted(send({ ...GOOD, validity_minutes: 1 }));
      await expectAccepted(send({ ...GOOD, validity_minutes: 7 * 24 * 60 }));
    });
  });

  describe('Idempotency-Key', () => {
    it.each([
      ['non-ASCII', 'clé-42'],
      ['longer than 255 characters', 'k'.repeat(256)],
      ['with a space', 'order 42'],
    ])('refuses a key %s', async (_what, idempotencyKey) => {
      await expectRejected(
        send(GOOD, { 'idempotency-key': idempotencyKey }),
        400,
        'invalid_idempotency_key',
        'Idempotency-Key',
      );
    });

    it('accepts a key of exactly 255 characters', async () => {
      await expectAccepted(send(GOOD, { 'idempotency-key': 'k'.repeat(255) }));
    });
  });

  describe('batches', () => {
    it('refuses 1001 messages', async () => {
      const messages = Array.from({ length: 1001 }, () => GOOD);
      await expectRejected(sendBatch({ messages }), 400, 'batch_too_large', 'messages');
    });

    it('refuses an empty batch', async () => {
      await expectRejected(sendBatch({ messages: [] }), 400, 'batch_empty', 'messages');
    });

    it('refuses a batch whose item 3 has an unknown field, naming the item', async () => {
      const messages = [GOOD, GOOD, GOOD, { ...GOOD, colour: 'red' }];
      const problem = await expectRejected(
        sendBatch({ messages }),
        400,
        'unknown_field',
        'messages/3/colour',
      );
      expect(problem.detail).toContain('colour');
    });

    it('refuses a batch whose item 1 misses a field, naming the item', async () => {
      const messages = [GOOD, { to: GOOD.to, text: 'hi' }];
      await expectRejected(sendBatch({ messages }), 400, 'missing_field', 'messages/1/from');
    });

    it('refuses a batch with a wrong type in an item, naming the item', async () => {
      const messages = [GOOD, GOOD, { ...GOOD, text: 7 }];
      await expectRejected(sendBatch({ messages }), 400, 'invalid_field', 'messages/2/text');
    });

    it.each([
      ['no messages key', {}, 'missing_field', 'messages'],
      ['messages that is not an array', { messages: GOOD }, 'invalid_field', 'messages'],
      ['an unknown top-level field', { messages: [GOOD], dry_run: true }, 'unknown_field', 'dry_run'],
    ] as const)('refuses a batch with %s', async (_what, body, code, field) => {
      await expectRejected(sendBatch(body), 400, code, field);
    });

    it('refuses a batch that is an array', async () => {
      await expectRejected(sendBatch([GOOD]), 400, 'invalid_request', null);
    });

    it('accepts exactly 1000 messages', async () => {
      const before = await rowCounts(t);
      const messages = Array.from({ length: 1000 }, (_, i) => ({ ...GOOD, client_ref: `bulk-${i}` }));
      const res = await t.app.http.inject(sendBatch({ messages }));
      expect(res.statusCode).toBe(202);
      expect(res.json()).toMatchObject({ accepted: 1000, rejected: 0 });
      expect((await rowCounts(t)).messages).toBe(before.messages + 1000);
    });
  });

  describe('routes and query strings', () => {
    it.each([
      ['GET', '/v1/nope'],
      ['POST', '/v1/message'],
      ['GET', '/nothing/here'],
      ['DELETE', '/v1/messages'],
    ] as const)('answers %s %s with a 404 problem', async (method, url) => {
      await expectRejected({ method, url, headers: bearer(key) }, 404, 'not_found', null);
    });

    it.each([
      ['limit=0', 'invalid_field', 'limit'],
      ['limit=501', 'invalid_field', 'limit'],
      ['limit=abc', 'invalid_field', 'limit'],
      ['limit=1.5', 'invalid_field', 'limit'],
      ['sort=asc', 'unknown_field', 'sort'],
      ['status=lost', 'invalid_field', 'status'],
      ['lane=express', 'invalid_lane', 'lane'],
      ['created_after=yesterday', 'invalid_field', 'created_after'],
    ] as const)('refuses GET /v1/messages?%s', async (query, code, field) => {
      await expectRejected(
        { method: 'GET', url: `/v1/messages?${query}`, headers: bearer(key) },
        400,
        code,
        field,
      );
    });

    it('names the allowed values of an enumerated query parameter', async () => {
      const res = await t.app.http.inject({ url: '/v1/messages?status=lost', headers: bearer(key) });
      expect(expectProblem(res, 400, 'invalid_field', 'status').detail).toContain('"delivered"');
    });

    it('accepts the limit bounds 1 and 500', async () => {
      for (const limit of [1, 500]) {
        const res = await t.app.http.inject({ url: `/v1/messages?limit=${limit}`, headers: bearer(key) });
        expect(res.statusCode).toBe(200);
      }
    });
  });
});
