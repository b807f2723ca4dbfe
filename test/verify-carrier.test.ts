import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../src/shared/logger.js';
import { verifySignature } from '../src/webhooks/signature.js';
import { bearer } from './helpers/app.js';
import { type CarrierRig, startCarrierRig, waitBound } from './helpers/carrier.js';
import { databaseKinds } from './helpers/databases.js';
import { WebhookReceiver } from './helpers/receiver.js';

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Verify over real SMPP: the code the carrier receives is the one that approves. */
describe.each(databaseKinds)('Verify through a carrier on $name', (kind) => {
  let rig: CarrierRig | null = null;
  let receiver: WebhookReceiver | null = null;
  afterEach(async () => {
    await rig?.close();
    await receiver?.stop();
    rig = null;
    receiver = null;
  });

  it('the SMS reaching the carrier carries the code; checking it approves, with a signed webhook', async () => {
    receiver = new WebhookReceiver();
    const url = await receiver.start();
    rig = await startCarrierRig(kind);
    const tenant = await rig.t.tenant('Luigi', url);
    await waitBound(rig);
    const http = rig.t.app.http;

    const started = await http.inject({
      method: 'POST',
      url: '/v1/verifications',
      headers: bearer(tenant.apiKey),
      payload: { to: '+33612345678', from: 'Luigi' },
    });
    expect(started.statusCode, started.body).toBe(201);
    const v = started.json();
    await rig.waitForStatus([v.message_id], ['delivered']);
    const submit = rig.sim.received.find((r) => r.destination === '33612345678')!;
    expect(submit).toMatchObject({ source: 'Luigi', udh: null });
    const code = /^Your verification code is (\d{6})\. It expires in 5 min\.$/.exec(submit.text)?.[1];
    expect(code, submit.text).toBeDefined();

    const checked = await http.inject({
      method: 'POST',
      url: `/v1/verifications/${v.id}/check`,
      headers: bearer(tenant.apiKey),
      payload: { code },
    });
    expect(checked.json()).toMatchObject({ status: 'approved', valid: true });

    const approved = await until('the verification.approved webhook', () =>
      receiver!.requests.find((r) => JSON.parse(r.body).type === 'verification.approved'),
    );
    expect(JSON.parse(approved.body)).toMatchObject({
      id: expect.stringMatching(/^evt_/),
      type: 'verification.approved',
      data: { id: v.id, status: 'approved', to: '+33612345678' },
    });
    expect(
      verifySignature(tenant.webhookSecret, approved.body, String(approved.headers['relais-signature']), {
        nowSeconds: Date.now() / 1000,
      }),
    ).toBe(true);

    // The message is an ordinary otp message, delivered; its text is shown masked.
    const message = (
      await http.inject({ url: `/v1/messages/${v.message_id}`, headers: bearer(tenant.apiKey) })
    ).json();
    expect(message).toMatchObject({
      status: 'delivered',
      lane: 'otp',
      client_ref: v.id,
      text: 'Your verification code is ******. It expires in 5 min.',
    });
    // Once sent, the sealed text is wiped by housekeeping.
    const upkeep = await rig.t.app.housekeeping.runOnce();
    expect(upkeep.verify?.sealedWiped).toBeGreaterThanOrEqual(1);
    const row = await rig.t.app.store.db
      .selectFrom('messages')
      .select('sealed_body')
      .where('id', '=', v.message_id)
      .executeTakeFirstOrThrow();
    expect(row.sealed_body).toBeNull();
  });
});

/**
 * No code anywhere but in the SMS: not in logs (captured at trace level), API answers (Verify's and
 * the message API's), webhook bodies, or any database column other than the hash and the sealed text.
 */
