import { createServer } from 'node:http';
import { performance } from 'node:perf_hooks';
import { listen } from '../simulator/listen.js';

/**
 * The webhook receiver of the carrier-path benchmark, in its own process: answers every `POST /hook` with
 * 200 as soon as the body is read, then counts its events (a batched body `{"type":"batch","events":[…]}`
 * counts each event), per status and per distinct event id (deliveries are at least once).
 *
 *   GET /count   {"requests", "connections", "events", "unique", "duplicates", "malformed", "byStatus", "firstAt", "lastUniqueAt"}
 *   GET /clock   {"now": wall-clock ms}
 *
 * Times are wall-clock ms (performance.timeOrigin + performance.now()), taken right after the answer is
 * written. Usage: node dist/bench/e2e-hook.js '{}'; prints {"ready": true, "port"}; stops on SIGTERM.
 */

const wall = () => performance.timeOrigin + performance.now();

interface EventShape {
  id?: unknown;
  data?: { status?: unknown };
}

const seen = new Set<string>();
const counts = {
  requests: 0,
  /** TCP connections accepted: with keep-alive, about as many as Relais has requests in flight. */
  connections: 0,
  events: 0,
  unique: 0,
  duplicates: 0,
  malformed: 0,
  byStatus: {} as Record<string, number>,
  firstAt: null as number | null,
  lastUniqueAt: null as number | null,
};

function count(body: string, answeredAt: number): void {
  let events: EventShape[];
  try {
    const parsed = JSON.parse(body) as EventShape & { type?: unknown; events?: unknown };
    events =
      parsed.type === 'batch' && Array.isArray(parsed.events) ? (parsed.events as EventShape[]) : [parsed];
  } catch {
    counts.malformed++;
    return;
  }
  counts.firstAt ??= answeredAt;
  for (const event of events) {
    counts.events++;
    if (typeof event.id !== 'string') {
      counts.malformed++;
      continue;
    }
    if (seen.has(event.id)) {
      counts.duplicates++;
      continue;
    }
    seen.add(event.id);
    counts.unique++;
    counts.lastUniqueAt = answeredAt;
    const status = typeof event.data?.status === 'string' ? event.data.status : '?';
    counts.byStatus[status] = (counts.byStatus[status] ?? 0) + 1;
  }
}

const server = createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/hook') {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(200, { 'content-length': 0 });
      res.end();
      counts.requests++;
      count(Buffer.concat(chunks).toString('utf8'), wall());
    });
    return;
  }
  let body: unknown;
  if (req.method === 'GET' && req.url === '/count') body = counts;
  else if (req.method === 'GET' && req.url === '/clock') body = { now: wall() };
  const text = JSON.stringify(body ?? { error: 'not found' });
  res.writeHead(body ? 200 : 404, { 'content-type': 'application/json', 'content-length': text.length });
  res.end(text);
});
server.on('connection', () => {
  counts.connections++;
});
// Relais keeps its webhook connections alive (idle up to 30 s): do not close them first.
server.keepAliveTimeout = 60_000;
const port = await listen(server, 0, '127.0.0.1');
process.stdout.write(`${JSON.stringify({ ready: true, port, pid: process.pid })}\n`);

const stop = () => {
  server.close();
  server.closeAllConnections();
  process.stdout.write(`${JSON.stringify({ stopped: true, counts })}\n`);
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
