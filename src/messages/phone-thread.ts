import { parentPort } from 'node:worker_threads';
import { normaliseToOutcome, type PhoneOutcome } from './phone.js';

/** Worker side of phone-pool.ts: normalises each batch of numbers it is sent and posts the outcomes. */
export interface PhoneRequest {
  id: number;
  /** [to, country] per message. */
  numbers: [string, string | undefined][];
}

export interface PhoneReply {
  id: number;
  outcomes: PhoneOutcome[];
}

const port = parentPort!;
port.on('message', ({ id, numbers }: PhoneRequest) => {
  const outcomes = numbers.map(([to, country]) => normaliseToOutcome(to, country));
  port.postMessage({ id, outcomes } satisfies PhoneReply);
});
