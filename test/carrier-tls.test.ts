import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { connectorTls } from '../src/carriers/connector-tls.js';
import { ConfigError, parseConfig } from '../src/config/load.js';
import { CarrierSimulator } from '../src/simulator/simulator.js';
import { type CarrierRig, startCarrierRig, waitBound } from './helpers/carrier.js';
import { databaseKinds } from './helpers/databases.js';
import { loggerInto } from './helpers/log-lines.js';

// Test-only certificates (test/fixtures/tls/README.md): a CA, the simulator's certificate for
// 127.0.0.1, and a client certificate from the same CA.
const FIXTURES = fileURLToPath(new URL('./fixtures/tls/', import.meta.url));
const file = (name: string) => join(FIXTURES, name);
const TLS_SIM = { tls_cert_file: file('server.pem'), tls_key_file: file('server.key') };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function statusOf(rig: CarrierRig, id: string): Promise<string> {
  const row = await rig.t.app.store.db
    .selectFrom('messages')
    .select('status')
    .where('id', '=', id)
    .executeTakeFirstOrThrow();
  return row.status;
}

async function delivered(rig: CarrierRig, id: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while ((await statusOf(rig, id)) !== 'delivered') {
    if (Date.now() > deadline) throw new Error(`message ${id} not delivered`);
    await sleep(20);
  }
}

describe.each(databaseKinds)('SMPP over TLS on $name', (kind) => {
  let rig: CarrierRig | undefined;
  afterEach(async () => {
    await rig?.close();
    rig = undefined;
  });

  it('delivers end to end to a TLS carrier whose CA is given in tls.ca_file', async () => {
    rig = await startCarrierRig(kind, TLS_SIM, { tls: { ca_file: file('ca.pem') } });
    await waitBound(rig);
    const tenant = await rig.t.tenant('Shop');
    const id = await rig.send(tenant.apiKey, { to: '+33612345678', text: 'over TLS' });
    await delivered(rig, id);
    expect(rig.sim.received.map((r) => r.text)).toEqual(['over TLS']);
  });

  it('presents a client certificate to a carrier that requires one', async () => {
    const sim = { ...TLS_SIM, tls_client_ca_file: file('ca.pem') };
    rig = await startCarrierRig(kind, sim, {
      tls: { ca_file: file('ca.pem'), cert_file: file('client.pem'), key_file: file('client.key') },
    });
    await waitBound(rig);
    const tenant = await rig.t.tenant('Shop');
    await delivered(rig, await rig.send(tenant.apiKey, { text: 'mutual TLS' }));
  });
});

describe('SMPP over TLS: refusals', () => {
  let rig: CarrierRig | undefined;
  afterEach(async () => {
    await rig?.close();
    rig = undefined;
  });

  it('does not bind to a certificate it cannot verify: the reason is logged and the message waits', async () => {
    const lines: Record<string, unknown>[] = [];
    // tls: true trusts the system's CAs only, which did not issue the test certificate.
    rig = await startCarrierRig(kind0(), TLS_SIM, { tls: true }, {}, { logger: loggerInto(lines) });
    const tenant = await rig.t.tenant('Shop');
    const id = await rig.send(tenant.apiKey, { text: 'not over an unverified link' });
    const deadline = Date.now() + 10_000;
    while (!lines.some((l) => l.msg === 'bind failed')) {
      if (Date.now() > deadline) throw new Error('no bind failure logged');
      await sleep(20);
    }
    const failure = lines.find((l) => l.msg === 'bind failed')!;
    expect(String(failure.err)).toMatch(/certificate/i);
    expect(rig.t.app.carriers.connectors.get('carrier-a')!.boundTransmitters).toBe(0);
    expect(rig.sim.received).toHaveLength(0);
    expect(await statusOf(rig, id)).not.toMatch(/submitted|delivered|failed|rejected/);
  });

  it('does not bind to a TLS carrier that requires a client certificate without one', async () => {
    const lines: Record<string, unknown>[] = [];
    const sim = { ...TLS_SIM, tls_client_ca_file: file('ca.pem') };
    rig = await startCarrierRig(
      kind0(),
      sim,
      { tls: { ca_file: file('ca.pem') } },
      {},
      { logger: loggerInto(lines) },
    );
    await sleep(500);
    expect(rig.t.app.carriers.connectors.get('carrier-a')!.boundTransmitters).toBe(0);
    expect(lines.some((l) => l.msg === 'bind failed')).toBe(true);
  });

  it('accepts any certificate with reject_unauthorized: false, and says so', async () => {
    const lines: Record<string, unknown>[] = [];
    rig = await startCarrierRig(
      kind0(),
      TLS_SIM,
      { tls: { reject_unauthorized: false } },
      {},
      { logger: loggerInto(lines) },
    );
    await waitBound(rig);
    expect(lines.some((l) => String(l.msg).includes('reject_unauthorized is false'))).toBe(true);
  });
});

describe('TLS settings', () => {
  const connector = (tls: unknown) => ({
    connectors: [{ name: 'c', host: '127.0.0.1', port: 2775, system_id: 'relais', tls }],
  });

  it('rejects a certificate without its key and unknown keys, naming the setting', () => {
    expect(() => parseConfig(connector({ cert_file: 'a.pem' }))).toThrow(/tls.*key_file.*go together/s);
    expect(() => parseConfig(connector({ ca: 'x' }))).toThrow(/tls/);
    expect(parseConfig(connector({ ca_file: 'ca.pem' })).connectors[0]!.tls).toEqual({
      ca_file: 'ca.pem',
      reject_unauthorized: true,
    });
    expect(parseConfig(connector(true)).connectors[0]!.tls).toBe(true);
  });

  it('stops the start on a PEM file it cannot read, naming the connector and the path', () => {
    const tlsOf = (tls: unknown) => () => connectorTls(parseConfig(connector(tls)).connectors[0]!);
    expect(tlsOf({ ca_file: file('missing.pem') })).toThrow(
      /^connectors\[c\]\.tls\.ca_file: cannot read .*missing\.pem: ENOENT/,
    );
    expect(tlsOf({ ca_file: file('README.md') })).toThrow(
      /^connectors\[c\]\.tls\.ca_file: .*README\.md is not a PEM file/,
    );
    // A ConfigError: `relais start` prints the sentence alone and exits 1.
    expect(tlsOf({ cert_file: file('client.pem'), key_file: file('nope.key') })).toThrow(ConfigError);
    const read = connectorTls(
      parseConfig(connector({ ca_file: file('ca.pem'), servername: 'smpp.example' })).connectors[0]!,
    );
    expect(read).toMatchObject({ servername: 'smpp.example', rejectUnauthorized: true });
    expect(String((read as { ca: Buffer }).ca)).toContain('-----BEGIN CERTIFICATE-----');
  });

  it('the simulator wants both halves of its certificate, and readable files', async () => {
    expect(() => new CarrierSimulator({ tls_cert_file: file('server.pem') })).toThrow(
      /tls_cert_file and tls_key_file go together/,
    );
    expect(() => new CarrierSimulator({ tls_client_ca_file: file('ca.pem') })).toThrow(
      /tls_client_ca_file needs TLS/,
    );
    const sim = new CarrierSimulator({
      port: 0,
      tls_cert_file: file('ca.pem'),
      tls_key_file: file('nope.key'),
    });
    await expect(sim.start()).rejects.toThrow(/tls_key_file: cannot read .*nope\.key/);
    await sim.stop();
  });
});

function kind0() {
  return databaseKinds[0]!;
}
