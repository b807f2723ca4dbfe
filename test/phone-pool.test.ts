import { afterEach, describe, expect, it } from 'vitest';
import { normaliseToOutcome } from '../src/messages/phone.js';
import { PhonePool, THREAD_MIN_BATCH } from '../src/messages/phone-pool.js';

/** Inputs of every kind: valid in both formats, each error, and a country that does not exist. */
const INPUTS: [string, string | undefined][] = [
  ['+33612345678', undefined],
  ['06 12 34 56 78', 'FR'],
  ['06 12 34 56 78', undefined],
  ['+331', undefined],
  ['+33 1 23 45 67 89', undefined],
  ['', undefined],
  ['hello', undefined],
  ['0612345678', 'XX'],
  ['00447911123456', undefined],
  ['+1 415 555 2671', undefined],
];
const batch = (n: number) => Array.from({ length: n }, (_, i) => INPUTS[i % INPUTS.length]!);

describe('PhonePool', () => {
  let pool: PhonePool;
  afterEach(() => pool?.close());

  it('gives, for a batch large enough to go to its thread, exactly what normaliseDestination gives', async () => {
    pool = new PhonePool();
    const numbers = batch(THREAD_MIN_BATCH * 3);
    const outcomes = await pool.normalise(numbers);
    expect(outcomes).toEqual(numbers.map(([to, country]) => normaliseToOutcome(to, country)));
    expect(outcomes.filter((o) => 'error' in o).length).toBeGreaterThan(0);
  });

  it('answers batches sent together each with its own outcomes', async () => {
    pool = new PhonePool();
    const a = batch(THREAD_MIN_BATCH);
    const b = batch(THREAD_MIN_BATCH + 5).reverse();
    const [ra, rb] = await Promise.all([pool.normalise(a), pool.normalise(b)]);
    expect(ra).toEqual(a.map(([to, c]) => normaliseToOutcome(to, c)));
    expect(rb).toEqual(b.map(([to, c]) => normaliseToOutcome(to, c)));
  });

  it('finishes inline the batches of a thread that dies, and starts another for the next', async () => {
    pool = new PhonePool();
    const numbers = batch(THREAD_MIN_BATCH * 50);
    const want = numbers.map(([to, c]) => normaliseToOutcome(to, c));
    expect(await pool.normalise(numbers)).toEqual(want);
    const pending = pool.normalise(numbers);
    // The thread is private: reach it the way a crash would, from outside.
    await (
      pool as unknown as { thread: { worker: { terminate(): Promise<number> } } }
    ).thread.worker.terminate();
    expect(await pending).toEqual(want);
    const next = pool.normalise(numbers);
    expect((pool as unknown as { thread: { worker: unknown } }).thread.worker).not.toBeNull();
    expect(await next).toEqual(want);
  });

  it('finishes inline a batch whose thread is stopped under it, and every batch after', async () => {
    pool = new PhonePool();
    const numbers = batch(THREAD_MIN_BATCH * 20);
    const pending = pool.normalise(numbers);
    await pool.close();
    const want = numbers.map(([to, c]) => normaliseToOutcome(to, c));
    expect(await pending).toEqual(want);
    expect(await pool.normalise(numbers)).toEqual(want);
  });
});
