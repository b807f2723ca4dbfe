import { cpus, totalmem } from 'node:os';
import pg from 'pg';
import { ulid } from 'ulid';
import { parseConfig } from '../config/load.js';
import { openStore } from '../store/store.js';
import { benchArgs, usageError } from './args.js';
import { PG_ADMIN_URL } from './databases.js';
import { median } from './stats.js';

/**
 * PostgreSQL: the cost of the carrier path's updates per message — its two status changes
 * (submitted, then delivered), and its part's row, written by the submit's outcome and updated by
 * the receipt — with `messages` and `message_parts` laid out as migration 011 leaves them, against
 * the layout before it (the status indexed, full pages), on fresh databases, runs interleaved. The
 * statements are those of status.ts, 500 ids at a time.
 */

const USAGE = `usage: node dist/bench/status-update-bench.js [options]   (after npm run build)

  --messages N    messages per run (default 200,000)
  --runs N        runs per layout, interleaved (default 3)
  -h, --help      this help

PostgreSQL: RELAIS_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/test) must allow CREATE
DATABASE.`;

type Layout = 'before 011' | 'migration 011';

/** One table's share of a run: its statements' time and log, its heap after, heap-only updates. */
interface TableResult {
  ms: number;
  walBytes: number;
  heapBytes: number;
  hotShare: number;
}

interface Result {
  layout: Layout;
  messages: TableResult;
  parts: TableResult;
}

const TABLES = ['messages', 'parts'] as const;

const BATCH = 500;

/** Runs `work` and measures it on `table`'s partitions. */
async function timed(client: pg.Client, table: string, work: () => Promise<void>): Promise<TableResult> {
  const before = await client.query<{ lsn: string }>('select pg_current_wal_lsn() as lsn');
  const started = performance.now();
  await work();
  const ms = performance.now() - started;
  const wal = await client.query<{ bytes: string }>(
    'select pg_wal_lsn_diff(pg_current_wal_lsn(), $1) as bytes',
    [before.rows[0]!.lsn],
  );
  await client.query('select pg_stat_force_next_flush()');
  const stats = await client.query<{ heap: string; upd: string; hot: string }>(
    `select sum(pg_relation_size(relid)) as heap, sum(n_tup_upd) as upd, sum(n_tup_hot_upd) as hot
     from pg_stat_user_tables
     where relid in (select inhrelid from pg_inherits where inhparent = $1::regclass)`,
    [table],
  );
  const s = stats.rows[0]!;
  return {
    ms,
    walBytes: Number(wal.rows[0]!.bytes),
    heapBytes: Number(s.heap),
    hotShare: Number(s.upd) > 0 ? Number(s.hot) / Number(s.upd) : 0,
  };
}

