import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { createLogger } from '../shared/logger.js';
import { listen } from '../simulator/listen.js';
import type { SimulatorOptionsInput } from '../simulator/options.js';
import { startControlServer } from '../simulator/server-control.js';
import { CarrierSimulator, type SubmitRecord } from '../simulator/simulator.js';

/**
 * The carrier simulator of the carrier-path benchmark, in its own process: `relais sim` plus what the
 * benchmark needs and the control port does not give, on a second small HTTP port:
 *
 *   GET  /clock                  {"now": wall-clock ms} (performance.timeOrigin + performance.now())
 *   POST /track {"prefix": "…"}  from now on, note the wall-clock arrival of every submit_sm whose text
 *                                starts with prefix, and count the others per second
 *   GET  /track                  {"arrivals": n} so far
 *   POST /untrack                stop, and answer {"arrivals": [[text, wall ms]…], "perSecond": [{…}]}
 *
 * `SubmitRecord.at` is performance.now() of this process: timeOrigin + at is the wall-clock time of the
 * arrival, comparable with the benchmark's own clock (it measures the offset through /clock).
 *
 * Usage (by src/bench/e2e.ts): node dist/bench/e2e-sim.js '{"options": {…simulator options}}'
 * Prints {"ready": true, "port", "controlPort", "benchPort"} once listening; stops on SIGTERM.
 */

interface SimChildConfig {
  options: SimulatorOptionsInput;
}

interface Tracking {
  prefix: string;
  startedAt: number;
  arrivals: [text: string, at: number][];
  /** Per second since startedAt: submits whose text has the prefix, and the others. */
  tracked: number[];
  others: number[];
}

const config = JSON.parse(process.argv[2] ?? '{}') as SimChildConfig;
const sim = new CarrierSimulator(config.options, createLogger('warn', process.stderr));
const { port } = await sim.start();
const control = await startControlServer(sim, { port: 0 });

let tracking: Tracking | null = null;

function onSubmit(record: SubmitRecord): void {
  const t = tracking;
  if (!t) return;
  const at = performance.timeOrigin + record.at;
  const second = Math.floor((at - t.startedAt) / 1000);
  if (second < 0) return;
  const mine = record.text.startsWith(t.prefix);
  if (mine) t.arrivals.push([record.text, at]);
  const counts = mine ? t.tracked : t.others;
  while (counts.length <= second) counts.push(0);
  counts[second]!++;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

const bench = createServer((req, res) => {
  const route = `${req.method} ${new URL(req.url ?? '/', 'http://sim').pathname}`;
  void (async () => {
    switch (route) {
      case 'GET /clock':
        return send(res, 200, { now: performance.timeOrigin + performance.now() });
      case 'GET /stats':
        return send(res, 200, sim.stats());
      case 'POST /track': {
        const body = await readJson(req);
        if (typeof body.prefix !== 'string' || body.prefix === '') {
          return send(res, 400, { error: 'prefix must be a non-empty string' });
        }
        tracking = {
          prefix: body.prefix,
          startedAt: performance.timeOrigin + performance.now(),
          arrivals: [],
          tracked: [],
          others: [],
        };
        sim.onSubmit = onSubmit;
        return send(res, 200, { startedAt: tracking.startedAt });
      }
      case 'GET /track':
        return send(res, 200, { arrivals: tracking?.arrivals.length ?? 0 });
      case 'POST /untrack': {
        sim.onSubmit = null;
        const t = tracking;
        tracking = null;
        if (!t) return send(res, 409, { error: 'not tracking' });
        const seconds = Math.max(t.tracked.length, t.others.length);
        const perSecond = Array.from({ length: seconds }, (_, i) => ({
          tracked: t.tracked[i] ?? 0,
          others: t.others[i] ?? 0,
        }));
        return send(res, 200, { startedAt: t.startedAt, arrivals: t.arrivals, perSecond });
      }
      default:
        return send(res, 404, { error: `no route ${route}` });
    }
  })().catch((err: unknown) => send(res, 500, { error: (err as Error).message }));
});
const benchPort = await listen(bench, 0, '127.0.0.1');

process.stdout.write(
  `${JSON.stringify({ ready: true, port, controlPort: control.port, benchPort, pid: process.pid })}\n`,
);

const stop = async () => {
  bench.close();
  bench.closeAllConnections();
  await control.close();
  await sim.stop();
  process.stdout.write(`${JSON.stringify({ stopped: true, stats: sim.stats() })}\n`);
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
