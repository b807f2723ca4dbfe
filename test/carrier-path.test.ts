import { afterEach, describe, expect, it } from 'vitest';
import { CommandStatus } from '../src/smpp/constants.js';
import { verifySignature } from '../src/webhooks/signature.js';
import { bearer } from './helpers/app.js';
import { type CarrierRig, startCarrierRig, waitBound } from './helpers/carrier.js';
import { databaseKinds } from './helpers/databases.js';
import { WebhookReceiver } from './helpers/receiver.js';

/** The carrier path over real TCP against the simulator: HTTP → SMPP → receipt → webhook. */
describe.each(databaseKinds)('carrier path on $name', (kind) => {
  let rig: CarrierRig | null = null;
  let receiver: WebhookReceiver | null = null;
  afterEach(async () => {
    await rig?.close();
    await receiver?.stop();
    rig = null;
    receiver = null;
  });

  it('delivers a message end to end and calls the signed webhook for submitted and delivered', async () => {
    receiver = new WebhookReceiver();
    const url = await receiver.start();
    rig = await startCarrierRig(kind);
    const tenant = await rig.t.tenant('Pizzeria', url);
    await waitBound(rig);
    const id = await rig.send(tenant.apiKey, { client_ref: 'order-1' });
    await rig.waitForStatus([id], ['delivered']);
    await receiver.waitFor(2);
    const events = receiver.requests.map((r) => JSON.parse(r.body));
    expect(events.map((e) => e.data.status)).toEqual(['submitted', 'delivered']);
    for (const r of receiver.requests) {
      expect(
        verifySignature(tenant.webhookSecret, r.body, String(r.headers['relais-signature']), {
          nowSeconds: Date.now() / 1000,
        }),
      ).toBe(true);
    }
    const [submit] = rig.sim.received;
    expect(submit).toMatchObject({
      destination: '33612345678',
      source: 'Pizzeria',
      text: 'Your pizza is on its way',
      udh: null,
    });
    const detail = (
      await rig.t.app.http.inject({ url: `/v1/messages/${id}`, headers: bearer(tenant.apiKey) })
    ).json();
    expect(detail.connector).toBe('carrier-a');
    expect(detail.parts).toEqual([
      {
        part_no: 1,
        connector: 'carrier-a',
        carrier_id: submit!.messageId,
        status: 'delivered',
        error_code: null,
      },
    ]);
  });

  it('sends long messages as UDH-concatenated parts, each tracked, delivered when all parts are', async () => {
    rig = await startCarrierRig(kind);
    const tenant = await rig.t.tenant();
    await waitBound(rig);
    const text = `${'Bonjour '.repeat(40)}€`; // 321 septets: 3 parts
    const id = await rig.send(tenant.apiKey, { text });
    await rig.waitForStatus([id], ['delivered']);
    const parts = rig.sim.received.filter((r) => r.udh);
    expect(parts.map((p) => [p.udh!.seq, p.udh!.total])).toEqual([
      [1, 3],
      [2, 3],
      [3, 3],
    ]);
    expect(new Set(parts.map((p) => p.udh!.reference)).size).toBe(1);
    expect(parts.map((p) => p.text).join('')).toBe(text);
    const detail = (
      await rig.t.app.http.inject({ url: `/v1/messages/${id}`, headers: bearer(tenant.apiKey) })
    ).json();
    expect(detail.parts.map((p: { carrier_id: string }) => p.carrier_id)).toEqual(
      parts.map((p) => p.messageId),
    );
  });

  it('never exceeds the window per bind nor the TPS, measured at the simulator', async () => {
    rig = await startCarrierRig(kind, { submit_response_delay_ms: 30 }, { binds: 2, window: 4, tps: 200 });
    const tenant = await rig.t.tenant();
    await waitBound(rig);
    while (rig.t.app.carriers.connectors.get('carrier-a')!.boundTransmitters < 2)
      await new Promise((r) => setTimeout(r, 10));
    const ids = await rig.sendBulkBatch(tenant.apiKey, 300, 'm');
    await rig.waitForStatus(ids, ['delivered'], 20_000);
    const stats = rig.sim.stats();
    expect(stats.maxOutstanding).toBeLessThanOrEqual(8); // window 4 × 2 binds
    expect(stats.maxOutstanding).toBeGreaterThanOrEqual(4); // and the window is actually used
    expect(stats.maxTpsObserved).toBeLessThanOrEqual(200 + 20); // rate + the bucket's burst (a tenth)
    expect(stats.submitsAccepted).toBe(300);
  });

  it('holds at most max_buffered_parts per connector in memory, whatever its TPS', async () => {
    // The carrier answers nothing for a while: whatever the dispatcher claimed stays held, leased.
    rig = await startCarrierRig(
      kind,
      { submit_response_delay_ms: 3000 },
      { tps: 50_000, window: 10, response_timeout_ms: 5000 },
      { dispatcher: { max_buffered_parts: 300 } },
    );
    const tenant = await rig.t.tenant();
    await waitBound(rig);
    await rig.sendBulkBatch(tenant.apiKey, 1000, 'b');
    const leased = async () =>
      Number(
        (
          await rig.t.app.store.db
            .selectFrom('queue')
            .select((eb) => eb.fn.countAll().as('n'))
            .where('claimed_by', 'is not', null)
            .executeTakeFirstOrThrow()
        ).n,
      );
    await expect.poll(leased).toBeGreaterThanOrEqual(150);
    await new Promise((r) => setTimeout(r, 300)); // several more claim passes
    expect(await leased()).toBeLessThanOrEqual(300); // 1 s of a 50,000 TPS connector would be 50,000
  });

  it('refills its buffer once half of it is used, not at its next poll', async () => {
    // A poll of a minute: once intake stops waking it, only the buffer running low can.
    rig = await startCarrierRig(
      kind,
      {},
      { tps: 50_000, window: 10 },
      { dispatcher: { max_buffered_parts: 100, poll_ms: 60_000 } },
    );
    const tenant = await rig.t.tenant();
    await waitBound(rig);
    const ids = await rig.sendBulkBatch(tenant.apiKey, 1000, 'f');
    await rig.waitForStatus(ids, ['delivered'], 20_000);
  });

  it('loses nothing when the carrier link thread dies mid-flight, and binds again on a new one', async () => {
    rig = await startCarrierRig(kind, { submit_response_delay_ms: 20 }, { window: 10, tps: 2000 });
    const tenant = await rig.t.tenant();
    await waitBound(rig);
    const ids = await rig.sendBulkBatch(tenant.apiKey, 300, 'k');
    const sim = rig.sim;
    await expect.poll(() => sim.received.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(50);
    await rig.t.app.carriers.link.close(); // as if it had crashed: its sessions and submits are gone
    await rig.waitForStatus(ids, ['delivered'], 30_000);
    expect(rig.sim.stats().binds).toBeGreaterThanOrEqual(2);
    const accepted = rig.sim.received.filter((r) => r.status === CommandStatus.ESME_ROK);
    expect(new Set(accepted.map((r) => r.text)).size).toBe(300);
  });

  it('renews the leases of the work it holds, so no other node takes it while it waits', async () => {
    rig = await startCarrierRig(
      kind,
      { submit_response_delay_ms: 2500 },
      { window: 2, response_timeout_ms: 5000 },
      // Its buffer (50) holds all 30: it claims nothing more, so only renewal can keep the leases.
      { dispatcher: { lease_ms: 1000, buffer_seconds: 0.05 } },
    );
    const tenant = await rig.t.tenant();
    await waitBound(rig);
    await rig.sendBulkBatch(tenant.apiKey, 30, 'r');
    await new Promise((r) => setTimeout(r, 1800)); // past the first lease, with a renewal every 333 ms
    const leases = await rig.t.app.store.db
      .selectFrom('queue')
      .select(['claimed_by', 'claimed_until'])
      .execute();
    expect(leases.length).toBe(30); // nothing answered yet: all still queued, all held here
    for (const lease of leases) {
      expect(lease.claimed_by).not.toBeNull();
      expect(lease.claimed_until!).toBeGreaterThan(Date.now());
    }
    const other = await rig.t.app.workQueue.claim({ owner: 'another-node', limit: 100, leaseMs: 30_000 });
    expect(other).toEqual([]);
  });

  it('slows down on ESME_RTHROTTLED without losing or reordering messages', async () => {
    rig = await startCarrierRig(kind, { throttle_tps: 100 }, { tps: 400, window: 20 });
    const tenant = await rig.t.tenant();
    await waitBound(rig);
    const ids = await rig.sendBulkBatch(tenant.apiKey, 300, 'n');
    await rig.waitForStatus(ids, ['delivered'], 30_000);
    const stats = rig.sim.stats();
    expect(stats.submitsThrottled).toBeGreaterThan(0);
    expect(stats.submitsAccepted).toBe(300);
    expect(rig.t.app.carriers.connectors.get('carrier-a')!.throttleEvents).toBeGreaterThan(0);
    // Each message accepted exactly once, in queue order up to the window (20 submits in flight may
    // be answered in any order; a throttled one goes back to its place, not to the end).
    const order = rig.sim.received
      .filter((r) => r.status === CommandStatus.ESME_ROK)
      .map((r) => Number(r.text.slice(1)));
    expect([...order].sort((a, b) => a - b)).toEqual(ids.map((_, i) => i));
    expect(Math.max(...order.map((v, i) => Math.abs(v - i)))).toBeLessThanOrEqual(20);
  });

  it('fails rejected submits with the carrier code, and undelivered receipts with theirs', async () => {
    receiver = new WebhookReceiver();
    const url = await receiver.start();
    rig = await startCarrierRig(kind, { reject_rate: 1, reject_status: CommandStatus.ESME_RINVDSTADR });
    const tenant = await rig.t.tenant('T', url);
    await waitBound(rig);
    const rejected = await rig.send(tenant.apiKey);
    const [row] = await rig.waitForStatus([rejected], ['rejected']);
    expect(row!.error_code).toBe('0x0000000B');
    await receiver.waitFor(1);
    expect(JSON.parse(receiver.requests[0]!.body).data).toMatchObject({
      status: 'rejected',
      error_code: '0x0000000B',
    });
    expect(JSON.parse(receiver.requests[0]!.body).data.error_reason).toMatch(/destination/i);

    rig.sim.setOptions({ reject_rate: 0, undeliverable_rate: 1, undeliverable_error: '034' });
    const undelivered = await rig.send(tenant.apiKey);
    const [row2] = await rig.waitForStatus([undelivered], ['undelivered']);
    expect(row2!.error_code).toBe('034');
  });

  it('resends what was in flight when the carrier drops the connection, and reconnects', async () => {
    rig = await startCarrierRig(kind, { drop_after_submits: 25 }, { window: 5 });
    const tenant = await rig.t.tenant();
    await waitBound(rig);
    const ids: string[] = [];
    for (let i = 0; i < 100; i++) ids.push(await rig.send(tenant.apiKey, { text: `d${i}`, lane: 'bulk' }));
    await rig.waitForStatus(ids, ['delivered'], 30_000);
    const stats = rig.sim.stats();
    expect(stats.connectionsDropped).toBeGreaterThanOrEqual(3);
    expect(stats.binds).toBeGreaterThanOrEqual(4);
    const accepted = rig.sim.received.filter((r) => r.status === CommandStatus.ESME_ROK);
    expect(new Set(accepted.map((r) => r.text)).size).toBe(100);
  });

  it('times out a stalled carrier and retries until everything is delivered', async () => {
    rig = await startCarrierRig(
      kind,
      { stall_every_submits: 20, stall_ms: 600 },
      { response_timeout_ms: 200, window: 5 },
    );
    const tenant = await rig.t.tenant();
    await waitBound(rig);
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) ids.push(await rig.send(tenant.apiKey, { text: `s${i}`, lane: 'bulk' }));
    await rig.waitForStatus(ids, ['delivered'], 30_000);
    expect(rig.sim.stats().stalls).toBeGreaterThanOrEqual(2);
  });

  it.each([
    [
      'hex ids, decimal receipt text, connector on auto',
      { receipt_id_format: 'decimal' },
      { receipt_id_format: 'auto' },
    ],
    [
      'hex ids, decimal receipt text, connector on decimal',
      { receipt_id_format: 'decimal' },
      { receipt_id_format: 'decimal' },
    ],
    ['decimal ids throughout', { message_id_format: 'decimal' }, { receipt_id_format: 'auto' }],
    [
      'a receipt that overtakes its submit_sm_resp',
      { receipt_before_response: true, receipt_delay_ms: 0 },
      {},
    ],
  ] as const)('matches receipts: %s', async (_name, sim, connector) => {
    rig = await startCarrierRig(kind, sim, connector);
    const tenant = await rig.t.tenant();
    await waitBound(rig);
    const ids = [await rig.send(tenant.apiKey), await rig.send(tenant.apiKey, { text: 'x'.repeat(300) })];
    await rig.waitForStatus(ids, ['delivered']);
    expect(rig.t.app.carriers.matcher.unmatched).toBe(0);
  });

  it('works with separate transmitter and receiver binds', async () => {
    rig = await startCarrierRig(kind, {}, { bind_mode: 'transmitter_receiver', binds: 1 });
    const tenant = await rig.t.tenant();
    await waitBound(rig);
    const ids = [await rig.send(tenant.apiKey), await rig.send(tenant.apiKey)];
    await rig.waitForStatus(ids, ['delivered']);
    expect(
      rig.sim
        .sessions()
        .map((s) => s.mode)
        .sort(),
    ).toEqual(['receiver', 'transmitter']);
  });

  it('sends urgent lanes before a bulk backlog, and shares bulk fairly between tenants', async () => {
    rig = await startCarrierRig(kind, {}, { tps: 50, window: 2 });
    const big = await rig.t.tenant('Big');
    const small = await rig.t.tenant('Small');
    await waitBound(rig);
    await rig.sendBulkBatch(big.apiKey, 200, 'big');
    await new Promise((r) => setTimeout(r, 300));
    await rig.sendBulkBatch(small.apiKey, 10, 'small');
    const otp = await rig.send(big.apiKey, { text: 'Your code is 123456', lane: 'otp' });
    await rig.waitForStatus([otp], ['submitted', 'delivered'], 10_000);
    const texts = rig.sim.received.map((r) => r.text);
    const otpAt = texts.indexOf('Your code is 123456');
    // The otp went out within a few submits of its arrival, ahead of ~180 queued bulk messages.
    expect(otpAt).toBeGreaterThan(0);
    expect(otpAt).toBeLessThan(80);
    expect(texts.filter((t) => t.startsWith('big')).length).toBeLessThan(150);
    // The small tenant's 10 interleave with the big one's instead of waiting behind all 200.
    const smallIds = await rig.t.app.store.db
      .selectFrom('messages')
      .select('id')
      .where('tenant_id', '=', small.id)
      .execute();
    await rig.waitForStatus(
      smallIds.map((m) => m.id),
      ['submitted', 'delivered'],
      10_000,
    );
    const sent = rig.sim.received.map((r) => r.text);
    const lastSmall = Math.max(...sent.map((t, i) => (t.startsWith('small') ? i : -1)));
    const bigBefore = sent.slice(0, lastSmall).filter((t) => t.startsWith('big')).length;
    expect(bigBefore).toBeLessThan(150);
  });

  it('hands urgent messages from intake straight to the dispatcher: leased at commit, never claimed', async () => {
    rig = await startCarrierRig(kind);
    const tenant = await rig.t.tenant();
    await waitBound(rig);
    const { workQueue } = rig.t.app;
    const claimedIds: string[] = [];
    const claim = workQueue.claim.bind(workQueue);
    workQueue.claim = async (options) => {
      const claimed = await claim(options);
      claimedIds.push(...claimed.map((m) => m.id));
      return claimed;
    };
    const otp = await rig.send(tenant.apiKey, { text: 'Your code is 654321', lane: 'otp' });
    const transactional = await rig.send(tenant.apiKey, { text: 'Order shipped', lane: 'transactional' });
    const bulk = await rig.send(tenant.apiKey, { text: 'Sale today', lane: 'bulk' });
    await rig.waitForStatus([otp, transactional, bulk], ['delivered']);
    // The bulk message went through a claim; the urgent ones were taken from the intake commit.
    expect(claimedIds).toContain(bulk);
    expect(claimedIds).not.toContain(otp);
    expect(claimedIds).not.toContain(transactional);
    expect(rig.sim.received.map((r) => r.text).sort()).toEqual(
      ['Order shipped', 'Sale today', 'Your code is 654321'].sort(),
    );
  });

  it('commits urgent messages unleased while no carrier is bound: they wait in the queue for any node', async () => {
    rig = await startCarrierRig(kind, { accounts: [{ system_id: 'relais', password: 'other' }] });
    const tenant = await rig.t.tenant();
    const otp = await rig.send(tenant.apiKey, { text: 'Your code is 111111', lane: 'otp' });
    const row = await rig.t.app.store.db
      .selectFrom('queue')
      .select(['claimed_by'])
      .where('message_id', '=', otp)
      .executeTakeFirst();
    expect(row).toEqual({ claimed_by: null });
    expect(rig.t.app.carriers.dispatcher.lease()).toBeNull();
  });

  it('gives back at once the leases of urgent messages handed over after the dispatcher stopped', async () => {
    rig = await startCarrierRig(kind);
    const tenant = await rig.t.tenant();
    await waitBound(rig);
    const { dispatcher } = rig.t.app.carriers;
    const lease = dispatcher.lease()!;
    expect(lease).not.toBeNull();
    // A message committed under that lease while the dispatcher stops (a SIGTERM during intake).
    await dispatcher.stop();
    expect(dispatcher.lease()).toBeNull();
    const id = await rig.send(tenant.apiKey, { text: 'Your code is 222222', lane: 'otp' });
    const row = await rig.t.app.store.db
      .selectFrom('messages')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    await rig.t.app.store.write((trx) =>
      trx
        .updateTable('queue')
        .set({ claimed_by: lease.owner, claimed_until: lease.until })
        .where('message_id', '=', id)
        .execute(),
    );
    dispatcher.take([row]);
    const deadline = Date.now() + 5000;
    let queued = { claimed_by: lease.owner as string | null };
    while (queued.claimed_by !== null && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      queued = await rig.t.app.store.db
        .selectFrom('queue')
        .select(['claimed_by'])
        .where('message_id', '=', id)
        .executeTakeFirstOrThrow();
    }
    expect(queued.claimed_by).toBeNull();
    expect(rig.sim.received.map((r) => r.text)).not.toContain('Your code is 222222');
  });
});
