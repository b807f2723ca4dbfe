import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DeliveryRequest, type DeliveryResult, deliverWebhook } from '../src/webhooks/http-delivery.js';
import { ensureBuilt, ROOT } from './helpers/server-process.js';

/**
 * Webhooks to an HTTPS endpoint, over real TLS: the server has the test CA's certificate for
 * `localhost` (test/fixtures/tls). Node.js reads extra trusted CAs only when it starts
 * (NODE_EXTRA_CA_CERTS), so the delivery that must trust the CA runs in a child process, with the
 * built module; the others run here, where the CA is not trusted.
 */

const TLS = `${ROOT}test/fixtures/tls/`;
const BODY = '{"id":"evt_tls","type":"message.status","data":{"status":"delivered"}}';

interface Received {
  url: string | undefined;
  body: string;
  signature: string | undefined;
}

const servers: https.Server[] = [];
let port: number;
let otherPort: number;
const received: Received[] = [];

/** An HTTPS endpoint with the test certificate (for localhost and 127.0.0.1), listening on `host`. */
async function listenTls(host: string): Promise<number> {
  const server = https.createServer(
    { cert: readFileSync(`${TLS}server.pem`), key: readFileSync(`${TLS}server.key`) },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({
          url: req.url,
          body: Buffer.concat(chunks).toString('utf8'),
          signature: req.headers['relais-signature'] as string | undefined,
        });
        res.writeHead(204).end();
      });
    },
  );
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  ensureBuilt();
  port = await listenTls('127.0.0.1');
  // Linux answers on all of 127.0.0.0/8: an address the certificate does not name.
  otherPort = await listenTls('127.0.0.2');
});

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

function request(overrides: Partial<DeliveryRequest> = {}): DeliveryRequest {
  return {
    url: `https://localhost:${port}/hook`,
    body: BODY,
    headers: { 'content-type': 'application/json', 'Relais-Signature': 't=1,v1=abc' },
    timeoutMs: 5000,
    allowPrivateTargets: true,
    ...overrides,
  };
}

/** deliverWebhook in a fresh Node.js process that trusts the test CA. */
async function deliverTrustingTestCa(req: DeliveryRequest): Promise<DeliveryResult> {
  const script =
    'const { deliverWebhook } = await import(process.argv[1]);' +
    'process.stdout.write(JSON.stringify(await deliverWebhook(JSON.parse(process.argv[2]))));' +
    'process.exit(0);';
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--input-type=module', '-e', script, `${ROOT}dist/webhooks/http-delivery.js`, JSON.stringify(req)],
    { env: { ...process.env, NODE_EXTRA_CA_CERTS: `${TLS}ca.pem` }, timeout: 20_000 },
  );
  return JSON.parse(stdout) as DeliveryResult;
}

describe('webhooks over HTTPS', () => {
  it('delivers to an endpoint whose certificate a trusted CA signed, body and headers intact', async () => {
    received.length = 0;
    const result = await deliverTrustingTestCa(request());
    expect(result).toMatchObject({ ok: true, statusCode: 204, error: null, retryable: false });
    expect(received).toEqual([{ url: '/hook', body: BODY, signature: 't=1,v1=abc' }]);
  });

  it('refuses a certificate no trusted CA signed, as a retryable failure, sending nothing', async () => {
    received.length = 0;
    const result = await deliverWebhook(request());
    expect(result.ok).toBe(false);
    expect(result.statusCode).toBeNull();
    // The customer may renew the endpoint's certificate (or the operator trust its CA): worth retrying.
    expect(result.retryable).toBe(true);
    expect(result.error).toMatch(/certificate/i);
    expect(received).toEqual([]);
  });

  it('refuses a name that does not match the certificate', async () => {
    received.length = 0;
    const result = await deliverTrustingTestCa(request({ url: `https://127.0.0.2:${otherPort}/hook` }));
    expect(result).toMatchObject({ ok: false, statusCode: null, retryable: true });
    expect(result.error).toMatch(/127\.0\.0\.2 is not in the cert's list/);
    expect(received).toEqual([]);
  });

  it('still refuses a private target over HTTPS when private targets are not allowed', async () => {
    received.length = 0;
    const result = await deliverTrustingTestCa(request({ allowPrivateTargets: false }));
    expect(result).toMatchObject({ ok: false, statusCode: null, retryable: false });
    expect(result.error).toBe('callback target localhost resolves to non-public address 127.0.0.1');
    expect(received).toEqual([]);
  });
});
