import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { PhonePool, THREAD_MIN_BATCH } from '../src/messages/phone-pool.js';
import { BACKGROUND_NICENESS } from '../src/shared/thread-priority.js';
import { DeliveryPool } from '../src/webhooks/delivery-pool.js';

const linux = process.platform === 'linux';
if (!linux) console.warn('thread-priority tests skipped: per-thread niceness is a Linux feature');

/** The niceness of each thread of this process, by thread id (field 19 of /proc/self/task/<tid>/stat). */
function nicenessByThread(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    // The name (field 2) is in parentheses and may hold spaces: count fields after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(Number(tid), Number(fields[16]));
  }
  return out;
}

const lowered = () => [...nicenessByThread().values()].filter((n) => n === BACKGROUND_NICENESS).length;
/** The main thread's niceness: its thread id is the process id. */
const mainNiceness = () => (linux ? nicenessByThread().get(process.pid) : undefined);
const startedAt = mainNiceness() ?? 0;
if (linux && startedAt >= BACKGROUND_NICENESS) {
  console.warn(`thread-priority tests skipped: the process already runs at niceness ${startedAt}`);
}

describe.runIf(linux && startedAt < BACKGROUND_NICENESS)(
  'background worker threads run below the main thread',
  () => {
    const closers: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const close of closers.splice(0)) await close();
    });

    it('the phone-number thread lowers its own priority only; the webhook delivery thread keeps the normal one', async () => {
      const before = lowered();
      const phones = new PhonePool();
      closers.push(() => phones.close());
      const numbers = Array.from(
        { length: THREAD_MIN_BATCH },
        () => ['+33612345678', undefined] as [string, undefined],
      );
      await phones.normalise(numbers);
      expect(lowered()).toBe(before + 1);

      const deliveries = new DeliveryPool(1);
      closers.push(() => deliveries.close());
      // Refused by the target guard without any network: enough to start the thread.
      const refused = await deliveries.deliver({
        url: 'http://127.0.0.1:9/hook',
        body: '{}',
        headers: {},
        timeoutMs: 1000,
        allowPrivateTargets: false,
      });
      expect(refused).toMatchObject({ ok: false, retryable: false });
      // With one event per request the delivery thread is the limit itself: it is not lowered.
      expect(lowered()).toBe(before + 1);

      // The main thread keeps the priority the process started with.
      expect(mainNiceness()).toBe(startedAt);
    });
  },
);