describe.each(databaseKinds)('Verify never reveals a code on $name', (kind) => {
  it('shows codes only to the carrier', async () => {
    const receiver = new WebhookReceiver();
    const url = await receiver.start();
    let logs = '';
    const destination = new Writable({
      write(chunk, _encoding, done) {
        logs += chunk.toString();
        done();
      },
    });
    const rig = await startCarrierRig(
      kind,
      { seed: 7 },
      {},
      { log: { level: 'trace' }, verify: { resend_cooldown_seconds: 0 } },
      { logger: createLogger('trace', destination) },
    );
    const { app } = rig.t;
    const sim = rig.sim;
    const answers: string[] = [];
    try {
      const tenant = await app.tenants.create({ name: 'Leaky?', webhookUrl: url });
      const headers = bearer(tenant.api_key);
      const call = async (method: 'GET' | 'POST', path: string, payload?: Record<string, unknown>) => {
        const res = await app.http.inject({ method, url: path, headers, ...(payload ? { payload } : {}) });
        answers.push(`${method} ${path} ${res.statusCode} ${JSON.stringify(res.headers)} ${res.body}`);
        return res;
      };
      await until('a bind', () =>
        app.carriers.connectors.get('carrier-a')!.boundTransmitters > 0 ? true : undefined,
      );
      const codeSentFor = (messageId: string) =>
        until(`the SMS of ${messageId}`, async () => {
          const part = await app.store.db
            .selectFrom('message_parts')
            .select('carrier_id')
            .where('message_id', '=', messageId)
            .executeTakeFirst();
          const sms = part && sim.received.find((r) => r.messageId === part.carrier_id);
          return sms ? /\b(\d{10})\b/.exec(sms.text)?.[1] : undefined;
        });

      const started = await call('POST', '/v1/verifications', { to: '+33612345678', code_length: 10 });
      expect(started.statusCode).toBe(201);
      const v = started.json();
      const first = await codeSentFor(v.message_id);
      const wrong = first === '0123456789' ? '9876543210' : '0123456789';
      expect((await call('POST', `/v1/verifications/${v.id}/check`, { code: wrong })).json().valid).toBe(
        false,
      );
      const resent = await call('POST', `/v1/verifications/${v.id}/resend`);
      expect(resent.statusCode, resent.body).toBe(200);
      const second = await codeSentFor(resent.json().message_id);
      const codes = [first, second];
      expect(second).not.toBe(first);
      expect((await call('POST', `/v1/verifications/${v.id}/check`, { code: first })).json().valid).toBe(
        false,
      );
      expect((await call('POST', `/v1/verifications/${v.id}/check`, { code: second })).json()).toMatchObject({
        status: 'approved',
        valid: true,
      });
      await call('POST', `/v1/verifications/${v.id}/check`, { code: second });
      // A failed one too, so that every event type is looked at.
      const failing = await call('POST', '/v1/verifications', { to: '+33612345679', code_length: 10 });
      const third = await codeSentFor(failing.json().message_id);
      codes.push(third);
      const wrong3 = third === wrong ? '5555555555' : wrong;
      for (let i = 0; i < 5; i++)
        await call('POST', `/v1/verifications/${failing.json().id}/check`, { code: wrong3 });

      const messageIds = [v.message_id, resent.json().message_id, failing.json().message_id];
      // Every message delivered (submitted + delivered each) and the two verification events sent.
      await receiver.waitFor(2 * messageIds.length + 2);
      await call('GET', `/v1/verifications/${v.id}`);
      await call('GET', `/v1/verifications/${failing.json().id}`);
      for (const id of messageIds) await call('GET', `/v1/messages/${id}`);
      await call('GET', '/v1/messages');
      await call('GET', `/v1/messages?client_ref=${v.id}`);
      const events = (await call('GET', '/v1/webhook-events')).json().data as { id: string }[];
      for (const e of events) await call('GET', `/v1/webhook-events/${e.id}`);
      await call('GET', '/v1/verify/stats');
      await app.housekeeping.runOnce();

      const bodies = receiver.requests.map((r) => r.body);
      const types = bodies.map((b) => JSON.parse(b).type).sort();
      expect(types.filter((t) => t.startsWith('verification.'))).toEqual([
        'verification.approved',
        'verification.failed',
      ]);

      const tables = [
        'tenants',
        'api_keys',
        'messages',
        'message_parts',
        'message_events',
        'queue',
        'webhook_events',
        'webhook_attempts',
        'idempotency_keys',
        'verifications',
        'rate_limits',
        'verify_settings',
      ] as const;
      const rows: string[] = [];
      for (const table of tables) {
        for (const row of await app.store.db.selectFrom(table).selectAll().execute()) {
          const { code_hash, code_salt, sealed_body, ...rest } = row as Record<string, unknown>;
          // Sealed texts are wiped once sent; the hashes are what they should be.
          if (table === 'messages') expect(sealed_body).toBeNull();
          if (table === 'verifications') expect(code_hash).toMatch(/^[0-9a-f]{64}$/);
          void code_salt;
          rows.push(`${table} ${JSON.stringify(rest)}`);
        }
      }
      await rig.close();

      // The codes did reach the carrier…
      const sent = sim.received.map((r) => r.text).join('\n');
      for (const code of codes) expect(sent).toContain(code);
      // …and nothing else.
      expect(logs.length).toBeGreaterThan(1000);
      expect(logs).toContain('verify');
      for (const code of codes) {
        for (const [where, text] of [
          ['logs', logs],
          ['API answers', answers.join('\n')],
          ['webhook bodies', bodies.join('\n')],
          ['database', rows.join('\n')],
        ] as const) {
          expect(text.includes(code), `code found in ${where}`).toBe(false);
        }
      }
      expect(answers.join('\n')).toContain('*'.repeat(10));
    } finally {
      await rig.close().catch(() => {});
      await receiver.stop();
    }
  });
});
