import { describe, expect, it } from 'vitest';
import { FairQueue, type Schedulable } from '../src/dispatch/fair-queue.js';
import { AdaptiveRate, TokenBucket } from '../src/dispatch/token-bucket.js';
import { RoutingTable } from '../src/routing/routes.js';
import { ManualClock } from '../src/shared/clock.js';

type Item = Schedulable & { id: string };
const item = (lane: Item['lane'], flow: string, id: string, cost = 1): Item => ({ lane, flow, id, cost });

describe('FairQueue', () => {
  it('serves otp, then transactional, strictly before bulk', () => {
    const q = new FairQueue<Item>();
    q.push(item('bulk', 'a', 'b1'));
    q.push(item('transactional', 'a', 't1'));
    q.push(item('bulk', 'a', 'b2'));
    q.push(item('otp', 'b', 'o1'));
    expect([q.pop()?.id, q.pop()?.id, q.pop()?.id, q.pop()?.id, q.pop()]).toEqual([
      'o1',
      't1',
      'b1',
      'b2',
      undefined,
    ]);
  });

  it("shares a lane between flows: one tenant's million does not stall another's thousand", () => {
    const q = new FairQueue<Item>(1);
    for (let i = 0; i < 1000; i++) q.push(item('bulk', 'big', `big${i}`));
    for (let i = 0; i < 10; i++) q.push(item('bulk', 'small', `small${i}`));
    const first20 = Array.from({ length: 20 }, () => q.pop()!.flow);
    expect(first20.filter((f) => f === 'small')).toHaveLength(10);
    expect(q.size).toBe(1000 - 10);
  });

  it('weights by segments: a flow of 5-part messages gets the same segment share as a flow of 1-part ones', () => {
    const q = new FairQueue<Item>(5);
    for (let i = 0; i < 100; i++) q.push(item('bulk', 'long', `l${i}`, 5));
    for (let i = 0; i < 500; i++) q.push(item('bulk', 'short', `s${i}`, 1));
    const segments = { long: 0, short: 0 };
    for (let i = 0; i < 120; i++) {
      const x = q.pop()!;
      segments[x.flow as 'long' | 'short'] += x.cost;
    }
    expect(Math.abs(segments.long - segments.short)).toBeLessThanOrEqual(5);
  });

  it('serves messages costing more than the quantum, and a lone flow without waiting', () => {
    const q = new FairQueue<Item>(1);
    q.push(item('bulk', 'a', 'x', 7));
    q.push(item('bulk', 'a', 'y', 7));
    expect(q.pop()?.id).toBe('x');
    expect(q.pop()?.id).toBe('y');
    expect(q.pop()).toBeUndefined();
  });

  it('keeps FIFO order inside a flow and drains everything', () => {
    const q = new FairQueue<Item>();
    for (let i = 0; i < 3000; i++) q.push(item(i % 3 === 0 ? 'otp' : 'bulk', `t${i % 7}`, String(i)));
    const drained = q.drain();
    expect(drained).toHaveLength(3000);
    expect(q.size).toBe(0);
    const byFlow = new Map<string, number[]>();
    for (const x of drained.filter((d) => d.lane === 'bulk')) {
      byFlow.set(x.flow, [...(byFlow.get(x.flow) ?? []), Number(x.id)]);
    }
    for (const ids of byFlow.values()) expect(ids).toEqual([...ids].sort((a, b) => a - b));
  });

  it('removes the items picked (a cancelled campaign), keeping the order and counts of the rest', () => {
    const q = new FairQueue<Item>(1);
    for (let i = 0; i < 6; i++) q.push(item('bulk', 'a', `a${i}`));
    for (let i = 0; i < 3; i++) q.push(item('bulk', 'gone', `g${i}`));
    q.push(item('otp', 'b', 'o1'));
    expect(q.pop()?.id).toBe('o1');
    expect(q.pop()?.id).toBe('a0'); // a flow partly served: removal works from its head
    expect(q.removeWhere((x) => x.flow === 'gone' || x.id === 'a3')).toBe(4);
    expect(q.size).toBe(4);
    expect(q.sizeOf('bulk')).toBe(4);
    expect(q.drain().map((x) => x.id)).toEqual(['a1', 'a2', 'a4', 'a5']);
    expect(q.removeWhere(() => true)).toBe(0);
  });
});

