import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Migrator, sql } from 'kysely';
import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/cli.js';
import { ConfigError, parseConfig } from '../src/config/load.js';
import { HISTORY_TABLES, INBOUND_PREFIX, idTime, ROOT_TABLES } from '../src/retention/history-tables.js';
import { PartitionUpkeep } from '../src/retention/partition-upkeep.js';
import { pruneChunk } from '../src/retention/pruning.js';
import type { RetentionReport } from '../src/retention/retention.js';
import { ManualClock } from '../src/shared/clock.js';
import { newId } from '../src/shared/ids.js';
import { migrationProvider } from '../src/store/migrations/index.js';
import { openStore, type Store } from '../src/store/store.js';
import { bearer, startTestApp, type TestApp } from './helpers/app.js';
import { type DatabaseKind, databaseKinds } from './helpers/databases.js';

/**
 * Data retention on both databases: history past each tenant's retention is removed (partition drops
 * on PostgreSQL, chunked deletes then incremental vacuum on SQLite), bodies are redacted earlier,
 * rollups are pruned, and nothing still in flight is touched. The clock is a ManualClock set to the real
 * time (PostgreSQL partitions created by migration 006 follow the real date); history is written with
 * ids of past times, exactly as the platform would have written it then.
 */

const DAY = 86_400_000;

/**
 * An id created at `at`. newId() cannot make one in the past once a later id exists in this process:
 * its monotonic factory never goes backwards. ulid(time) is the same encoding without that guard.
 */
const idAt = (prefix: string, at: number) => `${prefix}_${ulid(at)}`;

interface Seeded {
  messageId: string;
  eventId: string;
  /** An event of the delivery log, delivered at its first attempt (webhook_deliveries). */
  loggedId: string;
  inboundId: string;
}

/** A finished message as the platform leaves it: its row, a part, a status event, a delivered webhook event. */
function historyRows(tenantId: string, at: number, body: string) {
  const messageId = idAt('msg', at);
  const eventId = idAt('evt', at);
  return {
    messageId,
    eventId,
    message: {
      id: messageId,
      tenant_id: tenantId,
      to_number: '+33612345678',
      country: 'FR',
      sender: 'Acme',
      body,
      lane: 'transactional' as const,
      encoding: 'GSM-7' as const,
      segments: 1,
      status: 'delivered' as const,
      client_ref: null,
      callback_url: null,
      send_at: null,
      expires_at: at + DAY,
      error_code: null,
      error_reason: null,
      connector: 'carrier-a',
      created_at: at,
      updated_at: at,
      sealed_body: null,
      campaign_id: null,
    },
    part: {
      message_id: messageId,
      part_no: 1,
      connector: 'carrier-a',
      carrier_id: messageId.slice(-10),
      carrier_key: messageId.slice(-10),
      status: 'delivered' as const,
      error_code: null,
      updated_at: at,
    },
    event: { message_id: messageId, status: 'delivered' as const, at, error_code: null, detail: null },
    webhook: {
      id: eventId,
      tenant_id: tenantId,
      message_id: messageId,
      type: 'message.status',
      url: 'https://example.com/hook',
      payload: '{"status":"delivered"}',
      status: 'delivered' as const,
      attempts: 1,
      next_attempt_at: at,
      last_error: null,
      created_at: at,
      delivered_at: at,
    },
  };
}

/** Writes `n` finished messages from `at` on, one ms apart (see historyRows), 200 per transaction. */
async function seedMany(store: Store, tenantId: string, at: number, n: number, body = 'hello') {
  const all = Array.from({ length: n }, (_, i) => historyRows(tenantId, at + i, body));
  for (let i = 0; i < n; i += 200) {
    const rows = all.slice(i, i + 200);
    await store.write(async (trx) => {
      await trx
        .insertInto('messages')
        .values(rows.map((r) => r.message))
        .execute();
      await trx
        .insertInto('message_parts')
        .values(rows.map((r) => r.part))
        .execute();
      await trx
        .insertInto('message_events')
        .values(rows.map((r) => r.event))
        .execute();
      await trx
        .insertInto('webhook_events')
        .values(rows.map((r) => r.webhook))
        .execute();
    });
  }
  return all;
}

