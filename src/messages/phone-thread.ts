import { parentPort } from 'node:worker_threads';
import type { ThreadReply, ThreadRequest } from '../shared/request-thread.js';
import { normaliseToOutcome, type PhoneOutcome } from './phone.js';
import type { PhoneNumbers } from './phone-pool.js';

/** Worker side of phone-pool.ts: normalises each batch of numbers it is sent and posts the outcomes. */
const port = parentPort!;
port.on('message', ({ id, req }: ThreadRequest<PhoneNumbers>) => {
  const res = req.map(([to, country]) => normaliseToOutcome(to, country));
  port.postMessage({ id, res } satisfies ThreadReply<PhoneOutcome[]>);
});
