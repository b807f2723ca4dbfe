import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';

/**
 * A closed-loop load generator over real HTTP with keep-alive: `concurrency` requests in flight, each
 * connection sending its next request as soon as the previous answer is read, until `requests` have been
 * sent or `maxSeconds` have passed. Any answer but the expected one stops the run and fails the benchmark.
 */
export interface LoadOptions {
  baseUrl: string;
  apiKey: string;
  path: string;
  /** Pre-serialised JSON bodies, used in turn. */
  bodies: readonly Buffer[];
  requests: number;
  concurrency: number;
  /** Stop sending new requests after this long, even if fewer than `requests` were sent. */
  maxSeconds?: number;
  /** Checks one answer and returns how many messages it accepted; throws to fail the run. */
  check(status: number, body: string): number;
}

export interface LoadResult {
  requests: number;
  accepted: number;
  seconds: number;
  /** Per-request latency, from writing the request to reading the whole answer. */
  latenciesMs: number[];
}

export class BenchFailure extends Error {}

export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: opts.concurrency });
  const url = new URL(opts.path, opts.baseUrl);
  const latenciesMs: number[] = [];
  let next = 0;
  let accepted = 0;
  let failure: unknown = null;
  const started = performance.now();

  const one = (body: Buffer): Promise<{ status: number; text: string }> =>
    new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method: 'POST',
          agent,
          headers: {
            authorization: `Bearer ${opts.apiKey}`,
            'content-type': 'application/json',
            'content-length': body.length,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  const deadline = opts.maxSeconds === undefined ? Number.POSITIVE_INFINITY : opts.maxSeconds * 1000;
  const worker = async () => {
    while (failure === null && next < opts.requests && performance.now() - started < deadline) {
      const i = next++;
      const sentAt = performance.now();
      try {
        const { status, text } = await one(opts.bodies[i % opts.bodies.length]!);
        latenciesMs.push(performance.now() - sentAt);
        accepted += opts.check(status, text);
      } catch (err) {
        failure ??= err;
      }
    }
  };

  await Promise.all(Array.from({ length: Math.min(opts.concurrency, opts.requests) }, worker));
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  if (failure !== null) throw failure;
  return { requests: latenciesMs.length, accepted, seconds, latenciesMs };
}

function snippet(text: string): string {
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}

/** POST /v1/messages: 202 with the accepted message, or the benchmark fails. */
export function checkSingle(status: number, body: string): number {
  if (status !== 202) throw new BenchFailure(`POST /v1/messages answered ${status}: ${snippet(body)}`);
  const m = JSON.parse(body) as { id?: unknown; status?: unknown };
  if (typeof m.id !== 'string' || !m.id.startsWith('msg_') || m.status !== 'accepted') {
    throw new BenchFailure(`POST /v1/messages answered 202 without an accepted message: ${snippet(body)}`);
  }
  return 1;
}

/** POST /v1/messages/batch: 202 with every item accepted, or the benchmark fails. */
export function checkBatch(expectedItems: number) {
  return (status: number, body: string): number => {
    if (status !== 202) {
      throw new BenchFailure(`POST /v1/messages/batch answered ${status}: ${snippet(body)}`);
    }
    const b = JSON.parse(body) as {
      accepted: number;
      rejected: number;
      results: { status: string; error?: unknown }[];
    };
    if (b.accepted !== expectedItems || b.rejected !== 0 || b.results.length !== expectedItems) {
      const firstError = b.results.find((r) => r.status !== 'accepted');
      throw new BenchFailure(
        `POST /v1/messages/batch accepted ${b.accepted} and rejected ${b.rejected} of ${expectedItems}` +
          (firstError ? `; first error: ${JSON.stringify(firstError)}` : ''),
      );
    }
    return b.accepted;
  };
}
