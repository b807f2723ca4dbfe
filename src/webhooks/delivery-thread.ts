import { parentPort, workerData } from 'node:worker_threads';
import type { ThreadReply, ThreadRequest } from '../shared/request-thread.js';
import type { DeliveryThreadData, DROP_WAITING } from './delivery-pool.js';
import { type DeliveryRequest, type DeliveryResult, deliverWebhook } from './http-delivery.js';

/**
 * Worker side of delivery-pool.ts: runs the requests it is sent, at most `maxExchanges` at once, in
 * the order they came, and posts each result back. The others wait here, so a finished exchange is
 * followed at once by the next one, without a round trip through the main thread.
 */
const port = parentPort!;
// At the normal priority, unlike the phone-number thread: with one event per request this thread,
// not the main one, is the limit (shared/thread-priority.ts).
const { maxExchanges } = workerData as DeliveryThreadData;
const waiting: ThreadRequest<DeliveryRequest>[] = [];
let running = 0;

function startNext(): void {
  while (running < maxExchanges && waiting.length > 0) {
    const { id, req } = waiting.shift()!;
    running++;
    // deliverWebhook never throws: every outcome, failures included, is a result. Its timeout
    // starts here, so the time spent waiting above does not count against the receiver.
    void deliverWebhook(req).then((res) => {
      running--;
      port.postMessage({ id, res } satisfies ThreadReply<DeliveryResult>);
      startNext();
    });
  }
}

port.on('message', (message: ThreadRequest<DeliveryRequest> | typeof DROP_WAITING) => {
  if ('dropWaiting' in message) {
    for (const { id } of waiting.splice(0)) port.postMessage({ id, res: null } satisfies ThreadReply<null>);
    return;
  }
  waiting.push(message);
  startNext();
});
