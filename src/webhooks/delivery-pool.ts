import { Worker } from 'node:worker_threads';
import { workerScript } from '../shared/worker-script.js';
import type { ThreadRequest, ThreadResult } from './delivery-thread.js';
import type { DeliveryRequest, DeliveryResult } from './http-delivery.js';

/**
 * Webhook HTTP requests made by a worker thread (delivery-thread.ts runs deliverWebhook there).
 *
 * Why: a tenant that takes one event per request (the default) costs one HTTP exchange per status
 * change, and Node's HTTP client spent about 57 µs of CPU on each (measured: 20,000 POSTs to a local
 * receiver). On the main thread that competed with intake, SMPP and the database; the end-to-end
 * benchmark in that mode was bound by it (carrier done at 40 s, webhooks at 89 s). The thread gets
 * the requests and answers with their results; what stays on the main thread is choosing,
 * signing and recording them. Each message is a few hundred bytes each way.
 *
 * A thread that dies fails its requests as retryable errors (they are retried like any failed
 * attempt) and is replaced at the next request.
 */
export class DeliveryPool {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, (result: DeliveryResult) => void>();

  deliver(req: DeliveryRequest): Promise<DeliveryResult> {
    const worker = this.worker ?? this.spawn();
    const id = this.nextId++;
    if (this.pending.size === 0) worker.ref();
    return new Promise<DeliveryResult>((resolve) => {
      this.pending.set(id, resolve);
      worker.postMessage({ id, req } satisfies ThreadRequest);
    });
  }

  /** Ends the thread (requests still in flight fail as retryable). */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    if (worker) await worker.terminate();
    this.failAll('webhook delivery stopped');
  }

  private spawn(): Worker {
    const worker = new Worker(workerScript(import.meta.url, 'delivery-thread.js'));
    // Only requests in flight keep the process alive.
    worker.unref();
    worker.on('message', ({ id, result }: ThreadResult) => {
      const resolve = this.pending.get(id);
      if (!resolve) return;
      this.pending.delete(id);
      if (this.pending.size === 0) worker.unref();
      resolve(result);
    });
    const gone = (reason: string) => {
      if (this.worker !== worker) return;
      this.worker = null;
      this.failAll(reason);
    };
    worker.on('error', (err) => gone(`webhook delivery thread failed: ${err.message}`));
    worker.on('exit', (code) => gone(`webhook delivery thread exited (${code})`));
    this.worker = worker;
    return worker;
  }

  private failAll(error: string): void {
    for (const resolve of this.pending.values()) {
      resolve({ ok: false, statusCode: null, error, durationMs: 0, retryable: true });
    }
    this.pending.clear();
  }
}
