import { WRITE_OUTCOMES } from '../dispatch/outcome-writes.js';
import { WRITE_SUBMIT_UNITS } from '../messages/writer.js';
import { RECORD_ATTEMPTS } from '../webhooks/outbox.js';
import type { ThreadTransaction } from './sqlite-protocol.js';

/**
 * The transactions the SQLite thread runs whole (Store.writeCommittedIn), by name. Only this list is
 * loaded by the thread: a transaction passed to writeCommittedIn must be in it.
 */
export const THREAD_TRANSACTIONS: ReadonlyMap<string, ThreadTransaction<never, unknown>> = new Map(
  [WRITE_OUTCOMES, WRITE_SUBMIT_UNITS, RECORD_ATTEMPTS].map((t) => [t.name, t]),
);