/** One finished message (see historyRows) plus a webhook delivery attempt and an inbound reply to it. */
async function seed(
  store: Store,
  tenantId: string,
  at: number,
  body = 'hello',
  logged = true,
): Promise<Seeded> {
  const { messageId, eventId } = (await seedMany(store, tenantId, at, 1, body))[0]!;
  const inboundId = idAt(INBOUND_PREFIX, at);
  const loggedId = idAt('evt', at);
  await store.write(async (trx) => {
    // Before migration 015 there is no delivery log.
    if (logged)
      await trx
        .insertInto('webhook_deliveries')
        .values({
          id: loggedId,
          tenant_id: tenantId,
          last_event_id: loggedId,
          url: 'https://example.com/hook',
          attempted_at: at,
          status_code: 200,
          duration_ms: 5,
          events: JSON.stringify([[loggedId, messageId, 'delivered', null, null, at]]),
        })
        .execute();
    await trx
      .insertInto('webhook_attempts')
      .values({ event_id: eventId, attempted_at: at, duration_ms: 5, status_code: 200, error: null })
      .execute();
    await trx
      .insertInto('inbound_messages')
      .values({
        id: inboundId,
        tenant_id: tenantId,
        to_number: '36111',
        from_number: '+33612345678',
        text: `reply ${body}`,
        connector: 'carrier-a',
        keyword: null,
        campaign_id: null,
        message_id: messageId,
        received_at: at,
      })
      .execute();
  });
  return { messageId, eventId, loggedId, inboundId };
}

/** Which of a seeded message's rows are still there, table by table. */
async function present(store: Store, s: Seeded): Promise<Record<string, number>> {
  const db = store.db;
  const count = async (q: { execute(): Promise<unknown[]> }) => (await q.execute()).length;
  return {
    messages: await count(db.selectFrom('messages').select('id').where('id', '=', s.messageId)),
    message_parts: await count(
      db.selectFrom('message_parts').select('message_id').where('message_id', '=', s.messageId),
    ),
    message_events: await count(
      db.selectFrom('message_events').select('id').where('message_id', '=', s.messageId),
    ),
    webhook_events: await count(db.selectFrom('webhook_events').select('id').where('id', '=', s.eventId)),
    webhook_attempts: await count(
      db.selectFrom('webhook_attempts').select('id').where('event_id', '=', s.eventId),
    ),
    webhook_deliveries: await count(
      db.selectFrom('webhook_deliveries').select('id').where('id', '=', s.loggedId),
    ),
    inbound_messages: await count(
      db.selectFrom('inbound_messages').select('id').where('id', '=', s.inboundId),
    ),
  };
}

const ALL = {
  messages: 1,
  message_parts: 1,
  message_events: 1,
  webhook_events: 1,
  webhook_attempts: 1,
  webhook_deliveries: 1,
  inbound_messages: 1,
};
const NONE = Object.fromEntries(Object.keys(ALL).map((k) => [k, 0]));

/** Housekeeping passes until retention has nothing left to do (each pass is bounded). */
async function settle(t: TestApp): Promise<RetentionReport[]> {
  const reports: RetentionReport[] = [];
  for (let i = 0; i < 50; i++) {
    const r = (await t.app.housekeeping.runOnce()).retention!;
    reports.push(r);
    if (r.caughtUp) break;
  }
  return reports;
}

const RETENTION = {
  messages_days: 30,
  redact_bodies_after_days: 7,
  rollups_days: 400,
  chunk_size: 40,
  max_chunks_per_pass: 4,
  pause_ms: 0,
};

/** A platform on a fresh database with these retention settings, its clock a ManualClock at the real time. */
function appWith(kind: DatabaseKind, retention: Record<string, unknown>) {
  const ctx = { t: undefined as unknown as TestApp, clock: new ManualClock(Date.now()) };
  beforeAll(async () => {
    ctx.t = await startTestApp(kind, { retention }, { clock: ctx.clock });
  });
  afterAll(() => ctx.t.close());
  return ctx;
}

