import { parentPort, workerData } from 'node:worker_threads';
import { type ChunkSource, CsvBroken, type PreparedChunk, readCsvChunks } from './csv-chunks.js';
import { toColumnGroups } from './pg-columns.js';

/**
 * Worker thread of a CSV import: parses and checks rows (csv-parse and libphonenumber are most of
 * the CPU of an import) so the main thread only writes, and its event loop stays free for intake.
 * One chunk is prepared while the previous one is being written; the next is sent on acknowledgement.
 */

export type WorkerMessage =
  | { type: 'chunk'; chunk: PreparedChunk }
  | { type: 'end' }
  | { type: 'broken'; message: string }
  | { type: 'error'; message: string };

const port = parentPort!;
let acknowledged: (() => void) | null = null;
let inFlight = false;
port.on('message', () => {
  inFlight = false;
  acknowledged?.();
  acknowledged = null;
});
const send = (message: WorkerMessage) => port.postMessage(message);

async function main(): Promise<void> {
  try {
    const source = workerData as ChunkSource;
    for await (const chunk of readCsvChunks(source)) {
      const prepared: PreparedChunk = source.columnGroups
        ? { ...chunk, rows: [], groups: toColumnGroups(chunk.rows) }
        : { ...chunk, groups: null };
      if (inFlight) await new Promise<void>((resolve) => (acknowledged = resolve));
      inFlight = true;
      send({ type: 'chunk', chunk: prepared });
    }
    if (inFlight) await new Promise<void>((resolve) => (acknowledged = resolve));
    send({ type: 'end' });
  } catch (err) {
    if (inFlight) await new Promise<void>((resolve) => (acknowledged = resolve));
    send(
      err instanceof CsvBroken
        ? { type: 'broken', message: err.message }
        : { type: 'error', message: (err as Error).message },
    );
  }
  port.close();
}

void main();
