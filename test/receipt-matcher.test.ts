import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Recordable } from '../src/dispatch/status-recorder.js';
import { ReceiptMatcher } from '../src/receipts/receipt-matcher.js';
import { createLogger } from '../src/shared/logger.js';
import type { DeliveryReceipt } from '../src/smpp/receipt.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { databaseKinds } from './helpers/databases.js';

const receipt = (carrierId: string, state: DeliveryReceipt['state'] = 'delivered'): DeliveryReceipt => ({
  carrierId,
  state,
  errorCode: null,
  submitDate: null,
  doneDate: null,
});

describe.each(databaseKinds)('ReceiptMatcher on $name', (kind) => {
  let t: TestApp;
  const recorded: Recordable[] = [];
  /** `now` of each record call, in order: the carrier was waiting for the answer. */
  const urged: boolean[] = [];
  let matcher: ReceiptMatcher;
  beforeAll(async () => {
    t = await startTestApp(kind);
    matcher = new ReceiptMatcher(
      t.app.store.db,
      async (unit, now) => {
        recorded.push(unit);
        urged.push(now);
      },
      createLogger('silent'),
      { maxRecent: 3, parkMs: 200 },
    );
  });
  afterAll(async () => {
    matcher.stop();
    await t.close();
  });

  it('matches a registered part, with a decimal receipt id for a hex submit id', async () => {
    matcher.register('c', '1a2b', { messageId: 'msg_A', partNo: 1 });
    await matcher.handle('c', receipt(String(0x1a2b)), 'auto');
    expect(recorded.at(-1)).toEqual({
      receipts: [{ messageId: 'msg_A', partNo: 1, state: 'delivered', errorCode: null }],
    });
  });

  it('waits for the submitted change before recording a receipt', async () => {
    let release = () => {};
    const after = new Promise<void>((r) => {
      release = r;
    });
    matcher.register('c', 'beef', { messageId: 'msg_B', partNo: 2, after });
    const before = recorded.length;
    const handled = matcher.handle('c', receipt('beef'), 'hex');
    await new Promise((r) => setTimeout(r, 20));
    expect(recorded.length).toBe(before);
    release();
    await handled;
    expect(recorded.at(-1)).toMatchObject({ receipts: [{ messageId: 'msg_B', partNo: 2 }] });
  });

  it('parks a receipt that overtakes its submit_sm_resp, including one registered during the lookup', async () => {
    const early = matcher.handle('c', receipt('cafe'), 'auto');
    // Registered while the database lookup of the receipt is still running.
    queueMicrotask(() => matcher.register('c', 'cafe', { messageId: 'msg_C', partNo: 1 }));
    await early;
    expect(recorded.at(-1)).toMatchObject({ receipts: [{ messageId: 'msg_C' }] });
    const parked = matcher.handle('c', receipt('f00d'), 'auto');
    await new Promise((r) => setTimeout(r, 30));
    matcher.register('c', 'f00d', { messageId: 'msg_D', partNo: 1 });
    await parked;
    expect(recorded.at(-1)).toMatchObject({ receipts: [{ messageId: 'msg_D' }] });
  });

  it('records at once a receipt whose carrier waits for the answer, parked first or not', async () => {
    matcher.register('c', 'a1', { messageId: 'msg_W1', partNo: 1 });
    await matcher.handle('c', receipt('a1'), 'auto', true);
    expect(urged.at(-1)).toBe(true);
    const parked = matcher.handle('c', receipt('a3'), 'auto', true);
    await new Promise((r) => setTimeout(r, 30));
    matcher.register('c', 'a3', { messageId: 'msg_W3', partNo: 1 });
    await parked;
    expect(recorded.at(-1)).toMatchObject({ receipts: [{ messageId: 'msg_W3' }] });
    expect(urged.at(-1)).toBe(true);
    matcher.register('c', 'a4', { messageId: 'msg_W4', partNo: 1 });
    await matcher.handle('c', receipt('a4'), 'auto');
    expect(urged.at(-1)).toBe(false);
  });

  it('counts and acknowledges a receipt that matches nothing, without throwing', async () => {
    const before = matcher.unmatched;
    await matcher.handle('c', receipt('123456789'), 'auto');
    expect(matcher.unmatched).toBe(before + 1);
  });

  it('finds parts evicted from memory through the database index', async () => {
    const tenant = await t.tenant();
    const res = await t.app.http.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: { authorization: `Bearer ${tenant.apiKey}` },
      payload: { to: '+33612345678', from: 'Shop', text: 'x' },
    });
    const id = res.json().id;
    await t.app.workQueue.record([
      {
        messageId: id,
        status: 'submitted',
        parts: [{ partNo: 1, connector: 'c', carrierId: '00ABC', carrierKey: 'abc', status: 'submitted' }],
      },
    ]);
    await matcher.handle('c', receipt('00abc'), 'hex');
    expect(recorded.at(-1)).toEqual({
      receipts: [{ messageId: id, partNo: 1, state: 'delivered', errorCode: null }],
    });
  });
});
