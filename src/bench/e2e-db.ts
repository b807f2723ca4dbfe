import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { BenchDatabase } from './databases.js';

/**
 * Reads a benchmark database from outside Relais (while it runs, or after): how many messages and
 * webhook events reached which status, and when the last of them did. Times are Relais's own
 * `Date.now()` (ms), written in the same transactions as the statuses.
 */
export interface Outcome {
  messages: Record<string, number>;
  webhookEvents: Record<string, number>;
  /** Wall-clock ms of the last `submitted` status change (message_events), or null. */
  lastSubmittedAt: number | null;
  /** Wall-clock ms of the last message turned `delivered`, or null. */
  lastDeliveredAt: number | null;
  /** Wall-clock ms of the start of the attempt that delivered the last webhook event, or null. */
  lastWebhookDeliveredAt: number | null;
}

export interface DbReader {
  outcome(): Promise<Outcome>;
  /** Messages with status delivered (cheap enough to poll: it walks an index). */
  delivered(tenantId: string): Promise<number>;
  close(): Promise<void>;
}

const QUERIES = {
  messages: 'select status, count(*) as n from messages group by status',
  webhookEvents: 'select status, count(*) as n from webhook_events group by status',
  lastSubmittedAt: "select max(at) as t from message_events where status = 'submitted'",
  lastDeliveredAt: "select max(updated_at) as t from messages where status = 'delivered'",
  lastWebhookDeliveredAt: "select max(delivered_at) as t from webhook_events where status = 'delivered'",
  // The delivery log (src/webhooks/deliveries.ts): the events their first attempt delivered.
  loggedEvents: (json: string) =>
    `select coalesce(sum(json_array_length(${json})), 0) as n from webhook_deliveries`,
  lastLoggedAt: 'select max(attempted_at) as t from webhook_deliveries',
  hasLog: {
    sqlite: "select 1 from sqlite_master where name = 'webhook_deliveries'",
    postgres: "select 1 where to_regclass('webhook_deliveries') is not null",
  },
};

type Row = Record<string, unknown>;

async function outcomeFrom(
  all: (sql: string) => Promise<Row[]>,
  kind: BenchDatabase['kind'],
): Promise<Outcome> {
  const grouped = async (sql: string) =>
    Object.fromEntries((await all(sql)).map((r) => [String(r.status), Number(r.n)]));
  const time = async (sql: string) => {
    const t = (await all(sql))[0]?.t;
    return t === null || t === undefined ? null : Number(t);
  };
  const webhookEvents = await grouped(QUERIES.webhookEvents);
  // A baseline checkout from before migration 015 has no delivery log.
  const hasLog = (await all(QUERIES.hasLog[kind])).length > 0;
  const logged = hasLog
    ? Number((await all(QUERIES.loggedEvents(kind === 'sqlite' ? 'events' : 'events::json')))[0]?.n)
    : 0;
  if (logged > 0) webhookEvents.delivered = (webhookEvents.delivered ?? 0) + logged;
  const lastRow = await time(QUERIES.lastWebhookDeliveredAt);
  const lastLogged = hasLog ? await time(QUERIES.lastLoggedAt) : null;
  return {
    messages: await grouped(QUERIES.messages),
    webhookEvents,
    lastSubmittedAt: await time(QUERIES.lastSubmittedAt),
    lastDeliveredAt: await time(QUERIES.lastDeliveredAt),
    lastWebhookDeliveredAt:
      lastRow === null || lastLogged === null ? (lastRow ?? lastLogged) : Math.max(lastRow, lastLogged),
  };
}

export async function openReader(db: BenchDatabase): Promise<DbReader> {
  if (db.kind === 'sqlite') {
    // WAL: a read-only connection sees every committed transaction and never blocks Relais's writer.
    const sqlite = new Database(join(db.dataDir, 'relais.db'), { readonly: true, fileMustExist: true });
    const all = async (sql: string, ...params: unknown[]) => sqlite.prepare(sql).all(...params) as Row[];
    return {
      outcome: () => outcomeFrom(all, db.kind),
      async delivered(tenantId) {
        const rows = await all(
          "select count(*) as n from messages where tenant_id = ? and status = 'delivered'",
          tenantId,
        );
        return Number(rows[0]?.n ?? 0);
      },
      async close() {
        sqlite.close();
      },
    };
  }
  const client = new pg.Client({ connectionString: db.databaseUrl });
  await client.connect();
  const all = async (sql: string, ...params: unknown[]) => (await client.query(sql, params)).rows as Row[];
  return {
    outcome: () => outcomeFrom(all, db.kind),
    async delivered(tenantId) {
      const rows = await all(
        "select count(*) as n from messages where tenant_id = $1 and status = 'delivered'",
        tenantId,
      );
      return Number(rows[0]?.n ?? 0);
    },
    async close() {
      await client.end();
    },
  };
}
