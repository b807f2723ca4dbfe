import http from 'node:http';
import https from 'node:https';
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

// Keep-alive agents, one per protocol. There are two sets because the agent pools sockets by
// host:port only: a socket opened while private targets were allowed must never be reused by a delivery
// that forbids them (the guarded lookup only runs when a socket is created). `timeout` closes idle
// pooled sockets; it does not affect in-flight requests (those use the total timeout below).
// maxFreeSockets must not be below the deliveries in flight: a socket freed while that many are idle
// is closed, and with 16 (for 32 in flight) a receiver saw a new connection every 3.4 requests.
const AGENT_OPTIONS = { keepAlive: true, maxSockets: 64, maxFreeSockets: 64, timeout: 30_000 };
const agents = {
  guarded: { http: new http.Agent(AGENT_OPTIONS), https: new https.Agent(AGENT_OPTIONS) },
  permissive: { http: new http.Agent(AGENT_OPTIONS), https: new https.Agent(AGENT_OPTIONS) },
};
const lookups = { guarded: guardedLookup(false), permissive: guardedLookup(true) };

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

function errorCodes(err: unknown): string[] {
  const codes: string[] = [];
  const visit = (e: unknown): void => {
    if (e === null || typeof e !== 'object') return;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
    const nested = (e as { errors?: unknown }).errors;
    if (Array.isArray(nested)) for (const n of nested) visit(n);
  };
  visit(err);
  return codes;
}

function describeError(err: unknown): { error: string; retryable: boolean } {
  const codes = errorCodes(err);
  if (codes.includes(CALLBACK_BLOCKED_CODE)) {
    return { error: err instanceof Error ? err.message : 'callback target not allowed', retryable: false };
  }
  if (codes.includes('ECONNREFUSED')) return { error: 'connection refused', retryable: true };
  const message = err instanceof Error && err.message ? err.message : (codes[0] ?? String(err));
  return { error: message, retryable: true };
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
    const error = err instanceof Error ? err.message : String(err);
    return Promise.resolve({ ok: false, statusCode: null, error, durationMs: elapsed(), retryable: false });
  }

  return new Promise<DeliveryResult>((resolve) => {
    let settled = false;
    let statusCode: number | null = null;
    let request: http.ClientRequest | undefined;

    const finish = (result: Omit<DeliveryResult, 'durationMs'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...result, durationMs: elapsed() });
    };
    const finishWithStatus = (code: number): void => {
      finish({ ...classifyStatus(code), statusCode: code, error: statusError(code) });
    };

    const timer = setTimeout(
      () => {
        if (statusCode !== null) {
          // The receiver answered; only the body drain was slow. The status decides.
          finishWithStatus(statusCode);
        } else {
          finish({ ok: false, statusCode: null, error: 'timeout', retryable: true });
        }
        request?.destroy();
      },
      Math.max(1, req.timeoutMs),
    );

    const mode = req.allowPrivateTargets ? 'permissive' : 'guarded';
    const isHttps = url.protocol === 'https:';
    const headers: Record<string, string | number> = {
      'Content-Type': 'application/json',
      'User-Agent': WEBHOOK_USER_AGENT,
      ...req.headers,
      'Content-Length': Buffer.byteLength(req.body, 'utf8'),
    };

    try {
      const options: http.RequestOptions = {
        method: 'POST',
        hostname: ipLiteralHost(url) ?? url.hostname,
        port: url.port === '' ? (isHttps ? 443 : 80) : Number(url.port),
        path: `${url.pathname}${url.search}`,
        headers,
        agent: isHttps ? agents[mode].https : agents[mode].http,
        lookup: lookups[mode],
      };
      request = (isHttps ? https : http).request(options, (res) => {
        statusCode = res.statusCode ?? 0;
        const code = statusCode;
        let received = 0;
        res.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received > MAX_RESPONSE_BODY_BYTES) {
            // Too much to drain: drop the connection instead of reading on.
            res.destroy();
            finishWithStatus(code);
          }
        });
        res.on('end', () => finishWithStatus(code));
        res.on('error', () => finishWithStatus(code));
        res.on('close', () => finishWithStatus(code));
      });
      request.on('error', (err) => {
        if (statusCode !== null) {
          finishWithStatus(statusCode);
          return;
        }
        finish({ ok: false, statusCode: null, ...describeError(err) });
      });
      request.end(req.body, 'utf8');
    } catch (err) {
      // Synchronous failures (e.g. invalid header values) will not get better on retry.
      finish({
        ok: false,
        statusCode: null,
        error: err instanceof Error ? err.message : String(err),
        retryable: false,
      });
      request?.destroy();
    }
  });
}
