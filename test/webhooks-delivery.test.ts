import { createHmac } from 'node:crypto';
import type { LookupAddress } from 'node:dns';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  DEFAULT_RETRY_FOR_MS,
  nextRetryDelayMs,
  RETRY_BASE_DELAY_MS,
  RETRY_MAX_DELAY_MS,
  shouldGiveUp,
} from '../src/webhooks/backoff.js';
import { DeliveryPool } from '../src/webhooks/delivery-pool.js';
import {
  EndpointBreakers,
  FAILURES_TO_PAUSE,
  FIRST_PAUSE_MS,
  MAX_PAUSE_MS,
} from '../src/webhooks/endpoint-breakers.js';
import { deliverWebhook } from '../src/webhooks/http-delivery.js';
import { SIGNATURE_HEADER, signPayload, verifySignature } from '../src/webhooks/signature.js';
import {
  CallbackUrlError,
  checkCallbackUrl,
  guardedLookup,
  isPublicAddress,
  type LookupAllResolver,
} from '../src/webhooks/targets.js';

const SECRET = 'whsec_test_5f1c2a';
const BODY = '{"id":"evt_01","type":"message.status","data":{"status":"delivered","to":"+33612345678"}}';
const T = 1_700_000_000;

function expectedHmac(secret: string, t: number, body: string): string {
  return createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
}

describe('webhook signature', () => {
  it('has the documented header name', () => {
    expect(SIGNATURE_HEADER).toBe('Relais-Signature');
  });

  it('produces t=…,v1=<hex HMAC-SHA256 of "t.body">', () => {
    const header = signPayload(SECRET, BODY, T);
    expect(header).toBe(`t=${T},v1=${expectedHmac(SECRET, T, BODY)}`);
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
  });

  it('signs with several secrets during rotation', () => {
    const header = signPayload(['new-secret', 'old-secret'], BODY, T);
    expect(header).toBe(
      `t=${T},v1=${expectedHmac('new-secret', T, BODY)},v1=${expectedHmac('old-secret', T, BODY)}`,
    );
    expect(verifySignature('new-secret', BODY, header, { nowSeconds: T })).toBe(true);
    expect(verifySignature('old-secret', BODY, header, { nowSeconds: T })).toBe(true);
    expect(verifySignature('other', BODY, header, { nowSeconds: T })).toBe(false);
  });

  it('verifies a correct signature, tolerating spaces, case and extra v1 values', () => {
    const hex = expectedHmac(SECRET, T, BODY);
    const header = signPayload(SECRET, BODY, T);
    expect(verifySignature(SECRET, BODY, header, { nowSeconds: T + 10 })).toBe(true);
    expect(verifySignature(SECRET, BODY, ` t = ${T} ,  v1 = ${hex} `, { nowSeconds: T })).toBe(true);
    expect(verifySignature(SECRET, BODY, `t=${T},v1=${hex.toUpperCase()}`, { nowSeconds: T })).toBe(true);
    expect(verifySignature(SECRET, BODY, `t=${T},v1=${'0'.repeat(64)},v1=${hex}`, { nowSeconds: T })).toBe(
      true,
    );
    expect(verifySignature(SECRET, BODY, `t=${T},v0=zzz,v1=${hex}`, { nowSeconds: T })).toBe(true);
  });

  it('rejects a tampered body or a wrong secret', () => {
    const header = signPayload(SECRET, BODY, T);
    expect(verifySignature(SECRET, BODY.replace('delivered', 'failed'), header, { nowSeconds: T })).toBe(
      false,
    );
    expect(verifySignature(SECRET, `${BODY} `, header, { nowSeconds: T })).toBe(false);
    expect(verifySignature('whsec_other', BODY, header, { nowSeconds: T })).toBe(false);
  });

  it('rejects stale and far-future timestamps', () => {
    const header = signPayload(SECRET, BODY, T);
    expect(verifySignature(SECRET, BODY, header, { nowSeconds: T + 300 })).toBe(true);
    expect(verifySignature(SECRET, BODY, header, { nowSeconds: T + 301 })).toBe(false);
    expect(verifySignature(SECRET, BODY, header, { nowSeconds: T - 301 })).toBe(false);
    expect(verifySignature(SECRET, BODY, header, { nowSeconds: T + 3600, toleranceSeconds: 3600 })).toBe(
      true,
    );
    expect(verifySignature(SECRET, BODY, header, { nowSeconds: T + 61, toleranceSeconds: 60 })).toBe(false);
  });

  it('rejects garbage headers without throwing', () => {
    const hex = expectedHmac(SECRET, T, BODY);
    const garbage: (string | null | undefined)[] = [
      undefined,
      null,
      '',
      'garbage',
      ',,,',
      `v1=${hex}`,
      `t=${T}`,
      `t=${T},v1=`,
      `t=${T},v1=${hex.slice(0, 63)}`,
      `t=${T},v1=${hex}00`,
      `t=${T},v1=${'g'.repeat(64)}`,
      `t=abc,v1=${hex}`,
      `t=-${T},v1=${hex}`,
      `t=${T}.5,v1=${hex}`,
      `t=${T},t=${T},v1=${hex}`,
      `=${T},v1=${hex}`,
      `t=${T},v1=${hex},${'x'.repeat(5000)}`,
    ];
    for (const header of garbage) {
      expect(verifySignature(SECRET, BODY, header, { nowSeconds: T }), String(header)).toBe(false);
    }
  });
});

