import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds, type TestDatabase } from './helpers/databases.js';

/**
 * The built CLI (`node dist/main.js …`) as an operator runs it: tenant and key administration against
 * SQLite (RELAIS_DATA_DIR) and PostgreSQL (DATABASE_URL), usage and configuration errors with their exit
 * codes, and a running server that sees tenants made by the CLI at once and its revocations within 0.5 s.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = join(ROOT, 'dist', 'main.js');
const MESSAGE = { to: '+33612345678', from: 'Acme', text: 'Hello from the CLI test' };

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment without any Relais setting inherited from the shell running the tests. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) {
    if (name.startsWith('RELAIS_') || name === 'DATABASE_URL' || name === 'NODE_OPTIONS') delete env[name];
  }
  return { ...env, ...extra };
}

function spawnCli(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, [MAIN, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs one CLI command to completion. */
function run(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, env);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => {
      stdout += d;
    });
    child.stderr?.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs a command that must succeed and print JSON. */
async function runJson<T = Record<string, unknown>>(args: string[], env: NodeJS.ProcessEnv): Promise<T> {
  const res = await run(args, env);
  expect(res.code, `relais ${args.join(' ')}\n${res.stderr}`).toBe(0);
  return JSON.parse(res.stdout) as T;
}

/** Runs a command that must fail with `code`; returns its stderr. */
async function runFailing(args: string[], env: NodeJS.ProcessEnv, code: number): Promise<string> {
  const res = await run(args, env);
  expect(res.code, `relais ${args.join(' ')}\n${res.stdout}${res.stderr}`).toBe(code);
  expect(res.stdout).toBe('');
  return res.stderr;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface CreatedTenant {
  tenant_id: string;
  name: string;
  api_key: string;
  api_key_id: string;
  webhook_secret: string;
}

interface KeyRow {
  id: string;
  prefix: string;
  name: string | null;
  created_at: number;
  revoked_at: number | null;
}

const secretOf = (apiKey: string) => apiKey.split('_').slice(2).join('_');

beforeAll(() => {
  if (!existsSync(MAIN)) execFileSync('npx', ['tsc', '-p', '.'], { cwd: ROOT, stdio: 'inherit' });
}, 120_000);

describe('relais CLI errors', () => {
  let dataDir: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'relais-cli-'));
    env = cleanEnv({ RELAIS_DATA_DIR: dataDir });
    // Migrated once up front: the concurrent cases below then only read the schema.
    await runJson(['migrate'], env);
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('--version and --help exit 0', async () => {
    const version = await run(['--version'], env);
    expect(version).toMatchObject({ code: 0, stderr: '' });
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const help = await run(['--help'], env);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: relais');
  });

  describe.concurrent('usage errors exit 2 with a clear message', () => {
    it.each([
      [['tenant', 'delete'], 'unknown command "tenant delete"'],
      [['frobnicate'], 'unknown command "frobnicate"'],
      [['tenant', 'create'], '--name is required'],
      [['tenant', 'create', '--name', ''], '--name is required'],
      [['key', 'create'], '--tenant is required'],
      [['key', 'list'], '--tenant is required'],
      [['key', 'revoke'], '--key is required'],
      [['tenant', 'create', '--name', 'Acme', '--frob'], "Unknown option '--frob'"],
      [['tenant', 'list', '--name'], "Option '--name <value>' argument missing"],
    ])('relais %j', async (args, message) => {
      const stderr = await runFailing(args, env, 2);
      expect(stderr).toContain(message);
      expect(stderr).toContain('usage: relais');
    });
  });

  describe.concurrent('configuration errors exit 1 naming the key', () => {
    const configFile = (name: string, yaml: string) => {
      const file = join(dataDir, name);
      writeFileSync(file, yaml);
      return file;
    };

    it.each([
      ['a port that is not a number', 'http:\n  port: "abc"\n', 'http.port'],
      ['an unknown key', 'http:\n  port: 8080\n  prot: 80\n', 'http.prot: unknown configuration key'],
      ['an unknown section', 'smtp:\n  host: x\n', 'smtp: unknown configuration key'],
      ['a bad log level', 'log:\n  level: loud\n', 'log.level'],
      ['invalid YAML', 'http: [\n', 'not valid YAML'],
    ])('%s', async (_what, yaml, message) => {
      const file = configFile(`bad-${Math.random().toString(36).slice(2)}.yaml`, yaml);
      const stderr = await runFailing(['--config', file, 'tenant', 'list'], env, 1);
      expect(stderr).toContain(message);
      expect(stderr).not.toContain('usage: relais');
    });

    it('a missing config file', async () => {
      const stderr = await runFailing(['--config', join(dataDir, 'nope.yaml'), 'tenant', 'list'], env, 1);
      expect(stderr).toContain('cannot read configuration file');
    });

    it('a bad RELAIS_HTTP_PORT', async () => {
      const stderr = await runFailing(['tenant', 'list'], { ...env, RELAIS_HTTP_PORT: 'abc' }, 1);
      expect(stderr).toContain('RELAIS_HTTP_PORT');
    });
  });
});

