import { parentPort } from 'node:worker_threads';
import { type DeliveryRequest, type DeliveryResult, deliverWebhook } from './http-delivery.js';

/** Worker side of delivery-pool.ts: runs each request it is sent and posts its result back. */
export interface ThreadRequest {
  id: number;
  req: DeliveryRequest;
}

export interface ThreadResult {
  id: number;
  result: DeliveryResult;
}

const port = parentPort!;
port.on('message', ({ id, req }: ThreadRequest) => {
  // deliverWebhook never throws: every outcome, failures included, is a result.
  void deliverWebhook(req).then((result) => port.postMessage({ id, result } satisfies ThreadResult));
});
