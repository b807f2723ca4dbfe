import { afterEach, describe, expect, it, vi } from 'vitest';
import { type CarrierLink, LinkBind } from '../src/carriers/carrier-link.js';
import { type CarrierRig, startCarrierRig, waitBound } from './helpers/carrier.js';
import { databaseKinds } from './helpers/databases.js';

/** A bind whose acks go nowhere: received() and ack() only count. */
function bind(): LinkBind {
  return new LinkBind({ send() {} } as unknown as CarrierLink, 1);
}

describe('LinkBind.received: is the carrier waiting for our answers?', () => {
  it('says so for every deliver_sm of a carrier that keeps one outstanding at a time', () => {
    const b = bind();
    for (let i = 0; i < 5; i++) {
      expect(b.received()).toBe(true);
      b.ack(i, 0);
    }
  });

  it('says so when a small window fills again, not while it is filling', () => {
    const b = bind();
    const seen = Array.from({ length: 10 }, () => b.received()); // the window, learnt: 10
    expect(seen.every(Boolean)).toBe(true); // each was the most ever unanswered
    for (let i = 0; i < 10; i++) b.ack(i, 0);
    const again = Array.from({ length: 10 }, () => b.received());
    expect(again).toEqual([...Array(9).fill(false), true]);
  });

  it('never says so once more than 32 were unanswered at once: the gathering is no limit there', () => {
    const b = bind();
    for (let i = 0; i < 40; i++) b.received();
    for (let i = 0; i < 40; i++) b.ack(i, 0);
    expect(Array.from({ length: 40 }, () => b.received()).some(Boolean)).toBe(false);
  });
});

/**
 * A carrier that sends its next deliver_sm only once the last is answered (the simulator's
 * deliver_window: 1). Its receipts used to wait out the receipts' quiet time, one by one.
 */
describe.each(databaseKinds)('receipts of a one-at-a-time carrier on $name', (kind) => {
  let rig: CarrierRig | null = null;
  afterEach(async () => {
    await rig?.close();
    rig = null;
  });

  it('are each committed at once, not gathered, and all delivered', async () => {
    rig = await startCarrierRig(kind, { deliver_window: 1, receipt_delay_ms: 5 }, { tps: 5000, window: 50 });
    const record = vi.spyOn(rig.t.app.carriers.receiptRecorder, 'record');
    const tenant = await rig.t.tenant();
    await waitBound(rig);
    const ids = await rig.sendBulkBatch(tenant.apiKey, 200, 'w');
    await rig.waitForStatus(ids, ['delivered'], 30_000);
    const receipts = record.mock.calls.filter(([unit]) => 'receipts' in unit);
    expect(receipts).toHaveLength(200);
    expect(receipts.every(([, now]) => now === true)).toBe(true);
    expect(rig.sim.stats().submitsAccepted).toBe(200);
  });
});