describe.each(databaseKinds)('relais CLI on $name', (kind) => {
  let db: TestDatabase;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    db = await kind.create();
    env = cleanEnv(
      kind.name === 'postgres'
        ? { DATABASE_URL: db.url, RELAIS_DATA_DIR: db.dataDir }
        : { RELAIS_DATA_DIR: db.dataDir },
    );
  });
  afterAll(() => db?.drop());

  /** The tenants table as the database itself holds it (not through the CLI). */
  async function storedTenantIds(): Promise<string[]> {
    if (kind.name === 'sqlite') {
      const { default: Sqlite } = await import('better-sqlite3');
      const sqlite = new Sqlite(join(db.dataDir, 'relais.db'), { readonly: true });
      try {
        return (sqlite.prepare('select id from tenants order by id').all() as { id: string }[]).map(
          (r) => r.id,
        );
      } finally {
        sqlite.close();
      }
    }
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      return (await client.query<{ id: string }>('select id from tenants order by id')).rows.map((r) => r.id);
    } finally {
      await client.end();
    }
  }

  describe('administration', () => {
    it('migrate migrates the database and reports the dialect', async () => {
      const first = await runJson<{ applied: string[]; dialect: string }>(['migrate'], env);
      expect(first.dialect).toBe(kind.name);
      // The schema is there: the tenants table can be read straight from the database.
      expect(await storedTenantIds()).toEqual([]);
      const again = await runJson<{ applied: string[]; dialect: string }>(['migrate'], env);
      expect(again).toEqual({ applied: [], dialect: kind.name });
    });

    it('tenant create prints the tenant id, its API key and webhook secret, into the configured database', async () => {
      const created = await runJson<CreatedTenant>(['tenant', 'create', '--name', 'Acme'], env);
      expect(created.tenant_id).toMatch(/^ten_[0-9A-Z]{26}$/);
      expect(created.name).toBe('Acme');
      expect(created.api_key).toMatch(/^rl_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
      expect(created.api_key_id).toMatch(/^key_[0-9A-Z]{26}$/);
      expect(created.webhook_secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
      expect(await storedTenantIds()).toContain(created.tenant_id);
      if (kind.name === 'sqlite') expect(existsSync(join(db.dataDir, 'relais.db'))).toBe(true);
    });

    it('tenant list shows the tenants without their secrets', async () => {
      const created = await runJson<CreatedTenant>(['tenant', 'create', '--name', 'Listed'], env);
      const res = await run(['tenant', 'list'], env);
      expect(res.code).toBe(0);
      const list = JSON.parse(res.stdout) as { id: string; name: string; status: string }[];
      expect(list).toContainEqual(
        expect.objectContaining({ id: created.tenant_id, name: 'Listed', status: 'active' }),
      );
      expect(res.stdout).not.toContain(created.webhook_secret);
      expect(res.stdout).not.toContain(secretOf(created.api_key));
    });

    it('key create, key list (prefixes only) and key revoke', { timeout: 90_000 }, async () => {
      const tenant = await runJson<CreatedTenant>(['tenant', 'create', '--name', 'Keys'], env);
      const second = await runJson<{ api_key: string; api_key_id: string }>(
        ['key', 'create', '--tenant', tenant.tenant_id, '--name', 'ci'],
        env,
      );
      expect(second.api_key).toMatch(/^rl_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
      expect(second.api_key).not.toBe(tenant.api_key);

      const listing = await run(['key', 'list', '--tenant', tenant.tenant_id], env);
      expect(listing.code).toBe(0);
      const keys = JSON.parse(listing.stdout) as KeyRow[];
      expect(keys.map((k) => k.id).sort()).toEqual([tenant.api_key_id, second.api_key_id].sort());
      for (const [apiKey, id] of [
        [tenant.api_key, tenant.api_key_id],
        [second.api_key, second.api_key_id],
      ] as const) {
        const row = keys.find((k) => k.id === id)!;
        expect(apiKey.startsWith(`rl_${row.prefix}_`)).toBe(true);
        expect(row.revoked_at).toBeNull();
        expect(listing.stdout).not.toContain(secretOf(apiKey));
        expect(listing.stdout).not.toContain(apiKey);
      }
      expect(keys.find((k) => k.id === second.api_key_id)?.name).toBe('ci');

      expect(await runJson(['key', 'revoke', '--key', second.api_key_id], env)).toEqual({
        revoked: second.api_key_id,
      });
      const after = await runJson<KeyRow[]>(['key', 'list', '--tenant', tenant.tenant_id], env);
      expect(after.find((k) => k.id === second.api_key_id)?.revoked_at).toEqual(expect.any(Number));
      expect(after.find((k) => k.id === tenant.api_key_id)?.revoked_at).toBeNull();

      // Revoking again, or a key that does not exist, is an error (exit 1), not a usage error.
      expect(await runFailing(['key', 'revoke', '--key', second.api_key_id], env, 1)).toContain(
        `no active key ${second.api_key_id}`,
      );
      expect(await runFailing(['key', 'revoke', '--key', 'key_nope'], env, 1)).toContain(
        'no active key key_nope',
      );
      expect(await runFailing(['key', 'create', '--tenant', 'ten_nope'], env, 1)).toContain(
        'no tenant ten_nope',
      );
    });
  });

  describe('a running server', () => {
    let server: ChildProcess | undefined;
    let serverOutput = '';
    let exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
    let base: string;

    beforeAll(async () => {
      const port = await freePort();
      base = `http://127.0.0.1:${port}`;
      server = spawnCli(['start'], { ...env, RELAIS_HTTP_PORT: String(port), RELAIS_LOG_LEVEL: 'info' });
      server.stdout?.on('data', (d) => {
        serverOutput += d;
      });
      server.stderr?.on('data', (d) => {
        serverOutput += d;
      });
      exit = new Promise((resolve) => server?.on('exit', (code, signal) => resolve({ code, signal })));
      await waitForHealth(base, () => server?.exitCode ?? null);
    }, 60_000);

    afterAll(() => {
      if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    });

    async function waitForHealth(url: string, exited: () => number | null): Promise<void> {
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        if (exited() !== null) throw new Error(`the server exited early:\n${serverOutput}`);
        try {
          const res = await fetch(`${url}/healthz`);
          if (res.status === 200) return;
        } catch {
          // not listening yet
        }
        await sleep(100);
      }
      throw new Error(`the server did not answer /healthz within 30 s:\n${serverOutput}`);
    }

    const api = (path: string, apiKey: string, body?: unknown) =>
      fetch(`${base}${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: {
          authorization: `Bearer ${apiKey}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });

    it('sees a tenant created by the CLI, and refuses its key within half a second of the CLI revoking it', async () => {
      const health = await fetch(`${base}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: 'ok' });

      const tenant = await runJson<CreatedTenant>(['tenant', 'create', '--name', 'Live'], env);
      const spare = await runJson<{ api_key: string; api_key_id: string }>(
        ['key', 'create', '--tenant', tenant.tenant_id],
        env,
      );

      const sent = await api('/v1/messages', tenant.api_key, MESSAGE);
      expect(sent.status).toBe(202);
      const message = (await sent.json()) as { id: string; status: string };
      expect(message.status).toBe('accepted');
      const account = await api('/v1/account', tenant.api_key);
      expect(account.status).toBe(200);
      expect(await account.json()).toMatchObject({ tenant_id: tenant.tenant_id, name: 'Live' });

      await runJson(['key', 'revoke', '--key', tenant.api_key_id], env);
      // The server reuses a key check for up to 500 ms (src/tenants/tenants.ts); the CLI exits after
      // its commit, so by then the revocation is in the database.
      const revokedAt = performance.now();
      while ((await api('/v1/account', tenant.api_key)).status === 200) {
        expect(performance.now() - revokedAt).toBeLessThan(800);
        await new Promise((r) => setTimeout(r, 25));
      }

      const refused = await api('/v1/messages', tenant.api_key, MESSAGE);
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toBe('Bearer realm="relais"');
      expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json\b/);
      expect(await refused.json()).toMatchObject({ status: 401, code: 'unauthorized' });
      expect((await api('/v1/account', tenant.api_key)).status).toBe(401);

      // The tenant's other key still works and sees the message sent before the revocation.
      const shown = await api(`/v1/messages/${message.id}`, spare.api_key);
      expect(shown.status).toBe(200);
      expect(await shown.json()).toMatchObject({ id: message.id, text: MESSAGE.text });
    });

    it('answers problems over a real socket too', async () => {
      const res = await fetch(`${base}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: 'hello',
      });
      expect(res.status).toBe(401);
      const missing = await fetch(`${base}/nowhere`);
      expect(missing.status).toBe(404);
      expect(await missing.json()).toMatchObject({ code: 'not_found' });
    });

    it('stops on SIGTERM with exit code 0', async () => {
      expect(server?.kill('SIGTERM')).toBe(true);
      const result = await Promise.race([
        exit,
        sleep(20_000).then(() => ({ code: -1, signal: null as NodeJS.Signals | null })),
      ]);
      expect(result, serverOutput).toEqual({ code: 0, signal: null });
      expect(serverOutput).toContain('shutting down');
      await expect(fetch(`${base}/healthz`)).rejects.toThrow();
    });
  });
});
