import { RequestThread } from '../shared/request-thread.js';
import { workerScript } from '../shared/worker-script.js';
import { normaliseAllToOutcomes, type PhoneNumbers, type PhoneOutcome } from './phone.js';

/** Batches smaller than this are normalised inline: a thread round trip costs more than they do. */
export const THREAD_MIN_BATCH = 16;

/**
 * Normalises the destinations of large batches on a worker thread (phone-thread.ts).
 *
 * Why: libphonenumber's parse and type check took 16–18 µs per number, the largest share of
 * intake's CPU (profiled: 5% of the main thread's busy time in the end-to-end benchmark, where the
 * main thread is the limit). Copying a batch's [to, country] pairs to the thread and its outcomes
 * back costs 1.5 µs per number, both sides together (structuredClone of batches of 100). Small
 * requests (an OTP) stay inline, so the urgent path never waits on a thread.
 *
 * If the thread fails or exits, the batches it held are normalised inline with the same function
 * (the next batch starts a new thread), so an outcome is always the one normaliseDestination gives.
 */
export class PhonePool {
  private readonly thread = new RequestThread<PhoneNumbers, PhoneOutcome[]>(
    workerScript(import.meta.url, 'phone-thread.js'),
    'phone number',
    normaliseAllToOutcomes,
  );
  private closed = false;

  normalise(numbers: PhoneNumbers): Promise<PhoneOutcome[]> {
    if (numbers.length < THREAD_MIN_BATCH || this.closed)
      return Promise.resolve(normaliseAllToOutcomes(numbers));
    return this.thread.request(numbers);
  }

  /** Ends the thread; batches still on it, and any later ones, are normalised inline. */
  close(): Promise<void> {
    this.closed = true;
    return this.thread.close('stopped');
  }
}
