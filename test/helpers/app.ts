import { type App, buildApp } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import type { Clock } from '../../src/shared/clock.js';
import { createLogger, type Logger } from '../../src/shared/logger.js';
import type { DatabaseKind, TestDatabase } from './databases.js';

export interface TestApp {
  app: App;
  db: TestDatabase;
  config: Config;
  /** A fresh tenant with its API key. */
  tenant(
    name?: string,
    webhookUrl?: string | null,
  ): Promise<{ id: string; apiKey: string; webhookSecret: string }>;
  close(): Promise<void>;
}

/** A whole platform on a fresh database of the given kind, configured for tests. */
export async function startTestApp(
  kind: DatabaseKind,
  overrides: Record<string, unknown> = {},
  options: { clock?: Clock; listen?: boolean; logger?: Logger } = {},
): Promise<TestApp> {
  const db = await kind.create();
  const raw: Record<string, unknown> = {
    data_dir: db.dataDir,
    database_url: db.url,
    http: { port: 0 },
    log: { level: 'silent' },
    webhooks: { allow_private_targets: true, poll_interval_ms: 50 },
    // Suites that want carriers configure them; the others drive the dispatch seam themselves.
    simulator: { enabled: 'never' },
    ...overrides,
  };
  const config = parseConfig(raw);
  const app = await buildApp(config, {
    logger: options.logger ?? createLogger(config.log.level),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  if (options.listen) await app.start();
  else await app.http.ready();
  return {
    app,
    db,
    config,
    async tenant(name = 'Acme', webhookUrl = null) {
      const t = await app.tenants.create({ name, webhookUrl });
      return { id: t.tenant_id, apiKey: t.api_key, webhookSecret: t.webhook_secret };
    },
    async close() {
      await app.close();
      await db.drop();
    },
  };
}

export function bearer(apiKey: string) {
  return { authorization: `Bearer ${apiKey}` };
}