describe('callback URL checks', () => {
  const blocked = [
    'http://127.0.0.1/hook',
    'http://127.0.0.1:8080/hook',
    'http://10.1.2.3/hook',
    'http://192.168.1.10/hook',
    'http://172.16.0.1/hook',
    'http://169.254.169.254/latest/meta-data/',
    'http://[::1]/hook',
    'http://[fe80::1]/hook',
    'http://[fc00::1]/hook',
    'http://[::ffff:127.0.0.1]/hook',
    'http://[::ffff:10.0.0.1]/hook',
    'http://0.0.0.0/hook',
    'http://100.64.0.1/hook',
    'http://2130706433/',
    'http://0x7f.1/',
    'http://0177.0.0.1/',
    'http://127.1/',
    'http://localhost/hook',
    'http://LOCALHOST.:3000/hook',
    'http://api.localhost/hook',
    'http://255.255.255.255/',
    'http://224.0.0.1/',
  ];

  it('accepts public http(s) URLs and returns the parsed URL', () => {
    for (const url of [
      'https://example.com/webhooks/relais?x=1',
      'http://hooks.example.org:8080/a',
      'https://93.184.216.34/hook',
      'https://[2606:4700:4700::1111]/hook',
    ]) {
      const parsed = checkCallbackUrl(url, { allowPrivateTargets: false });
      expect(parsed).toBeInstanceOf(URL);
      expect(parsed.href).toBe(new URL(url).href);
    }
  });

  it('rejects invalid URLs with invalid_callback_url', () => {
    for (const url of [
      'ftp://example.com/file',
      'javascript:alert(1)',
      'file:///etc/passwd',
      'not a url',
      '',
      '/relative/path',
      'https://user:pass@example.com/hook',
      'https://user@example.com/hook',
      `https://example.com/${'a'.repeat(2048)}`,
    ]) {
      for (const allowPrivateTargets of [false, true]) {
        let caught: unknown;
        try {
          checkCallbackUrl(url, { allowPrivateTargets });
        } catch (err) {
          caught = err;
        }
        expect(caught, url).toBeInstanceOf(CallbackUrlError);
        expect((caught as CallbackUrlError).code, url).toBe('invalid_callback_url');
      }
    }
  });

  it('accepts a URL of exactly 2048 characters', () => {
    const base = 'https://example.com/';
    const url = base + 'a'.repeat(2048 - base.length);
    expect(url.length).toBe(2048);
    expect(() => checkCallbackUrl(url, { allowPrivateTargets: false })).not.toThrow();
  });

  it('rejects private, loopback, link-local and other non-public targets', () => {
    for (const url of blocked) {
      let caught: unknown;
      try {
        checkCallbackUrl(url, { allowPrivateTargets: false });
      } catch (err) {
        caught = err;
      }
      expect(caught, url).toBeInstanceOf(CallbackUrlError);
      expect((caught as CallbackUrlError).code, url).toBe('callback_url_not_allowed');
    }
  });

  it('accepts all of them when private targets are allowed', () => {
    for (const url of blocked) {
      expect(() => checkCallbackUrl(url, { allowPrivateTargets: true }), url).not.toThrow();
    }
  });

  it('classifies addresses', () => {
    for (const ip of ['8.8.8.8', '93.184.216.34', '2606:4700:4700::1111', '[2a00:1450:4007:80e::200e]']) {
      expect(isPublicAddress(ip), ip).toBe(true);
    }
    for (const ip of [
      '127.0.0.1',
      '10.0.0.1',
      '172.31.255.255',
      '192.168.0.1',
      '169.254.169.254',
      '100.64.0.1',
      '100.127.255.254',
      '0.0.0.0',
      '255.255.255.255',
      '224.0.0.251',
      '192.0.2.1',
      '198.18.0.1',
      '240.0.0.1',
      '::',
      '::1',
      '[::1]',
      'fe80::1',
      'fe80::1%eth0',
      'fd12:3456:789a::1',
      'ff02::1',
      '::ffff:127.0.0.1',
      '::ffff:169.254.169.254',
      '::127.0.0.1',
      '64:ff9b::a00:1',
      '2001:db8::1',
      'localhost',
      'example.com',
      '',
    ]) {
      expect(isPublicAddress(ip), ip).toBe(false);
    }
  });
});