describe('TokenBucket and AdaptiveRate', () => {
  it('allows the burst, then exactly the rate', () => {
    const clock = new ManualClock(0);
    const bucket = new TokenBucket(100, 10, clock);
    let taken = 0;
    while (bucket.tryTake()) taken++;
    expect(taken).toBe(10);
    expect(bucket.msUntilToken()).toBe(10);
    clock.advance(1000);
    taken = 0;
    while (bucket.tryTake()) taken++;
    expect(taken).toBe(10); // capped at the burst, not 100
    for (let ms = 0; ms < 1000; ms++) {
      clock.advance(1);
      if (bucket.tryTake()) taken++;
    }
    expect(taken).toBe(10 + 100);
  });

  it('keeps a reserved token for urgent takers without raising the rate', () => {
    const clock = new ManualClock(0);
    const bucket = new TokenBucket(100, 10, clock);
    let bulk = 0;
    while (bucket.tryTake(1)) bulk++;
    expect(bulk).toBe(9); // one token left for urgent
    expect(bucket.msUntilToken(1)).toBe(10);
    expect(bucket.msUntilToken(0)).toBe(0);
    expect(bucket.tryTake(0)).toBe(true); // the urgent one goes at once
    expect(bucket.tryTake(0)).toBe(false);
    // Saturated by bulk for a second: bulk alone gets the rate, never more.
    let taken = 0;
    for (let ms = 0; ms < 1000; ms++) {
      clock.advance(1);
      if (bucket.tryTake(1)) taken++;
    }
    expect(taken).toBe(99); // the 100th token is the reserve, still there for an urgent taker
    expect(bucket.tryTake(0)).toBe(true);
  });

  it('halves the rate on throttling and recovers a tenth of nominal per quiet second', () => {
    const clock = new ManualClock(0);
    const bucket = new TokenBucket(1000, 50, clock);
    const adaptive = new AdaptiveRate(bucket, 1000, clock);
    adaptive.onThrottled();
    adaptive.onThrottled(); // same burst of answers: counted once
    expect(bucket.currentRate).toBe(500);
    clock.advance(200);
    adaptive.onThrottled();
    expect(bucket.currentRate).toBe(250);
    clock.advance(500);
    adaptive.tick();
    expect(bucket.currentRate).toBe(250); // not quiet long enough
    clock.advance(600);
    adaptive.tick();
    expect(bucket.currentRate).toBe(350);
    for (let s = 0; s < 20; s++) {
      clock.advance(1000);
      adaptive.tick();
    }
    expect(bucket.currentRate).toBe(1000);
    expect(adaptive.throttled).toBe(false);
  });
});

describe('RoutingTable', () => {
  const table = new RoutingTable([
    { connectors: ['otp-carrier', 'carrier-a'], match: { lanes: ['otp'], countries: ['FR'] } },
    { connectors: ['carrier-b'], match: { prefixes: ['+3247', '+3248'] } },
    { connectors: ['vip'], match: { tenants: ['ten_vip'] } },
    { connectors: ['carrier-a', 'carrier-b'] },
  ]);
  const msg = (to: string, country: string | null, lane: 'otp' | 'bulk' = 'bulk', tenant = 'ten_x') => ({
    to,
    country,
    lane,
    tenant_id: tenant,
  });

  it('takes the first matching route; every given filter must match', () => {
    expect(table.connectorsFor(msg('+33612345678', 'FR', 'otp'))).toEqual(['otp-carrier', 'carrier-a']);
    expect(table.connectorsFor(msg('+33612345678', 'FR', 'bulk'))).toEqual(['carrier-a', 'carrier-b']);
    expect(table.connectorsFor(msg('+32470000000', 'BE', 'otp'))).toEqual(['carrier-b']);
    expect(table.connectorsFor(msg('+33612345678', 'FR', 'bulk', 'ten_vip'))).toEqual(['vip']);
  });

  it('matches nothing without a default route', () => {
    expect(
      new RoutingTable([{ connectors: ['a'], match: { countries: ['DE'] } }]).connectorsFor(
        msg('+33612345678', 'FR'),
      ),
    ).toEqual([]);
  });
});