describe.each(databaseKinds)('retention on $name', (kind) => {
  const ctx = appWith(kind, RETENTION);
  const clock = ctx.clock;

  it('removes history older than the retention in every history table, keeps the recent, in chunks', async () => {
    const now = clock.now();
    const tenant = await ctx.t.tenant('Default');
    const old = [];
    for (let i = 0; i < 100; i++) old.push(await seed(ctx.t.app.store, tenant.id, now - 40 * DAY + i * 1000));
    const recent = await seed(ctx.t.app.store, tenant.id, now - 20 * DAY);
    const reports = await settle(ctx.t);
    for (const s of [old[0]!, old[57]!, old[99]!]) expect(await present(ctx.t.app.store, s)).toEqual(NONE);
    expect(await present(ctx.t.app.store, recent)).toEqual(ALL);
    const deleted = reports.reduce((n, r) => n + r.rowsDeleted, 0);
    expect(deleted).toBe(400); // 100 messages, 100 webhook events, 100 delivery rows, 100 inbound messages
    // 40 rows per chunk and 4 chunks per pass: the 400 rows took more than one pass.
    expect(reports[0]!.rowsDeleted).toBeLessThan(400);
  });

  it('applies tenant overrides, shorter and longer than the platform retention', async () => {
    const now = clock.now();
    const plain = await ctx.t.tenant('Plain');
    const brief = await ctx.t.tenant('Brief');
    const patient = await ctx.t.tenant('Patient');
    await runCliOn(ctx.t, ['tenant', 'update', '--tenant', brief.id, '--retention-days', '10']);
    await runCliOn(ctx.t, ['tenant', 'update', '--tenant', patient.id, '--retention-days', '60']);
    const rows = {
      plain40: await seed(ctx.t.app.store, plain.id, now - 40 * DAY),
      plain20: await seed(ctx.t.app.store, plain.id, now - 20 * DAY),
      brief20: await seed(ctx.t.app.store, brief.id, now - 20 * DAY),
      brief5: await seed(ctx.t.app.store, brief.id, now - 5 * DAY),
      patient40: await seed(ctx.t.app.store, patient.id, now - 40 * DAY),
      patient70: await seed(ctx.t.app.store, patient.id, now - 70 * DAY),
    };
    await settle(ctx.t);
    expect(await present(ctx.t.app.store, rows.plain40)).toEqual(NONE);
    expect(await present(ctx.t.app.store, rows.plain20)).toEqual(ALL);
    expect(await present(ctx.t.app.store, rows.brief20)).toEqual(NONE);
    expect(await present(ctx.t.app.store, rows.brief5)).toEqual(ALL);
    expect(await present(ctx.t.app.store, rows.patient40)).toEqual(ALL);
    expect(await present(ctx.t.app.store, rows.patient70)).toEqual(NONE);
    // Back to the platform default: the 40-day-old rows of "Patient" go too.
    await runCliOn(ctx.t, ['tenant', 'update', '--tenant', patient.id, '--retention-days', 'default']);
    await settle(ctx.t);
    expect(await present(ctx.t.app.store, rows.patient40)).toEqual(NONE);
  });

  it('refuses bad --retention-days values and unknown tenants, changing nothing', async () => {
    const tenant = await ctx.t.tenant('Careful');
    for (const bad of ['-1', '0', 'abc', '', '1e9']) {
      expect(
        await runCliOn(ctx.t, ['tenant', 'update', '--tenant', tenant.id, '--retention-days', bad]),
      ).not.toBe(0);
    }
    expect(await runCliOn(ctx.t, ['tenant', 'update', '--tenant', 'ten_nope', '--retention-days', '5'])).toBe(
      1,
    );
    expect(await runCliOn(ctx.t, ['tenant', 'update', '--tenant', tenant.id])).toBe(2);
    const row = await ctx.t.app.store.db
      .selectFrom('tenants')
      .select('retention_days')
      .where('id', '=', tenant.id)
      .executeTakeFirstOrThrow();
    expect(row.retention_days).toBeNull();
  });

  it('redacts bodies past redact_bodies_after_days, shows them as redacted, and spares queued messages', async () => {
    const tenant = await ctx.t.tenant('Redacted');
    const submitAt = (at: number, extra: Record<string, unknown> = {}) => {
      clock.set(at);
      return ctx.t.app.http.inject({
        method: 'POST',
        url: '/v1/messages',
        headers: bearer(tenant.apiKey),
        payload: { to: '+33612345678', from: 'Acme', text: 'secret 1234', validity_minutes: 1, ...extra },
      });
    };
    // Ids only move forward in a process (an earlier suite may have issued later ones): start after the
    // last id issued, submit, then move the clock ahead.
    const t0 = idTime('msg', newId('msg', clock.now())) + 1;
    const now = t0 + 10 * DAY;
    const expired = (await submitAt(t0)).json().id as string;
    const scheduled = (
      await submitAt(t0, { send_at: new Date(t0 + 15 * DAY).toISOString(), validity_minutes: 60 })
    ).json().id as string;
    const fresh = (await submitAt(t0 + 7 * DAY)).json().id as string;
    const reply = await seed(ctx.t.app.store, tenant.id, t0 + DAY, 'my reply');
    clock.set(now);
    const reports = await settle(ctx.t); // expires the sent ones first, then redacts
    expect(reports.reduce((n, r) => n + r.bodiesRedacted, 0)).toBeGreaterThanOrEqual(3);
    const view = async (id: string) =>
      (await ctx.t.app.http.inject({ url: `/v1/messages/${id}`, headers: bearer(tenant.apiKey) })).json();
    const gone = await view(expired);
    expect(gone).toMatchObject({ id: expired, status: 'expired', text: '', segments: 1 });
    expect(Date.parse(gone.redacted_at)).toBe(now);
    expect(await view(scheduled)).toMatchObject({
      status: 'scheduled',
      text: 'secret 1234',
      redacted_at: null,
    });
    expect(await view(fresh)).toMatchObject({ text: 'secret 1234', redacted_at: null });
    expect(await view(reply.messageId)).toMatchObject({ text: '' });
    const inbound = await ctx.t.app.store.db
      .selectFrom('inbound_messages')
      .select(['text', 'redacted_at'])
      .where('id', '=', reply.inboundId)
      .executeTakeFirstOrThrow();
    expect(inbound).toEqual({ text: '', redacted_at: now });
  });

  it('never removes a queued message or a webhook event still to be sent, whatever their age', async () => {
    const now = clock.now();
    const tenant = await ctx.t.tenant('InFlight');
    const queued = await seed(ctx.t.app.store, tenant.id, now - 45 * DAY);
    const pending = await seed(ctx.t.app.store, tenant.id, now - 45 * DAY);
    await ctx.t.app.store.write(async (trx) => {
      await trx
        .insertInto('queue')
        .values({
          message_id: queued.messageId,
          tenant_id: tenant.id,
          lane: 'transactional',
          lane_rank: 1,
          not_before: now + DAY,
          expires_at: now + 2 * DAY,
          attempts: 0,
          claimed_by: null,
          claimed_until: null,
          campaign_id: null,
        })
        .execute();
      await trx
        .updateTable('webhook_events')
        .set({ status: 'pending', next_attempt_at: now + DAY })
        .where('id', '=', pending.eventId)
        .execute();
    });
    await settle(ctx.t);
    expect(await present(ctx.t.app.store, queued)).toMatchObject({
      messages: 1,
      message_parts: 1,
      message_events: 1,
    });
    expect(await present(ctx.t.app.store, pending)).toMatchObject({
      messages: 1,
      webhook_events: 1,
      webhook_attempts: 1,
    });
    await ctx.t.app.store.write((trx) =>
      trx.deleteFrom('queue').where('message_id', '=', queued.messageId).execute(),
    );
    await settle(ctx.t);
    expect(await present(ctx.t.app.store, queued)).toEqual(NONE);
  });

  it('prunes hourly rollups past rollups_days', async () => {
    const now = clock.now();
    const row = (hour: number) => ({
      hour,
      tenant_id: 'ten_x',
      lane: 'bulk' as const,
      connector: '',
      campaign_id: '',
      status: 'delivered' as const,
      messages: 1,
      segments: 1,
    });
    const hour = (at: number) => at - (at % 3_600_000);
    await ctx.t.app.store.write((trx) =>
      trx
        .insertInto('stats_hourly')
        .values([row(hour(now - 401 * DAY)), row(hour(now - 402 * DAY)), row(hour(now - 10 * DAY))])
        .execute(),
    );
    await settle(ctx.t);
    const hours = await ctx.t.app.store.db
      .selectFrom('stats_hourly')
      .select('hour')
      .where('tenant_id', '=', 'ten_x')
      .execute();
    expect(hours.map((h) => h.hour)).toEqual([hour(now - 10 * DAY)]);
  });

  async function runCliOn(app: TestApp, args: string[]): Promise<number> {
    const dir = mkdtempSync(join(tmpdir(), 'relais-cli-'));
    const file = join(dir, 'relais.json');
    writeFileSync(
      file,
      JSON.stringify({ data_dir: app.db.dataDir, database_url: app.db.url, log: { level: 'silent' } }),
    );
    const write = process.stderr.write;
    const out = process.stdout.write;
    process.stderr.write = () => true;
    process.stdout.write = () => true;
    try {
      return await runCli([...args, '--config', file]);
    } finally {
      process.stderr.write = write;
      process.stdout.write = out;
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

describe('retention configuration', () => {
  it('refuses a redaction later than the retention, and retention shorter than a minute', () => {
    expect(() => parseConfig({ retention: { messages_days: 5, redact_bodies_after_days: 6 } })).toThrow(
      ConfigError,
    );
    expect(() => parseConfig({ retention: { messages_days: 0 } })).toThrow(/messages_days/);
    expect(() => parseConfig({ retention: { partition_hours: 0.001 } })).toThrow(/partition_hours/);
    expect(() => parseConfig({ retention: { partition_hours: 1 / 60, partitions_ahead_days: 3 } })).toThrow(
      /500 partitions/,
    );
    expect(() => parseConfig({ retention: { keep_forever: true } })).toThrow(ConfigError);
    expect(parseConfig({}).retention).toMatchObject({
      messages_days: 30,
      rollups_days: 400,
      partition_hours: 24,
    });
  });
});

describe.each(databaseKinds)('retention beside intake on $name', (kind) => {
  // The default chunk_size and pause: what production runs.
  const ctx = appWith(kind, { ...RETENTION, chunk_size: 100, max_chunks_per_pass: 1000, pause_ms: 5 });
  const clock = ctx.clock;

  it('deletes in chunks of a few ms while OTP messages keep being accepted quickly', async () => {
    const now = clock.now();
    const tenant = await ctx.t.tenant('Busy');
    const rows = Number(process.env.RETENTION_BENCH_ROWS ?? 6000);
    await seedMany(ctx.t.app.store, tenant.id, now - 40 * DAY, rows);
    // One chunk, timed alone: the longest time intake could wait for the write lock.
    const chunkMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      expect(await pruneChunk(ctx.t.app.store, ROOT_TABLES[0]!, now - 30 * DAY, { all: true }, 100)).toBe(
        100,
      );
      chunkMs.push(performance.now() - started);
    }
    const submit = () =>
      ctx.t.app.http.inject({
        method: 'POST',
        url: '/v1/messages',
        headers: bearer(tenant.apiKey),
        payload: { to: '+33612345678', from: 'Acme', text: 'Your code is 123456', lane: 'otp' },
      });
    for (let i = 0; i < 30; i++) await submit(); // warm up the route
    /** OTP submits, one after another (2 ms apart), until `work` ends; their latencies, sorted. */
    const intakeDuring = async (work: Promise<unknown>) => {
      const latencies: number[] = [];
      let running = true;
      const intake = (async () => {
        while (running) {
          const started = performance.now();
          const res = await submit();
          latencies.push(performance.now() - started);
          expect(res.statusCode).toBe(202);
          await new Promise((r) => setTimeout(r, 2));
        }
      })();
      await work;
      running = false;
      await intake;
      return latencies.sort((a, b) => a - b);
    };
    const stats = (l: number[]) =>
      `n=${l.length} p50=${l[Math.floor(l.length / 2)]!.toFixed(1)} p99=${l[Math.floor(l.length * 0.99)]!.toFixed(1)} max=${l.at(-1)!.toFixed(1)} ms`;
    const baseline = await intakeDuring(new Promise((r) => setTimeout(r, 1500)));
    // The rest by a housekeeping pass, with OTP intake running beside it.
    let report: RetentionReport | undefined;
    const started = performance.now();
    const latencies = await intakeDuring(
      ctx.t.app.housekeeping.runOnce().then((r) => {
        report = r.retention;
      }),
    );
    const passMs = performance.now() - started;
    expect(report!.rowsDeleted).toBe(2 * rows - 500); // messages and webhook events
    console.log(
      `${kind.name}: chunk of 100 messages ${chunkMs.map((m) => m.toFixed(1)).join('/')} ms; ` +
        `pass ${passMs.toFixed(0)} ms for ${report!.rowsDeleted} rows; OTP intake alone: ${stats(baseline)}; ` +
        `during the pass: ${stats(latencies)}`,
    );
    // Intake is served between chunks, never held for the whole pass. The bounds are loose on purpose
    // (shared, loaded test machines): they catch one long transaction or a table scan per chunk, not
    // milliseconds; the figures printed above are what docs/retention.md reports.
    expect(Math.min(...chunkMs)).toBeLessThan(250);
    expect(latencies.length).toBeGreaterThan(10);
    expect(latencies.at(-1)!).toBeLessThan(Math.max(250, passMs / 4));
  });
});

describe.each(databaseKinds.filter((k) => k.name === 'sqlite'))(
  'retention space reclaim on $name',
  (kind) => {
    const ctx = appWith(kind, { ...RETENTION, chunk_size: 500 });
    const now = ctx.clock.now();

    it('uses incremental auto-vacuum, and the file shrinks once old history is deleted', async () => {
      const pragma = async (name: string) =>
        Number(
          Object.values((await sql.raw(`pragma ${name}`).execute(ctx.t.app.store.db)).rows[0] as object)[0],
        );
      expect(await pragma('auto_vacuum')).toBe(2);
      const tenant = await ctx.t.tenant('Bulky');
      const big = 'x'.repeat(1500);
      for (let i = 0; i < 1500; i++) await seed(ctx.t.app.store, tenant.id, now - 40 * DAY + i, big);
      const keep = await seed(ctx.t.app.store, tenant.id, now - DAY, big);
      const pagesBefore = await pragma('page_count');
      const reports = await settle(ctx.t);
      expect(reports.reduce((n, r) => n + r.rowsDeleted, 0)).toBe(6000);
      expect(await pragma('freelist_count')).toBe(0);
      const pagesAfter = await pragma('page_count');
      // ~1,500 × (1.5 KB body + 1.5 KB reply) freed: well over 4 MB given back.
      expect((pagesBefore - pagesAfter) * (await pragma('page_size'))).toBeGreaterThan(4_000_000);
      await sql`pragma wal_checkpoint(TRUNCATE)`.execute(ctx.t.app.store.db);
      expect(statSync(join(ctx.t.db.dataDir, 'relais.db')).size).toBe(
        pagesAfter * (await pragma('page_size')),
      );
      expect(await present(ctx.t.app.store, keep)).toEqual(ALL);
    });
  },
);

describe.each(databaseKinds.filter((k) => k.name === 'postgres'))('retention partitions on $name', (kind) => {
  const ctx = appWith(kind, RETENTION);
  const clock = ctx.clock;
  const start = clock.now();
  const q = <T>(text: string) =>
    sql
      .raw<T>(text)
      .execute(ctx.t.app.store.db)
      .then((r) => r.rows);
  const partitionsOf = async (table: string) =>
    (
      await q<{ name: string }>(
        `select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
         where i.inhparent = '${table}'::regclass order by 1`,
      )
    ).map((r) => r.name);

  /** Housekeeping passes until one vacuums or analyses `table` (statistics reach pg_stat_user_tables within a second or so). */
  const passesUntilWorkedOn = async (table: string) => {
    const deadline = Date.now() + 10_000;
    let worked: string[] = [];
    while (Date.now() < deadline) {
      worked = (await ctx.t.app.housekeeping.runOnce()).vacuumed;
      if (worked.includes(table)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    return worked;
  };

  it('vacuums (and analyses) a table once its dead rows pile up, whether or not autovacuum runs', async () => {
    const store = ctx.t.app.store;
    await store.write(async (trx) => {
      await sql`insert into queue (message_id, tenant_id, lane, lane_rank, not_before, expires_at)
        select 'churn-' || g, 'churn', 'bulk', 2, 0, 0 from generate_series(1, 6000) g`.execute(trx);
      await sql`delete from queue where tenant_id = 'churn'`.execute(trx);
    });
    const deadInQueue = async () =>
      Number(
        (
          await q<{ n: string }>(`select n_dead_tup as n from pg_stat_user_tables where relname = 'queue'`)
        )[0]!.n,
      );
    expect(await passesUntilWorkedOn('queue')).toContain('queue');
    expect(await deadInQueue()).toBeLessThan(100);
    // Just vacuumed: the next pass leaves it alone.
    expect((await ctx.t.app.housekeeping.runOnce()).vacuumed).not.toContain('queue');
  });

  it('analyses a table whose rows changed a lot since its statistics (no autovacuum: plans went to sequential scans)', async () => {
    await ctx.t.app.store.write((trx) =>
      sql`insert into rate_limits (scope, key, window_start, hits, expires_at)
        select 'analyse-test', 'k' || g, 0, 1, 0 from generate_series(1, 6000) g`.execute(trx),
    );
    const analysed = async () =>
      (
        await q<{ at: string | null }>(
          `select last_analyze as at from pg_stat_user_tables where relname = 'rate_limits'`,
        )
      )[0]!.at;
    expect(await analysed()).toBeNull();
    expect(await passesUntilWorkedOn('rate_limits')).toContain('rate_limits');
    expect(await analysed()).not.toBeNull();
  });

  it('every history table is partitioned, keyed in byte order (migration 006, and 015 for webhook_deliveries)', async () => {
    for (const table of HISTORY_TABLES) {
      const [info] = await q<{ strategy: string; collation: string }>(
        `select p.partstrat as strategy, co.collname as collation
         from pg_partitioned_table p join pg_class c on c.oid = p.partrelid
         join pg_attribute a on a.attrelid = c.oid and a.attnum = p.partattrs[0]
         join pg_collation co on co.oid = a.attcollation
         where c.relname = '${table.name}'`,
      );
      expect(info, table.name).toEqual({ strategy: 'r', collation: 'C' });
      const parts = await partitionsOf(table.name);
      expect(parts).toContain(`${table.name}_default`);
      // Made after migration 006, on an empty table: no legacy partition; today and 3 days ahead.
      if (table.name === 'webhook_deliveries') {
        expect(parts.length).toBeGreaterThanOrEqual(5);
        continue;
      }
      expect(parts).toContain(`${table.name}_p_legacy`);
      expect(parts.length).toBeGreaterThanOrEqual(6); // legacy, default, today and 3 days ahead
    }
  });

  it('drops whole partitions past the horizon without a single DELETE, and keeps those still in flight', async () => {
    const tenant = await ctx.t.tenant('Partitioned');
    // A day inside the partitions that migration 006 created ahead, and one more for a queued message.
    const day1 = start + DAY;
    const day2 = start + 2 * DAY;
    const done: Seeded[] = [];
    for (let i = 0; i < 20; i++) done.push(await seed(ctx.t.app.store, tenant.id, day1 + i));
    const inFlight = await seed(ctx.t.app.store, tenant.id, day2);
    await ctx.t.app.store.write((trx) =>
      trx
        .insertInto('queue')
        .values({
          message_id: inFlight.messageId,
          tenant_id: tenant.id,
          lane: 'bulk',
          lane_rank: 2,
          not_before: day2 + 40 * DAY,
          expires_at: day2 + 41 * DAY,
          attempts: 0,
          claimed_by: null,
          claimed_until: null,
          campaign_id: null,
        })
        .execute(),
    );
    const partOf = async (table: string, key: string, id: string) =>
      (
        await q<{ name: string }>(
          `select tableoid::regclass::text as name from ${table} where ${key} = '${id}'`,
        )
      )[0]!.name;
    const doomed = await Promise.all(
      HISTORY_TABLES.map((h) =>
        partOf(
          h.name,
          h.key,
          h.prefix === 'msg'
            ? done[0]!.messageId
            : h.name === 'webhook_deliveries'
              ? done[0]!.loggedId
              : h.prefix === 'evt'
                ? done[0]!.eventId
                : done[0]!.inboundId,
        ),
      ),
    );
    const busy = await partOf('messages', 'id', inFlight.messageId);
    expect(doomed[0]).toMatch(/^messages_p\d{8}_0000$/);
    // Any DELETE on these partitions would be logged here (a row trigger: no statistics lag).
    await q('create table deletes_seen (tbl text)');
    await q(`create function log_delete() returns trigger language plpgsql as $$
      begin insert into deletes_seen values (tg_table_name); return old; end $$`);
    for (const p of [...doomed, busy]) {
      await q(`create trigger log_delete before delete on ${p} for each row execute function log_delete()`);
    }
    clock.set(day2 + 31 * DAY);
    const reports = await settle(ctx.t);
    const dropped = reports.flatMap((r) => r.partitionsDropped);
    for (const p of doomed) expect(dropped).toContain(p);
    for (const h of HISTORY_TABLES) expect(await partitionsOf(h.name)).not.toContain(`${h.name}_p_legacy`);
    expect(await q('select tbl from deletes_seen')).toEqual([]);
    for (const s of [done[0]!, done[19]!]) expect(await present(ctx.t.app.store, s)).toEqual(NONE);
    // The day holding a queued message stays, whole; partitions for the new "now" exist ahead.
    expect(reports.some((r) => r.partitionsKept.includes(busy))).toBe(true);
    expect(await partitionsOf('messages')).toContain(busy);
    expect(await present(ctx.t.app.store, inFlight)).toEqual(ALL);
    expect(reports[0]!.partitionsCreated).toBeGreaterThan(0);
    const ahead = await ctx.t.app.store.db
      .insertInto('messages')
      .values({ ...(await oneMessage(ctx.t, inFlight.messageId)), id: idAt('msg', clock.now() + 2 * DAY) })
      .returning(sql<string>`tableoid::regclass::text`.as('part'))
      .executeTakeFirstOrThrow();
    expect(ahead.part).not.toBe('messages_default');
    // Once sent, the last old partition goes too.
    await ctx.t.app.store.write((trx) =>
      trx.deleteFrom('queue').where('message_id', '=', inFlight.messageId).execute(),
    );
    const after = (await settle(ctx.t)).flatMap((r) => r.partitionsDropped);
    expect(after).toContain(busy);
    expect(await q('select tbl from deletes_seen')).toEqual([]);
  });

  it('a tenant with a shorter retention loses its rows one by one inside a live partition', async () => {
    const brief = await ctx.t.tenant('Brief');
    const other = await ctx.t.tenant('Other');
    await ctx.t.app.store.write((trx) =>
      trx.updateTable('tenants').set({ retention_days: 1 }).where('id', '=', brief.id).execute(),
    );
    const at = clock.now() - 2 * DAY;
    const b = await seed(ctx.t.app.store, brief.id, at);
    const o = await seed(ctx.t.app.store, other.id, at);
    await settle(ctx.t);
    expect(await present(ctx.t.app.store, b)).toEqual(NONE);
    expect(await present(ctx.t.app.store, o)).toEqual(ALL);
  });

  it('rows written where no partition existed yet (default partition) move into the new partition', async () => {
    const tenant = await ctx.t.tenant('Early');
    const far = clock.now() + 20 * DAY; // beyond the partitions ahead
    const s = await seed(ctx.t.app.store, tenant.id, far);
    expect(
      (
        await q<{ n: number }>(`select count(*)::int as n from messages_default where id = '${s.messageId}'`)
      )[0]!.n,
    ).toBe(1);
    clock.set(far);
    await settle(ctx.t);
    const [row] = await q<{ part: string }>(
      `select tableoid::regclass::text as part from messages where id = '${s.messageId}'`,
    );
    expect(row!.part).toMatch(/^messages_p/);
    expect(await present(ctx.t.app.store, s)).toEqual(ALL);
  });
});

async function oneMessage(t: TestApp, id: string) {
  return t.app.store.db.selectFrom('messages').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

describe.each(databaseKinds)('migration 006 on an installed base ($name)', (kind) => {
  it('keeps every row and serial id, and switches SQLite files to incremental auto-vacuum', async () => {
    const target = await kind.create();
    try {
      if (kind.name === 'sqlite') {
        // A file made by an older release: tables exist before auto_vacuum could be set.
        const raw = new SqliteDatabase(join(target.dataDir, 'relais.db'));
        raw.exec('create table made_by_an_older_release (x)');
        raw.close();
      }
      const config = parseConfig({
        data_dir: target.dataDir,
        database_url: target.url,
        log: { level: 'silent' },
      });
      const store = openStore(config);
      try {
        const migrator = new Migrator({ db: store.db, provider: migrationProvider(store.dialect) });
        expect((await migrator.migrateTo('005_audiences_campaigns')).error).toBeUndefined();
        const now = Date.now();
        const old = await seed(store, 'ten_a', now - 3 * DAY, 'old text', false);
        const today = await seed(store, 'ten_a', now, 'new text', false);
        const eventsBefore = await store.db
          .selectFrom('message_events')
          .select(['id', 'message_id'])
          .orderBy('id')
          .execute();
        await store.migrate();
        expect(
          await store.db.selectFrom('message_events').select(['id', 'message_id']).orderBy('id').execute(),
        ).toEqual(eventsBefore);
        const rowOf = (s: Seeded) =>
          store.db
            .selectFrom('messages')
            .select(['body', 'redacted_at'])
            .where('id', '=', s.messageId)
            .executeTakeFirst();
        expect(await rowOf(old)).toEqual({ body: 'old text', redacted_at: null });
        expect(await rowOf(today)).toEqual({ body: 'new text', redacted_at: null });
        // Serial ids go on from where they were.
        const next = await store.db
          .insertInto('message_events')
          .values({
            message_id: today.messageId,
            status: 'delivered',
            at: now,
            error_code: null,
            detail: null,
          })
          .returning('id')
          .executeTakeFirstOrThrow();
        expect(next.id).toBeGreaterThan(eventsBefore.at(-1)!.id);
        if (kind.name === 'postgres') {
          const partOf = async (s: Seeded) =>
            (
              await sql<{
                part: string;
              }>`select tableoid::regclass::text as part from messages where id = ${s.messageId}`.execute(
                store.db,
              )
            ).rows[0]!.part;
          expect(await partOf(old)).toBe('messages_p_legacy');
          // Today's rows wait in the default partition until the application creates today's slice.
          expect(await partOf(today)).toBe('messages_default');
          await new PartitionUpkeep(store, config.retention).ensureAhead(now);
          expect(await partOf(today)).toMatch(/^messages_p\d{8}_0000$/);
          // One event added above; seeded before migration 015, so none in the delivery log.
          expect(await present(store, today)).toEqual({ ...ALL, message_events: 2, webhook_deliveries: 0 });
          const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_class
            where relname in ('messages_pre006', 'message_events_pre006')`.execute(store.db);
          expect(rows[0]!.n).toBe(0);
        } else {
          const { rows } = await sql<{ auto_vacuum: number }>`pragma auto_vacuum`.execute(store.db);
          expect(rows[0]!.auto_vacuum).toBe(2);
        }
      } finally {
        await store.close();
      }
    } finally {
      await target.drop();
    }
  });
});

describe.each(databaseKinds.filter((k) => k.name === 'postgres'))('retention in minutes on $name', (kind) => {
  // A soak-test setting: 10 minutes of history in 2-minute partitions.
  const ctx = appWith(kind, {
    messages_days: 10 / 1440,
    partition_hours: 2 / 60,
    partitions_ahead_days: 10 / 1440,
  });
  const clock = ctx.clock;
  const MINUTE = 60_000;

  it('creates partitions of partition_hours and drops them minutes later', async () => {
    const start = clock.now();
    const tenant = await ctx.t.tenant('Soak');
    const s = await seed(ctx.t.app.store, tenant.id, start + MINUTE);
    const [{ part }] = (
      await sql<{
        part: string;
      }>`select tableoid::regclass::text as part from messages where id = ${s.messageId}`.execute(
        ctx.t.app.store.db,
      )
    ).rows as [{ part: string }];
    expect(part).toMatch(/^messages_p\d{8}_\d{4}$/);
    clock.set(start + 8 * MINUTE);
    await settle(ctx.t);
    expect(await present(ctx.t.app.store, s)).toEqual(ALL);
    clock.set(start + 15 * MINUTE);
    const dropped = (await settle(ctx.t)).flatMap((r) => r.partitionsDropped);
    expect(dropped).toContain(part);
    expect(await present(ctx.t.app.store, s)).toEqual(NONE);
  });
});