function lookupOnce(
  lookup: ReturnType<typeof guardedLookup>,
  hostname: string,
  options: { all?: boolean; family?: number },
): Promise<{ err: NodeJS.ErrnoException | null; address: unknown; family: number | undefined }> {
  return new Promise((resolve) => {
    lookup(hostname, options, (err, address, family) => resolve({ err, address, family }));
  });
}

describe('guardedLookup', () => {
  const fake =
    (addresses: LookupAddress[]): LookupAllResolver =>
    (_hostname, options, callback) => {
      expect(options.all).toBe(true);
      callback(null, addresses);
    };
  const mixed: LookupAddress[] = [
    { address: '93.184.216.34', family: 4 },
    { address: '10.0.0.5', family: 4 },
  ];
  const publicOnly: LookupAddress[] = [
    { address: '93.184.216.34', family: 4 },
    { address: '2606:2800:220:1:248:1893:25c8:1946', family: 6 },
  ];

  it('blocks a name if any resolved address is not public', async () => {
    for (const all of [true, false]) {
      const { err } = await lookupOnce(guardedLookup(false, fake(mixed)), 'rebind.example', { all });
      expect(err?.code).toBe('ECALLBACKBLOCKED');
      expect(err?.message).toContain('10.0.0.5');
    }
  });

  it('returns the address list for all:true and the first address otherwise', async () => {
    const all = await lookupOnce(guardedLookup(false, fake(publicOnly)), 'ok.example', { all: true });
    expect(all.err).toBeNull();
    expect(all.address).toEqual(publicOnly);
    const one = await lookupOnce(guardedLookup(false, fake(publicOnly)), 'ok.example', {});
    expect(one.err).toBeNull();
    expect(one.address).toBe('93.184.216.34');
    expect(one.family).toBe(4);
  });

  it('passes private addresses when private targets are allowed', async () => {
    const { err, address } = await lookupOnce(guardedLookup(true, fake(mixed)), 'internal.example', {});
    expect(err).toBeNull();
    expect(address).toBe('93.184.216.34');
  });

  it('propagates resolver errors', async () => {
    const failing: LookupAllResolver = (hostname, _options, callback) => {
      const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
      err.code = 'ENOTFOUND';
      callback(err, []);
    };
    const { err } = await lookupOnce(guardedLookup(false, failing), 'nope.invalid', { all: true });
    expect(err?.code).toBe('ENOTFOUND');
  });

  it('blocks localhost through the real resolver', async () => {
    const { err } = await lookupOnce(guardedLookup(false), 'localhost', { all: true });
    expect(err?.code).toBe('ECALLBACKBLOCKED');
    const allowed = await lookupOnce(guardedLookup(true), 'localhost', { all: true });
    expect(allowed.err).toBeNull();
    expect(Array.isArray(allowed.address) && allowed.address.length > 0).toBe(true);
  });
});

interface Received {
  method: string | undefined;
  url: string | undefined;
  headers: http.IncomingHttpHeaders;
  body: string;
}

