import { parentPort } from 'node:worker_threads';
import type { ThreadReply, ThreadRequest } from '../shared/request-thread.js';
import { type DeliveryRequest, type DeliveryResult, deliverWebhook } from './http-delivery.js';

/** Worker side of delivery-pool.ts: runs each request it is sent and posts its result back. */
const port = parentPort!;
port.on('message', ({ id, req }: ThreadRequest<DeliveryRequest>) => {
  // deliverWebhook never throws: every outcome, failures included, is a result.
  void deliverWebhook(req).then((res) => port.postMessage({ id, res } satisfies ThreadReply<DeliveryResult>));
});
