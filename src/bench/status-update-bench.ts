import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { ulid } from 'ulid';
import { parseConfig } from '../config/load.js';
import { openStore } from '../store/store.js';
import { PG_ADMIN_URL } from './databases.js';
import { median } from './stats.js';

/**
 * PostgreSQL: the cost of the carrier path's two status changes per message (submitted, then
 * delivered), with `messages` laid out as migration 011 leaves it, against the layout before it
 * (the status indexed, full pages), on fresh databases, runs interleaved. The updates are the
 * statement status.ts sends: 500 ids at a time.
 *
 *   npm run build --silent && node dist/bench/status-update-bench.js [--messages 200000] [--runs 3]
 */

type Layout = 'before 011' | 'migration 011';

interface Result {
  layout: Layout;
  ms: number;
  walBytes: number;
  heapBytes: number;
  hotShare: number;
}

const BATCH = 500;

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
         where i.inhparent = 'messages'::regclass`,
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
    const before = await client.query<{ lsn: string }>('select pg_current_wal_lsn() as lsn');
    const started = performance.now();
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
    const ms = performance.now() - started;
    const wal = await client.query<{ bytes: string }>(
      'select pg_wal_lsn_diff(pg_current_wal_lsn(), $1) as bytes',
      [before.rows[0]!.lsn],
    );
    await client.query('select pg_stat_force_next_flush()');
    const stats = await client.query<{ heap: string; upd: string; hot: string }>(
      `select sum(pg_relation_size(relid)) as heap, sum(n_tup_upd) as upd, sum(n_tup_hot_upd) as hot
       from pg_stat_user_tables
       where relid in (select inhrelid from pg_inherits where inhparent = 'messages'::regclass)`,
    );
    const s = stats.rows[0]!;
    return {
      layout,
      ms,
      walBytes: Number(wal.rows[0]!.bytes),
      heapBytes: Number(s.heap),
      hotShare: Number(s.upd) > 0 ? Number(s.hot) / Number(s.upd) : 0,
    };
  } finally {
    await client.end().catch(() => {});
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { messages: { type: 'string', default: '200000' }, runs: { type: 'string', default: '3' } },
  });
  const messages = Number(values.messages);
  const runs = Number(values.runs);
  const cpu = cpus()[0]?.model.split(' ').slice(0, 2).join(' ') ?? 'unknown CPU';
  console.log(
    `status updates on PostgreSQL: ${messages.toLocaleString('en-US')} messages × 2 updates, ${runs} runs ` +
      `per layout, interleaved; ${cpu}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, ` +
      `${new Date().toISOString().slice(0, 10)}`,
  );
  const results: Result[] = [];
  for (let i = 0; i < runs; i++) {
    for (const layout of ['before 011', 'migration 011'] as const) {
      const r = await run(layout, messages);
      results.push(r);
      console.log(
        `  ${layout}: ${Math.round(r.ms)} ms, ${((r.ms * 1000) / (2 * messages)).toFixed(1)} µs per update`,
      );
    }
  }
  console.log(
    '\n| Layout of `messages` | µs per update (median) | log per update | heap after | heap-only updates |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const layout of ['before 011', 'migration 011'] as const) {
    const mine = results.filter((r) => r.layout === layout);
    const us = median(mine.map((r) => (r.ms * 1000) / (2 * messages)));
    const wal = median(mine.map((r) => r.walBytes / (2 * messages)));
    const heap = median(mine.map((r) => r.heapBytes / 2 ** 20));
    const hot = median(mine.map((r) => r.hotShare * 100));
    console.log(
      `| ${layout} | ${us.toFixed(1)} µs | ${Math.round(wal)} B | ${Math.round(heap)} MiB | ${Math.round(hot)}% |`,
    );
  }
}

await main();
