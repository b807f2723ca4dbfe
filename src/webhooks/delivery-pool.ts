import { RequestThread } from '../shared/request-thread.js';
import { workerScript } from '../shared/worker-script.js';
import type { DeliveryRequest, DeliveryResult } from './http-delivery.js';

/** Tells delivery-thread.ts to answer the requests it has not started with null (not attempted). */
export const DROP_WAITING = { dropWaiting: true } as const;

/** What delivery-thread.ts is started with. */
export interface DeliveryThreadData {
  /** HTTP exchanges at once; requests beyond it wait in the thread. */
  maxExchanges: number;
}

/**
 * Webhook HTTP requests made by a worker thread (delivery-thread.ts runs deliverWebhook there).
 *
 * Why: a tenant that takes one event per request (the default) costs one HTTP exchange per status
 * change, and Node's HTTP client spent about 40 µs of CPU on each (measured: 40,000 POSTs to a
 * local receiver over kept-alive connections; undici's, used since, about 25). On the main thread
 * that competed with intake, SMPP and the database; the end-to-end benchmark in that mode was bound
 * by it (carrier done at 40 s, webhooks at 89 s). The thread gets the requests and answers with
 * their results; what stays on the main thread is choosing, signing and recording them. Each
 * message is a few hundred bytes each way.
 *
 * A thread that dies fails its requests as retryable errors (they are retried like any failed
 * attempt; they may have reached the endpoint) and is replaced at the next request. Those failures
 * are marked `local`: they do not count toward pausing the endpoint (EndpointBreakers).
 */
export class DeliveryPool {
  private readonly thread: RequestThread<DeliveryRequest, DeliveryResult | null>;

  /** `maxExchanges`: HTTP exchanges the thread runs at once; it holds further requests until one ends. */
  constructor(maxExchanges: number) {
    this.thread = new RequestThread<DeliveryRequest, DeliveryResult | null>(
      workerScript(import.meta.url, 'delivery-thread.js'),
      'webhook delivery',
      (_req, reason) => ({
        ok: false,
        statusCode: null,
        error: reason,
        durationMs: 0,
        retryable: true,
        local: true,
      }),
      { maxExchanges } satisfies DeliveryThreadData,
    );
  }

  /** The request's result, or null if it was dropped before it started (dropWaiting). */
  deliver(req: DeliveryRequest): Promise<DeliveryResult | null> {
    return this.thread.request(req);
  }

  /**
   * The requests waiting in the thread are answered null, not attempted: a stop then waits for the
   * exchanges under way only (one timeout at most), not for those behind them too.
   */
  dropWaiting(): void {
    this.thread.notify(DROP_WAITING);
  }

  /** Ends the thread (requests still in flight or waiting in it fail as retryable). */
  close(): Promise<void> {
    return this.thread.close('webhook delivery stopped');
  }
}
