import { Worker } from 'node:worker_threads';
import { workerScript } from '../shared/worker-script.js';
import { normaliseToOutcome, type PhoneOutcome } from './phone.js';
import type { PhoneReply, PhoneRequest } from './phone-thread.js';

/** Batches smaller than this are normalised inline: a thread round trip costs more than they do. */
export const THREAD_MIN_BATCH = 16;

interface Pending {
  numbers: PhoneRequest['numbers'];
  resolve: (outcomes: PhoneOutcome[]) => void;
  reject: (err: unknown) => void;
}

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
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  normalise(numbers: PhoneRequest['numbers']): Promise<PhoneOutcome[]> {
    if (numbers.length < THREAD_MIN_BATCH || this.closed) return Promise.resolve(normaliseInline(numbers));
    const worker = this.worker ?? this.spawn();
    const id = this.nextId++;
    if (this.pending.size === 0) worker.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { numbers, resolve, reject });
      worker.postMessage({ id, numbers } satisfies PhoneRequest);
    });
  }

  /** Ends the thread; batches still on it, and any later ones, are normalised inline. */
  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = null;
    if (worker) await worker.terminate();
    this.finishInline();
  }

  private spawn(): Worker {
    const worker = new Worker(workerScript(import.meta.url, 'phone-thread.js'));
    // Only batches in flight keep the process alive.
    worker.unref();
    worker.on('message', ({ id, outcomes }: PhoneReply) => {
      const entry = this.pending.get(id);
      if (!entry) return;
      this.pending.delete(id);
      if (this.pending.size === 0) worker.unref();
      entry.resolve(outcomes);
    });
    const gone = () => {
      if (this.worker !== worker) return;
      this.worker = null;
      this.finishInline();
    };
    worker.on('error', gone);
    worker.on('exit', gone);
    this.worker = worker;
    return worker;
  }

  private finishInline(): void {
    const entries = [...this.pending.values()];
    this.pending.clear();
    for (const { numbers, resolve, reject } of entries) {
      try {
        resolve(normaliseInline(numbers));
      } catch (err) {
        reject(err);
      }
    }
  }
}

function normaliseInline(numbers: PhoneRequest['numbers']): PhoneOutcome[] {
  return numbers.map(([to, country]) => normaliseToOutcome(to, country));
}
