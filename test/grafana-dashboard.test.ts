import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { parseConfig } from '../src/config/load.js';
import { createLogger } from '../src/shared/logger.js';
import { databaseKinds } from './helpers/databases.js';

interface Panel {
  type: string;
  title: string;
  targets?: { expr: string }[];
}

const dashboard = JSON.parse(
  readFileSync(new URL('../docs/grafana/relais-dashboard.json', import.meta.url), 'utf8'),
) as { panels: Panel[]; templating: { list: { name: string; type: string; query: unknown }[] } };

/** Every relais_* name a PromQL expression of the dashboard reads. */
function namesUsed(): Set<string> {
  const names = new Set<string>();
  for (const panel of dashboard.panels)
    for (const t of panel.targets ?? [])
      for (const m of t.expr.matchAll(/\brelais_[a-z0-9_]+/g)) names.add(m[0]);
  return names;
}

describe.each(databaseKinds)('the Grafana dashboard against /metrics on $name', (kind) => {
  it('reads only metrics the app registers (the dashboard cannot silently rot)', async () => {
    const db = await kind.create();
    const config = parseConfig({
      data_dir: db.dataDir,
      database_url: db.url,
      simulator: { enabled: 'never' },
      backup: { schedule: { to: 'backups' } },
    });
    const app = await buildApp(config, { logger: createLogger('silent') });
    try {
      await app.http.ready();
      const text = (await app.http.inject({ url: '/metrics', remoteAddress: '127.0.0.1' })).body;
      const types = new Map(
        [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!] as [string, string]),
      );
      const registered = (name: string): boolean => {
        if (types.has(name)) return true;
        // A histogram's series: NAME_bucket, NAME_sum, NAME_count.
        const base = name.replace(/_(bucket|sum|count)$/, '');
        return base !== name && types.get(base) === 'histogram';
      };
      const used = namesUsed();
      expect(used.size).toBeGreaterThan(20);
      expect([...used].filter((n) => !registered(n))).toEqual([]);
      // What the dashboard promises to show is really there.
      for (const name of [
        'relais_messages_accepted_total',
        'relais_queue_depth',
        'relais_http_request_duration_seconds_bucket',
        'relais_submit_duration_seconds_bucket',
        'relais_connector_window_used',
        'relais_throttled_total',
        'relais_webhook_backlog',
        'relais_webhook_attempts_total',
        'relais_disk_free_bytes',
        'relais_disk_state',
        'relais_db_ping_seconds',
        'relais_backup_last_success_timestamp_seconds',
        'relais_nodejs_eventloop_lag_p99_seconds',
      ])
        expect(used).toContain(name);
    } finally {
      await app.close();
      await db.drop();
    }
  });
});

describe('the Grafana dashboard file', () => {
  it('is importable: a Prometheus datasource variable, panels that use it, unique ids', () => {
    const ds = dashboard.templating.list.find((v) => v.type === 'datasource');
    expect(ds).toMatchObject({ name: 'datasource', query: 'prometheus' });
    const raw = JSON.parse(
      readFileSync(new URL('../docs/grafana/relais-dashboard.json', import.meta.url), 'utf8'),
    );
    const ids = (raw.panels as { id: number }[]).map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of raw.panels as { type: string; datasource?: { uid: string } }[]) {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JS template
      if (panel.type !== 'row') expect(panel.datasource?.uid).toBe('${datasource}');
    }
  });
});
