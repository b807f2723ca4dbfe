import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { ZodError } from 'zod';
import { type Config, configSchema } from './schema.js';

export class ConfigError extends Error {}

/** Environment variables that override keys of the file; the only ones read. */
const ENV_OVERRIDES: Record<string, (raw: Record<string, unknown>, value: string) => void> = {
  DATABASE_URL: (raw, v) => {
    raw.database_url = v;
  },
  RELAIS_DATA_DIR: (raw, v) => {
    raw.data_dir = v;
  },
  RELAIS_HTTP_PORT: (raw, v) => {
    section(raw, 'http').port = numberFromEnv('RELAIS_HTTP_PORT', v);
  },
  RELAIS_HTTP_HOST: (raw, v) => {
    section(raw, 'http').host = v;
  },
  RELAIS_LOG_LEVEL: (raw, v) => {
    section(raw, 'log').level = v;
  },
  RELAIS_ADMIN_TOKEN: (raw, v) => {
    section(raw, 'admin').token = v;
  },
};

export interface LoadOptions {
  /** Path given by --config; falls back to RELAIS_CONFIG. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Extra keys merged over the file (tests). */
  overrides?: Record<string, unknown>;
}

export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const file = options.file ?? env.RELAIS_CONFIG;
  const raw: Record<string, unknown> = file ? readConfigFile(file) : {};
  for (const [name, apply] of Object.entries(ENV_OVERRIDES)) {
    const value = env[name];
    if (value !== undefined && value !== '') apply(raw, value);
  }
  if (options.overrides) deepMerge(raw, options.overrides);
  return parseConfig(raw);
}

export function parseConfig(raw: unknown): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(formatIssues(result.error));
  const config = result.data;
  config.data_dir = isAbsolute(config.data_dir) ? config.data_dir : resolve(config.data_dir);
  databaseTarget(config); // validates database_url now, not at first use
  return config;
}

/** The database the configuration points at: a postgres:// URL, or the SQLite file path. */
export function databaseTarget(
  config: Config,
): { kind: 'postgres'; url: string } | { kind: 'sqlite'; path: string } {
  const url = config.database_url;
  if (!url) return { kind: 'sqlite', path: resolve(config.data_dir, 'relais.db') };
  if (/^postgres(ql)?:\/\//.test(url)) return { kind: 'postgres', url };
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length).replace(/^\/\//, '');
    return { kind: 'sqlite', path: path === ':memory:' ? path : resolve(path) };
  }
  throw new ConfigError(`database_url: expected postgres://… or sqlite:PATH, got "${url}"`);
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read configuration file ${file}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`configuration file ${file} is not valid YAML: ${(err as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`configuration file ${file} must hold a mapping of keys at the top level`);
  }
  return parsed as Record<string, unknown>;
}

function formatIssues(error: ZodError): string {
  const lines = error.issues.map((issue) => {
    const key = issue.path.length ? issue.path.join('.') : '(top level)';
    if (issue.code === 'unrecognized_keys') {
      const where = issue.path.length ? `${key}.` : '';
      return `${issue.keys.map((k) => where + k).join(', ')}: unknown configuration key`;
    }
    return `${key}: ${issue.message}`;
  });
  return `invalid configuration:\n  ${lines.join('\n  ')}`;
}

function section(raw: Record<string, unknown>, name: string): Record<string, unknown> {
  const existing = raw[name];
  if (existing && typeof existing === 'object' && !Array.isArray(existing))
    return existing as Record<string, unknown>;
  const created: Record<string, unknown> = {};
  raw[name] = created;
  return created;
}

function numberFromEnv(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new ConfigError(`${name}: expected an integer, got "${value}"`);
  return n;
}

function deepMerge(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(source)) {
    const current = target[key];
    if (
      value &&
      typeof value === 'object' &&
      !Array.isArray(value) &&
      current &&
      typeof current === 'object' &&
      !Array.isArray(current)
    ) {
      deepMerge(current as Record<string, unknown>, value as Record<string, unknown>);
    } else {
      target[key] = value;
    }
  }
}