describe('deliverWebhook against a real HTTP server', () => {
  let server: http.Server;
  let base: string;
  let port: number;
  const received: Received[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({
          method: req.method,
          url: req.url,
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        });
        const path = new URL(req.url ?? '/', 'http://x').pathname;
        switch (path) {
          case '/ok':
            res.writeHead(200, { 'Content-Type': 'text/plain' }).end('thanks');
            break;
          case '/accepted':
            res.writeHead(204).end();
            break;
          case '/big':
            res.writeHead(200).end(Buffer.alloc(256 * 1024, 0x61));
            break;
          case '/hang':
            break; // never answers
          case '/slow-body':
            res.writeHead(200).write('partial'); // headers, then the body never ends
            break;
          case '/redirect':
            res.writeHead(302, { Location: '/ok' }).end();
            break;
          default: {
            const status = Number(path.slice(1));
            res.writeHead(Number.isInteger(status) && status >= 200 ? status : 400).end('nope');
          }
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    base = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const deliver = (url: string, extra: Partial<Parameters<typeof deliverWebhook>[0]> = {}) =>
    deliverWebhook({ url, body: BODY, headers: {}, timeoutMs: 2000, allowPrivateTargets: true, ...extra });

  it('delivers: 200 is ok and body and headers arrive exactly as sent', async () => {
    const body = '{"id":"evt_ü","note":"héllo ✓"}';
    const headers = { [SIGNATURE_HEADER]: signPayload(SECRET, body, T), 'Relais-Event-Id': 'evt_01HX' };
    const before = received.length;
    const result = await deliver(`${base}/ok?tenant=t1`, { body, headers });
    expect(result).toMatchObject({ ok: true, statusCode: 200, error: null, retryable: false });
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
    expect(received.length).toBe(before + 1);
    const got = received.at(-1)!;
    expect(got.method).toBe('POST');
    expect(got.url).toBe('/ok?tenant=t1');
    expect(got.body).toBe(body);
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.headers['user-agent']).toBe('Relais-Webhooks/1.0');
    expect(got.headers['relais-signature']).toBe(headers[SIGNATURE_HEADER]);
    expect(got.headers['relais-event-id']).toBe('evt_01HX');
    expect(got.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expect(
      verifySignature(SECRET, got.body, got.headers['relais-signature'] as string, { nowSeconds: T }),
    ).toBe(true);
  });

  it('treats any 2xx as ok', async () => {
    expect(await deliver(`${base}/accepted`)).toMatchObject({ ok: true, statusCode: 204, error: null });
  });

  it('500 is retryable', async () => {
    expect(await deliver(`${base}/500`)).toMatchObject({
      ok: false,
      statusCode: 500,
      error: 'HTTP 500',
      retryable: true,
    });
    expect(await deliver(`${base}/503`)).toMatchObject({ ok: false, statusCode: 503, retryable: true });
  });

  it('408 and 429 are retryable', async () => {
    expect(await deliver(`${base}/429`)).toMatchObject({ ok: false, statusCode: 429, retryable: true });
    expect(await deliver(`${base}/408`)).toMatchObject({ ok: false, statusCode: 408, retryable: true });
  });

  it('404 and other 4xx are permanent failures', async () => {
    expect(await deliver(`${base}/404`)).toMatchObject({
      ok: false,
      statusCode: 404,
      error: 'HTTP 404',
      retryable: false,
    });
    expect(await deliver(`${base}/410`)).toMatchObject({ ok: false, statusCode: 410, retryable: false });
  });

  it('302 is not followed and not retryable', async () => {
    const before = received.length;
    const result = await deliver(`${base}/redirect`);
    expect(result).toMatchObject({ ok: false, statusCode: 302, retryable: false });
    expect(result.error).toContain('302');
    expect(received.length).toBe(before + 1);
  });

  it('reads at most 64 KiB of a large response body', async () => {
    expect(await deliver(`${base}/big`)).toMatchObject({ ok: true, statusCode: 200 });
    // The connection was dropped; the next delivery still works.
    expect(await deliver(`${base}/ok`)).toMatchObject({ ok: true, statusCode: 200 });
  });

  it('a server that never answers is a retryable timeout', async () => {
    const result = await deliver(`${base}/hang`, { timeoutMs: 200 });
    expect(result).toMatchObject({ ok: false, statusCode: null, error: 'timeout', retryable: true });
    expect(result.durationMs).toBeGreaterThanOrEqual(150);
    expect(result.durationMs).toBeLessThan(2000);
  });

  it('once the status has arrived, a stalled body does not turn the result into a timeout', async () => {
    const result = await deliver(`${base}/slow-body`, { timeoutMs: 200 });
    expect(result).toMatchObject({ ok: true, statusCode: 200, error: null });
  });

  it('a closed port is a retryable connection error', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const result = await deliver(`http://127.0.0.1:${closedPort}/ok`);
    expect(result).toMatchObject({
      ok: false,
      statusCode: null,
      error: 'connection refused',
      retryable: true,
    });
  });

  it('blocks 127.0.0.1 and localhost when private targets are not allowed', async () => {
    const before = received.length;
    const literal = await deliver(`${base}/ok`, { allowPrivateTargets: false });
    expect(literal).toMatchObject({ ok: false, statusCode: null, retryable: false });
    expect(literal.error).toContain('127.0.0.1');

    const named = await deliver(`http://localhost:${port}/ok`, { allowPrivateTargets: false });
    expect(named).toMatchObject({ ok: false, statusCode: null, retryable: false });
    expect(named.error).toMatch(/resolves to non-public address/);

    const mapped = await deliver(`http://[::ffff:127.0.0.1]:${port}/ok`, { allowPrivateTargets: false });
    expect(mapped).toMatchObject({ ok: false, statusCode: null, retryable: false });
    expect(received.length).toBe(before);
  });

  it('reaches localhost when private targets are allowed', async () => {
    // localhost may resolve to ::1 first; Node tries the next address (the server listens on IPv4 only).
    const result = await deliver(`http://localhost:${port}/ok`);
    expect(result).toMatchObject({ ok: true, statusCode: 200 });
  });

  it('rejects invalid URLs without throwing', async () => {
    for (const url of ['ftp://example.com/x', 'not a url', 'http://user:pw@example.com/']) {
      const result = await deliver(url);
      expect(result).toMatchObject({ ok: false, statusCode: null, retryable: false });
      expect(result.error).toBeTruthy();
    }
  });
});

describe('retry back-off', () => {
  const zero = () => 0;
  const one = () => 1;

  it('starts at 5 s with equal jitter', () => {
    expect(nextRetryDelayMs(1, zero)).toBe(RETRY_BASE_DELAY_MS / 2);
    expect(nextRetryDelayMs(1, one)).toBe(RETRY_BASE_DELAY_MS);
    expect(nextRetryDelayMs(2, zero)).toBe(5_000);
    expect(nextRetryDelayMs(2, one)).toBe(10_000);
    expect(nextRetryDelayMs(3, one)).toBe(20_000);
    expect(nextRetryDelayMs(1, () => 0.5)).toBe(3_750);
  });

  it('stays within [cap/2, cap], is monotonic and capped at 1 h', () => {
    let prevLow = 0;
    let prevHigh = 0;
    for (let attempt = 1; attempt <= 200; attempt++) {
      const low = nextRetryDelayMs(attempt, zero);
      const high = nextRetryDelayMs(attempt, one);
      const cap = Math.min(RETRY_MAX_DELAY_MS, RETRY_BASE_DELAY_MS * 2 ** (attempt - 1));
      expect(low).toBe(cap / 2);
      expect(high).toBe(cap);
      expect(low).toBeGreaterThanOrEqual(prevLow);
      expect(high).toBeGreaterThanOrEqual(prevHigh);
      expect(high).toBeLessThanOrEqual(RETRY_MAX_DELAY_MS);
      const sample = nextRetryDelayMs(attempt);
      expect(sample).toBeGreaterThanOrEqual(low);
      expect(sample).toBeLessThanOrEqual(high);
      prevLow = low;
      prevHigh = high;
    }
    expect(nextRetryDelayMs(11, one)).toBe(RETRY_MAX_DELAY_MS);
    expect(nextRetryDelayMs(10, one)).toBeLessThan(RETRY_MAX_DELAY_MS);
    expect(nextRetryDelayMs(1e9, one)).toBe(RETRY_MAX_DELAY_MS);
    expect(Number.isFinite(nextRetryDelayMs(Number.POSITIVE_INFINITY, one))).toBe(true);
    expect(nextRetryDelayMs(0, one)).toBe(RETRY_BASE_DELAY_MS);
  });

  it('reaches the 24 h window after a finite number of retries', () => {
    const retriesUntilGiveUp = (random: () => number): number => {
      const created = 0;
      let now = 0;
      let attempt = 0;
      while (!shouldGiveUp(created, now, DEFAULT_RETRY_FOR_MS)) {
        attempt++;
        now += nextRetryDelayMs(attempt, random);
        if (attempt > 1000) throw new Error('back-off never reaches the retry window');
      }
      return attempt;
    };
    expect(retriesUntilGiveUp(one)).toBe(33);
    expect(retriesUntilGiveUp(zero)).toBe(57);
    expect(retriesUntilGiveUp(() => 0.5)).toBe(41);
    const random = retriesUntilGiveUp(Math.random);
    expect(random).toBeGreaterThanOrEqual(33);
    expect(random).toBeLessThanOrEqual(57);
  });

  it('gives up only once the event is older than the window', () => {
    const created = 1_000_000;
    expect(shouldGiveUp(created, created, DEFAULT_RETRY_FOR_MS)).toBe(false);
    expect(shouldGiveUp(created, created + DEFAULT_RETRY_FOR_MS, DEFAULT_RETRY_FOR_MS)).toBe(false);
    expect(shouldGiveUp(created, created + DEFAULT_RETRY_FOR_MS + 1, DEFAULT_RETRY_FOR_MS)).toBe(true);
    expect(DEFAULT_RETRY_FOR_MS).toBe(24 * 60 * 60 * 1000);
  });
});

describe('webhook requests on their own thread (DeliveryPool)', () => {
  let server: http.Server;
  let base: string;
  const hung: http.ServerResponse[] = [];
  const held: http.ServerResponse[] = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      req.resume();
      if (req.url === '/hang') hung.push(res);
      else if (req.url === '/hold') held.push(res);
      else req.on('end', () => res.writeHead(204).end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const res of hung) res.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const request = (path: string) => ({
    url: `${base}${path}`,
    body: BODY,
    headers: { [SIGNATURE_HEADER]: signPayload(SECRET, BODY, T) },
    timeoutMs: 5000,
    allowPrivateTargets: true,
  });

  it('answers with the thread’s results, including the guard’s refusals', async () => {
    const pool = new DeliveryPool(4);
    try {
      const ok = await pool.deliver(request('/ok'));
      expect(ok).toMatchObject({ ok: true, statusCode: 204, error: null });
      const refused = await pool.deliver({ ...request('/ok'), allowPrivateTargets: false });
      expect(refused).toMatchObject({ ok: false, statusCode: null, retryable: false });
      expect(refused.error).toMatch(/not a public address/);
    } finally {
      await pool.close();
    }
  });

  it('runs at most its exchanges at once; the others wait, and their timeouts start with their exchange', async () => {
    const pool = new DeliveryPool(2);
    try {
      const first = [pool.deliver(request('/hold')), pool.deliver(request('/hold'))];
      // Times out after 1 s of its own exchange: it must not be charged the 1.5 s it waits.
      const third = pool.deliver({ ...request('/hold'), timeoutMs: 1000 });
      await vi.waitFor(() => expect(held).toHaveLength(2));
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(held).toHaveLength(2);
      for (const res of held.splice(0)) res.writeHead(200).end();
      for (const result of await Promise.all(first))
        expect(result).toMatchObject({ ok: true, statusCode: 200 });
      await vi.waitFor(() => expect(held).toHaveLength(1));
      held.shift()!.writeHead(200).end();
      expect(await third).toMatchObject({ ok: true, statusCode: 200 });
    } finally {
      for (const res of held.splice(0)) res.destroy();
      await pool.close();
    }
  });

  it('drops the requests waiting in the thread on demand (null: not attempted), not the one under way', async () => {
    const pool = new DeliveryPool(1);
    try {
      const first = pool.deliver(request('/hold'));
      const waiting = [pool.deliver(request('/hold')), pool.deliver(request('/hold'))];
      await vi.waitFor(() => expect(held).toHaveLength(1));
      pool.dropWaiting();
      expect(await Promise.all(waiting)).toEqual([null, null]);
      held.shift()!.writeHead(200).end();
      expect(await first).toMatchObject({ ok: true, statusCode: 200 });
      expect(held).toHaveLength(0);
    } finally {
      for (const res of held.splice(0)) res.destroy();
      await pool.close();
    }
  });

  it('fails the requests in flight as retryable when its thread dies, and starts another', async () => {
    const pool = new DeliveryPool(4);
    try {
      const inFlight = pool.deliver(request('/hang'));
      await new Promise((resolve) => setTimeout(resolve, 200));
      // The thread is private: reach it the way a crash would, from outside.
      await (
        pool as unknown as { thread: { worker: { terminate(): Promise<number> } } }
      ).thread.worker.terminate();
      const failed = await inFlight;
      // Marked local: the endpoint did not fail, so it does not count toward pausing it.
      expect(failed).toMatchObject({ ok: false, statusCode: null, retryable: true, local: true });
      expect(failed.error).toMatch(/thread exited/);
      expect(await pool.deliver(request('/ok'))).toMatchObject({ ok: true, statusCode: 204 });
    } finally {
      await pool.close();
    }
  });
});

describe('endpoint breakers', () => {
  const key = 'ten_a\u0000https://a.example/hook';
  const PROBE_MS = 10_000;
  const failTimes = (b: EndpointBreakers, n: number, now: number) => {
    const paused: boolean[] = [];
    for (let i = 0; i < n; i++) paused.push(b.record(key, 'failed', now));
    return paused;
  };

  it(`pauses an endpoint after ${FAILURES_TO_PAUSE} failures in a row, and only that endpoint`, () => {
    const b = new EndpointBreakers(PROBE_MS);
    expect(failTimes(b, FAILURES_TO_PAUSE - 1, 1000)).not.toContain(true);
    expect(b.deferUntil(key, 1000)).toBeNull();
    expect(b.record(key, 'failed', 1000)).toBe(true);
    expect(b.deferUntil(key, 1001)).toBe(1000 + FIRST_PAUSE_MS);
    expect(b.deferUntil('ten_b\u0000https://b.example/hook', 1001)).toBeNull();
    // Failures of deliveries still in flight when it paused change nothing.
    expect(b.record(key, 'failed', 2000)).toBe(false);
    expect(b.deferUntil(key, 2001)).toBe(1000 + FIRST_PAUSE_MS);
  });

  it('an answer resets the count: failures must come in a row', () => {
    const b = new EndpointBreakers(PROBE_MS);
    failTimes(b, FAILURES_TO_PAUSE - 1, 0);
    b.record(key, 'ok', 0);
    expect(failTimes(b, FAILURES_TO_PAUSE - 1, 0)).not.toContain(true);
    expect(b.deferUntil(key, 0)).toBeNull();
  });

  it('after the pause one probe goes; its failure doubles the pause (up to the cap), its success ends it', () => {
    const b = new EndpointBreakers(PROBE_MS);
    failTimes(b, FAILURES_TO_PAUSE, 0);
    let now = FIRST_PAUSE_MS;
    let pause = FIRST_PAUSE_MS;
    for (let round = 0; round < 8; round++) {
      expect(b.deferUntil(key, now)).toBeNull(); // the probe
      // The others wait as long as the probe may take, not a whole pause.
      expect(b.deferUntil(key, now)).toBe(now + PROBE_MS);
      expect(b.record(key, 'failed', now)).toBe(true);
      pause = Math.min(pause * 2, MAX_PAUSE_MS);
      // Those that come back then find the next pause.
      expect(b.deferUntil(key, now + PROBE_MS)).toBe(now + pause);
      now += pause;
    }
    expect(pause).toBe(MAX_PAUSE_MS);
    expect(b.deferUntil(key, now)).toBeNull();
    expect(b.deferUntil(key, now)).toBe(now + PROBE_MS);
    b.record(key, 'ok', now + 50);
    expect(b.deferUntil(key, now + PROBE_MS)).toBeNull();
    expect(b.deferUntil(key, now + PROBE_MS)).toBeNull();
  });

  it('a failure on our side (the delivery thread died) neither counts nor clears, and a probe lost so goes again', () => {
    const b = new EndpointBreakers(PROBE_MS);
    failTimes(b, FAILURES_TO_PAUSE - 1, 0);
    for (let i = 0; i < 10; i++) expect(b.record(key, 'unknown', 0)).toBe(false);
    expect(b.deferUntil(key, 0)).toBeNull();
    expect(b.record(key, 'failed', 0)).toBe(true); // still counted in a row

    const now = FIRST_PAUSE_MS;
    expect(b.deferUntil(key, now)).toBeNull(); // the probe
    expect(b.deferUntil(key, now)).toBe(now + PROBE_MS);
    b.record(key, 'unknown', now + 1);
    expect(b.deferUntil(key, now + 2)).toBeNull(); // a new probe, the pause not doubled
    expect(b.record(key, 'failed', now + 3)).toBe(true);
    expect(b.deferUntil(key, now + 4)).toBe(now + 3 + 2 * FIRST_PAUSE_MS);
  });
});
