import { parentPort } from 'node:worker_threads';
import type { ThreadReply, ThreadRequest } from '../shared/request-thread.js';
import { lowerThisThreadPriority } from '../shared/thread-priority.js';
import { normaliseAllToOutcomes, type PhoneNumbers, type PhoneOutcome } from './phone.js';

/** Worker side of phone-pool.ts: normalises each batch of numbers it is sent and posts the outcomes. */
const port = parentPort!;
// Background work: the main thread, the throughput limit, goes first (shared/thread-priority.ts).
lowerThisThreadPriority();
port.on('message', ({ id, req }: ThreadRequest<PhoneNumbers>) => {
  port.postMessage({ id, res: normaliseAllToOutcomes(req) } satisfies ThreadReply<PhoneOutcome[]>);
});