async function run(layout: Layout, messages: number): Promise<Result> {
  const name = `relais_status_bench_${process.pid}_${Date.now()}`;
  const admin = new pg.Client(PG_ADMIN_URL);
  await admin.connect();
  await admin.query(`create database ${name}`);
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  const client = new pg.Client(url.toString());
  try {
    const store = openStore(parseConfig({ database_url: url.toString() }));
    await store.migrate();
    await store.close();
    await client.connect();
    if (layout === 'before 011') {
      await client.query('create index messages_tenant_status on messages (tenant_id, status, id)');
      const { rows } = await client.query<{ name: string }>(
        `select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
         where i.inhparent in ('messages'::regclass, 'message_parts'::regclass)`,
      );
      for (const r of rows) await client.query(`alter table "${r.name}" set (fillfactor = 100)`);
    }
    await client.query(
      `insert into tenants (id, name, webhook_secret, created_at) values ('t1', 'Shop', 'secret', 0)`,
    );
    const now = Date.now();
    const ids = Array.from({ length: messages }, () => `msg_${ulid(now)}`).sort();
    for (let i = 0; i < ids.length; i += 1000) {
      await client.query(
        `insert into messages (id, tenant_id, to_number, sender, body, lane, encoding, segments, status,
           exception_status, expires_at, created_at, updated_at)
         select id, 't1', '+336' || lpad((random() * 99999999)::int::text, 8, '0'), 'Shop',
           'Your order 12345 is on its way: track it at https://shop.example/t/abcdef', 'bulk', 'GSM-7', 1,
           'accepted', null, $2, $2, $2
         from unnest($1::text[]) as id`,
        [ids.slice(i, i + 1000), now],
      );
    }
    await client.query('vacuum analyze messages');
    const messagesResult = await timed(client, 'messages', async () => {
      for (const status of ['submitted', 'delivered']) {
        for (let i = 0; i < ids.length; i += BATCH) {
          await client.query(
            `update messages set status = $1, exception_status = null, error_code = null,
               error_reason = null, connector = 'sim', updated_at = $2
             where id = any($3)`,
            [status, Date.now(), ids.slice(i, i + BATCH)],
          );
        }
      }
    });
    // A part is written by the submit's outcome, then updated by its receipt: the upsert of status.ts.
    const partsResult = await timed(client, 'message_parts', async () => {
      for (const status of ['submitted', 'delivered']) {
        for (let i = 0; i < ids.length; i += BATCH) {
          const chunk = ids.slice(i, i + BATCH);
          const submitted = status === 'submitted';
          await client.query(
            `insert into message_parts (message_id, part_no, connector, carrier_id, carrier_key, status,
               error_code, updated_at)
             select id, 1, $2, key, key, $3, null, $4
             from unnest($1::text[], $5::text[]) as t(id, key)
             on conflict (message_id, part_no) do update set
               connector = coalesce(excluded.connector, message_parts.connector),
               carrier_id = coalesce(excluded.carrier_id, message_parts.carrier_id),
               carrier_key = coalesce(excluded.carrier_key, message_parts.carrier_key),
               status = excluded.status, error_code = excluded.error_code, updated_at = excluded.updated_at`,
            [
              chunk,
              submitted ? 'sim' : null,
              status,
              Date.now(),
              chunk.map((_, j) => (submitted ? (i + j).toString(16).padStart(12, '0') : null)),
            ],
          );
        }
      }
    });
    return { layout, messages: messagesResult, parts: partsResult };
  } finally {
    await client.end().catch(() => {});
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
}

async function main(): Promise<void> {
  const values = benchArgs('status-update-bench', USAGE, {
    options: {
      messages: { type: 'string', default: '200000' },
      runs: { type: 'string', default: '3' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const messages = Number(values.messages);
  const runs = Number(values.runs);
  for (const [name, value] of [
    ['messages', messages],
    ['runs', runs],
  ] as const) {
    if (!Number.isInteger(value) || value < 1)
      usageError('status-update-bench', USAGE, `--${name} expects a positive whole number`);
  }
  const cpu = cpus()[0]?.model.split(' ').slice(0, 2).join(' ') ?? 'unknown CPU';
  console.log(
    `carrier-path updates on PostgreSQL: ${messages.toLocaleString('en-US')} messages, ${runs} runs ` +
      `per layout, interleaved; ${cpu}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, ` +
      `${new Date().toISOString().slice(0, 10)}`,
  );
  const results: Result[] = [];
  for (let i = 0; i < runs; i++) {
    for (const layout of ['before 011', 'migration 011'] as const) {
      const r = await run(layout, messages);
      results.push(r);
      console.log(
        `  ${layout}: messages ${perUpdate(r.messages, messages).toFixed(1)} µs, ` +
          `parts ${perUpdate(r.parts, messages).toFixed(1)} µs per write`,
      );
    }
  }
  console.log(
    '\n| Table | Layout | µs per write (median) | log per write | heap after | heap-only updates |',
  );
  console.log('| --- | --- | ---: | ---: | ---: | ---: |');
  for (const table of TABLES) {
    for (const layout of ['before 011', 'migration 011'] as const) {
      const mine = results.filter((r) => r.layout === layout).map((r) => r[table]);
      const us = median(mine.map((t) => perUpdate(t, messages)));
      const wal = median(mine.map((t) => t.walBytes / (2 * messages)));
      const heap = median(mine.map((t) => t.heapBytes / 2 ** 20));
      const hot = median(mine.map((t) => t.hotShare * 100));
      console.log(
        `| ${table} | ${layout} | ${us.toFixed(1)} µs | ${Math.round(wal)} B | ${Math.round(heap)} MiB | ${Math.round(hot)}% |`,
      );
    }
  }
}

/** µs per write: each message's row is written twice (submitted, delivered). */
function perUpdate(t: TableResult, messages: number): number {
  return (t.ms * 1000) / (2 * messages);
}

await main();
