import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, databaseTarget, loadConfig } from '../src/config/load.js';

const yamlDirs: string[] = [];
afterAll(() => {
  for (const dir of yamlDirs) rmSync(dir, { recursive: true, force: true });
});

function yamlFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'relais-config-'));
  yamlDirs.push(dir);
  const file = join(dir, 'relais.yaml');
  writeFileSync(file, text);
  return file;
}

describe('configuration', () => {
  it('runs on SQLite under ./data with defaults when nothing is configured', () => {
    const config = loadConfig({ env: {} });
    expect(config.data_dir).toBe(resolve('data'));
    expect(config.http).toEqual({
      host: '127.0.0.1',
      port: 8080,
      body_limit_bytes: 5 * 1024 * 1024,
      trust_proxy: false,
    });
    expect(config.webhooks.allow_private_targets).toBe(false);
    expect(databaseTarget(config)).toEqual({ kind: 'sqlite', path: resolve('data', 'relais.db') });
  });

  it('reads a YAML file given by path or RELAIS_CONFIG, and environment variables override it', () => {
    const file = yamlFile(
      'http:\n  port: 9000\nlog:\n  level: debug\nwebhooks:\n  allow_private_targets: true\n',
    );
    expect(loadConfig({ file, env: {} }).http.port).toBe(9000);
    const config = loadConfig({
      env: {
        RELAIS_CONFIG: file,
        RELAIS_HTTP_PORT: '9100',
        RELAIS_LOG_LEVEL: 'warn',
        RELAIS_DATA_DIR: '/tmp/relais-x',
        DATABASE_URL: 'postgres://u@h/db',
      },
    });
    expect(config.http.port).toBe(9100);
    expect(config.log.level).toBe('warn');
    expect(config.data_dir).toBe('/tmp/relais-x');
    expect(config.webhooks.allow_private_targets).toBe(true);
    expect(databaseTarget(config)).toEqual({ kind: 'postgres', url: 'postgres://u@h/db' });
  });

  it.each([
    ['http:\n  port: "abc"\n', /http\.port: .*number/i],
    ['http:\n  port: 70000\n', /http\.port/],
    ['htp:\n  port: 1\n', /htp: unknown configuration key/],
    ['webhooks:\n  allow_private: true\n', /webhooks\.allow_private: unknown configuration key/],
    ['log:\n  level: loud\n', /log\.level/],
    ['- a\n- b\n', /mapping of keys/],
    ['http: [\n', /not valid YAML/],
  ])('rejects %j with an error naming the key', (text, pattern) => {
    expect(() => loadConfig({ file: yamlFile(text), env: {} })).toThrow(ConfigError);
    expect(() => loadConfig({ file: yamlFile(text), env: {} })).toThrow(pattern);
  });

  it('names the variable when an environment override is invalid, and a missing file', () => {
    expect(() => loadConfig({ env: { RELAIS_HTTP_PORT: 'eighty' } })).toThrow(
      /RELAIS_HTTP_PORT: expected an integer/,
    );
    expect(() => loadConfig({ env: { DATABASE_URL: 'mysql://x' } })).toThrow(
      /database_url: expected postgres/,
    );
    expect(() => loadConfig({ file: '/nonexistent/relais.yaml', env: {} })).toThrow(
      /cannot read configuration file/,
    );
  });
});
