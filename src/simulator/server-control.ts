// A tiny HTTP control port for a simulator running as its own process (`relais sim --control-port`):
//   GET  /stats              counters (JSON)
//   GET  /options            the current options
//   POST /options            a JSON object of options to change live, e.g. {"reject_rate": 0.1}
//   POST /mo                 {"from", "to", "text", "system_id"?}: a mobile-originated message
//   GET  /received?limit=N   the last N recorded submits (record_submits), default 100
//   POST /reset              zero the counters and forget recorded submits

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listen } from './listen.js';
import { SimulatorOptionsError } from './options.js';
import type { CarrierSimulator, MoInput } from './simulator.js';

export interface ControlServerOptions {
  host?: string;
  /** 0 = any free port. */
  port: number;
}

export interface ControlServer {
  port: number;
  close(): Promise<void>;
}

const MAX_BODY = 64 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function startControlServer(
  sim: CarrierSimulator,
  options: ControlServerOptions,
): Promise<ControlServer> {
  const server: Server = createServer((req, res) => {
    handle(sim, req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      send(res, status, { error: (err as Error).message });
    });
  });
  const port = await listen(server, options.port, options.host ?? '127.0.0.1');
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function handle(sim: CarrierSimulator, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://control');
  const route = `${req.method} ${url.pathname}`;
  switch (route) {
    case 'GET /stats':
      return send(res, 200, sim.stats());
    case 'GET /options':
      return send(res, 200, sim.getOptions());
    case 'POST /options': {
      const body = await readJson(req);
      try {
        return send(res, 200, sim.setOptions(body as Parameters<CarrierSimulator['setOptions']>[0]));
      } catch (err) {
        if (err instanceof SimulatorOptionsError) throw new HttpError(400, err.message);
        throw err;
      }
    }
    case 'POST /mo':
      return postMo(sim, await readJson(req), res);
    case 'GET /received': {
      const limit = Number(url.searchParams.get('limit') ?? 100);
      if (!Number.isInteger(limit) || limit < 0)
        throw new HttpError(400, 'limit must be a non-negative integer');
      return send(res, 200, limit === 0 ? [] : sim.received.slice(-limit));
    }
    case 'POST /reset':
      sim.reset();
      return send(res, 200, sim.stats());
    default:
      throw new HttpError(404, `no route ${route}`);
  }
}

/** Answers with the deliver_sm_resp status when a receiver is bound; 202 when the MO has to wait for one. */
async function postMo(
  sim: CarrierSimulator,
  body: Record<string, unknown>,
  res: ServerResponse,
): Promise<void> {
  const { from, to, text, system_id: systemId } = body;
  if (typeof from !== 'string' || typeof to !== 'string' || typeof text !== 'string') {
    throw new HttpError(400, 'from, to and text must be strings');
  }
  if (systemId !== undefined && typeof systemId !== 'string')
    throw new HttpError(400, 'system_id must be a string');
  const input: MoInput = { from, to, text, ...(systemId ? { systemId } : {}) };
  const receiverBound = sim
    .sessions()
    .some((s) => s.mode !== 'transmitter' && (systemId === undefined || s.systemId === systemId));
  type Outcome = { status: number } | { err: Error } | { queued: true };
  const sent: Promise<Outcome> = sim.sendMo(input).then(
    (status) => ({ status }),
    (err: Error) => ({ err }),
  );
  // Without a receiver it waits in the queue: answer 202 unless it failed at once (bad input).
  const waitLimit = receiverBound
    ? new Promise<Outcome>(() => {})
    : new Promise<Outcome>((resolve) => setImmediate(() => resolve({ queued: true })));
  const outcome = await Promise.race([sent, waitLimit]);
  if ('queued' in outcome) return send(res, 202, outcome);
  if ('status' in outcome) return send(res, 200, outcome);
  throw new HttpError(outcome.err instanceof RangeError ? 400 : 503, outcome.err.message);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, `body larger than ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  } catch {
    throw new HttpError(400, 'body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HttpError(400, 'body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
