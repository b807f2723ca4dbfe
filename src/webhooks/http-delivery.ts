import { Agent } from 'undici';
import {
  CALLBACK_BLOCKED_CODE,
  CallbackUrlError,
  guardedLookup,
  ipLiteralHost,
  isPublicAddress,
  parseCallbackUrl,
} from './targets.js';

export interface DeliveryRequest {
  url: string;
  body: string;
  headers: Record<string, string>;
  timeoutMs: number;
  allowPrivateTargets: boolean;
}

export interface DeliveryResult {
  ok: boolean;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
  retryable: boolean;
  /** The request failed on our side (its thread died): it says nothing about the endpoint. */
  local?: true;
}

export const WEBHOOK_USER_AGENT = 'Relais-Webhooks/1.0';

/** At most this many response-body bytes are read (and discarded); beyond it the connection is dropped. */
export const MAX_RESPONSE_BODY_BYTES = 64 * 1024;

// The HTTP client is undici's (the Node.js project's own): with one event per request the webhook
// thread is the end-to-end limit, and an exchange over a kept-alive connection cost its thread 24–26
// µs of CPU with undici against 46–51 µs with node:http (measured apart: 40,000 POSTs to a local
// receiver, 32 at a time; docs/benchmarks.md, 2026-11-28).
//
// Two agents, because an agent pools connections by origin only: a connection opened while private
// targets were allowed must never be reused by a delivery that forbids them (the guarded lookup
// only runs when a connection is opened). Up to 64 connections per origin, kept open 30 s when
// idle; redirects are not followed (undici's default).
const AGENT_OPTIONS = { connections: 64, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 30_000 };
const agents = {
  guarded: new Agent({ ...AGENT_OPTIONS, connect: { lookup: guardedLookup(false) } }),
  permissive: new Agent({ ...AGENT_OPTIONS, connect: { lookup: guardedLookup(true) } }),
};

/**
 * Retry classification of an HTTP status: 2xx ok; 5xx, 408 and 429 retryable; anything else
 * (other 4xx, 3xx — redirects are not followed, 1xx) is a permanent failure.
 */
export function classifyStatus(statusCode: number): { ok: boolean; retryable: boolean } {
  if (statusCode >= 200 && statusCode < 300) return { ok: true, retryable: false };
  if (statusCode >= 500 || statusCode === 408 || statusCode === 429) return { ok: false, retryable: true };
  return { ok: false, retryable: false };
}

function statusError(statusCode: number): string | null {
  if (statusCode >= 200 && statusCode < 300) return null;
  if (statusCode >= 300 && statusCode < 400) return `HTTP ${statusCode} (redirects are not followed)`;
  return `HTTP ${statusCode}`;
}

/** The error and its causes (undici wraps a socket's error in its own), outermost first. */
function errorChain(err: unknown): { code?: unknown; message?: unknown }[] {
  const chain: { code?: unknown; message?: unknown }[] = [];
  const visit = (e: unknown, depth: number): void => {
    if (e === null || typeof e !== 'object' || depth > 4) return;
    chain.push(e as { code?: unknown; message?: unknown });
    const nested = (e as { errors?: unknown }).errors;
    if (Array.isArray(nested)) for (const n of nested) visit(n, depth + 1);
    visit((e as { cause?: unknown }).cause, depth + 1);
  };
  visit(err, 0);
  return chain;
}

function describeError(err: unknown): { error: string; retryable: boolean } {
  const chain = errorChain(err);
  const withCode = (code: string) => chain.find((e) => e.code === code);
  const blocked = withCode(CALLBACK_BLOCKED_CODE);
  if (blocked) {
    return {
      error: typeof blocked.message === 'string' ? blocked.message : 'callback target not allowed',
      retryable: false,
    };
  }
  if (withCode('ECONNREFUSED')) return { error: 'connection refused', retryable: true };
  // A request the client refuses to send (an invalid header value) will not get better on retry.
  if (withCode('UND_ERR_INVALID_ARG')) return { error: messageOf(err), retryable: false };
  const inner = chain.find((e) => typeof e.code === 'string' && typeof e.message === 'string' && e.message);
  return { error: inner ? (inner.message as string) : messageOf(err), retryable: true };
}

function messageOf(err: unknown): string {
  return err instanceof Error && err.message ? err.message : String(err);
}

/**
 * POSTs one webhook. Never throws; every outcome is a {@link DeliveryResult}. `timeoutMs` bounds the
 * whole exchange (DNS, connect, TLS, request, response headers and the bounded body read).
 */
export function deliverWebhook(req: DeliveryRequest): Promise<DeliveryResult> {
  const started = performance.now();
  const elapsed = (): number => Math.round(performance.now() - started);

  let url: URL;
  try {
    url = parseCallbackUrl(req.url);
    const literal = ipLiteralHost(url);
    // Node does not call `lookup` for IP literals, so they are checked here before connecting.
    if (!req.allowPrivateTargets && literal !== null && !isPublicAddress(literal)) {
      throw new CallbackUrlError(
        'callback_url_not_allowed',
        `callback target ${literal} is not a public address`,
      );
    }
  } catch (err) {
    return Promise.resolve({
      ok: false,
      statusCode: null,
      error: messageOf(err),
      durationMs: elapsed(),
      retryable: false,
    });
  }

  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), Math.max(1, req.timeoutMs));

  return (async (): Promise<DeliveryResult> => {
    try {
      const response = await agents[req.allowPrivateTargets ? 'permissive' : 'guarded'].request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': WEBHOOK_USER_AGENT,
          ...req.headers,
          'content-length': String(Buffer.byteLength(req.body, 'utf8')),
        },
        body: req.body,
        signal: abort.signal,
      });
      const { statusCode } = response;
      // The body is read (and discarded) so the connection can be kept; too much of it, or a body
      // still coming when the time is up, and the connection is dropped instead. The status decides.
      let received = 0;
      try {
        for await (const chunk of response.body) {
          received += (chunk as Buffer).length;
          if (received > MAX_RESPONSE_BODY_BYTES) {
            response.body.destroy();
            break;
          }
        }
      } catch {
        // A body cut short (the timeout, the peer): the status has arrived and decides.
      }
      return {
        ...classifyStatus(statusCode),
        statusCode,
        error: statusError(statusCode),
        durationMs: elapsed(),
      };
    } catch (err) {
      // No status: the exchange failed before the answer, or the time ran out waiting for it.
      const failure = abort.signal.aborted ? { error: 'timeout', retryable: true } : describeError(err);
      return { ok: false, statusCode: null, ...failure, durationMs: elapsed() };
    } finally {
      clearTimeout(timer);
    }
  })();
}
