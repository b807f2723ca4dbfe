import Database from 'better-sqlite3';
import pg from 'pg';

/**
 * Seeds a big message history inside the database itself (INSERT … SELECT over a generated series),
 * so 10 million rows take minutes, not hours of round trips. Every column is a pure function of the
 * row number i, and {@link HistoryShape} computes the same values in JavaScript: the benchmark knows
 * any message's id, tenant and phone number without reading them back.
 *
 * Ids are built as src/shared/ids.ts builds them: `msg_` + a ULID whose first 10 characters encode the
 * creation time in Crockford base32 (so they are time-ordered and fall in the right partition) and
 * whose last 16 are "random" (here a hash of i, then i itself, which keeps them unique).
 */

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const HASH_MUL = 2_654_435_761n;
const PHONE_MUL = 7_919n;
const PHONE_POOL = 2_000_003n;
/** Share of messages per tenant, in twentieths: the first tenant is the big one. */
const TENANT_OF_TWENTIETH = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 3, 4];
export const TENANT_COUNT = 5;
export const HOUR_MS = 3_600_000;

export interface HistoryShape {
  /** Number of messages. */
  n: number;
  /** Creation time of message 0; the last one is created just before `start + spanMs`. */
  start: number;
  spanMs: number;
  tenantIds: string[];
}

const big = (v: number) => BigInt(v);

function base32(value: bigint, chars: number): string {
  let out = '';
  for (let k = chars - 1; k >= 0; k--) out += CROCKFORD[Number((value >> big(5 * k)) & 31n)];
  return out;
}

export function createdAt(shape: HistoryShape, i: number): number {
  return Number(big(shape.start) + (big(i) * big(shape.spanMs)) / big(shape.n));
}

export function messageId(shape: HistoryShape, i: number): string {
  const h = (big(i) * HASH_MUL) % (1n << 40n);
  return `msg_${base32(big(createdAt(shape, i)), 10)}${base32(h, 8)}${base32(big(i), 8)}`;
}

export function tenantIndex(i: number): number {
  return TENANT_OF_TWENTIETH[i % 20]!;
}

export function phoneOf(i: number): string {
  return `+336${String((big(i) * PHONE_MUL) % PHONE_POOL).padStart(8, '0')}`;
}

type Dialect = 'sqlite' | 'postgres';

/** The SQL twin of base32(): one character per 5 bits, most significant first. */
function base32Sql(expr: string, chars: number, d: Dialect): string {
  const parts: string[] = [];
  for (let k = chars - 1; k >= 0; k--) {
    const index = `((${expr}) >> ${5 * k}) & 31`;
    parts.push(`substr('${CROCKFORD}', ${d === 'postgres' ? `(${index})::int` : `(${index})`} + 1, 1)`);
  }
  return parts.join(' || ');
}

const pad = (expr: string, width: number, d: Dialect) =>
  d === 'postgres' ? `lpad((${expr})::text, ${width}, '0')` : `printf('%0${width}d', ${expr})`;

/** Our own ids only (checked), so they can be written into the SQL text. */
function literal(id: string): string {
  if (!/^[a-z]{3}_[0-9A-Z]{26}$/.test(id)) throw new Error(`unexpected tenant id ${id}`);
  return `'${id}'`;
}

/**
 * A CTE `d` of rows lo ≤ i < hi with every derived value. The status mix: 85% delivered, 5%
 * undelivered, 2% expired, 1% rejected, 1% failed, 4% submitted, 2% accepted; lanes 20% otp, 50%
 * transactional, 30% bulk (a third of bulk texts take 2 segments, the big tenant's bulk messages
 * belong to campaigns).
 */
function rowsCte(shape: HistoryShape, lo: number, hi: number, d: Dialect): string {
  const series =
    d === 'postgres'
      ? `seq(i) as (select generate_series(${lo}::bigint, ${hi - 1}::bigint))`
      : `seq(i) as (select ${lo} union all select i + 1 from seq where i < ${hi - 1})`;
  const tenantCase = `case tm ${TENANT_OF_TWENTIETH.map((t, k) => `when ${k} then ${literal(shape.tenantIds[t]!)}`).join(' ')} end`;
  return `with recursive ${series},
  b as (select i, ${shape.start} + (i * ${shape.spanMs}) / ${shape.n} as t,
        ((i * ${HASH_MUL}) % 4294967296) >> 12 as h, i % 20 as tm, i % 10 as lm from seq),
  c as (select b.*, h % 100 as s, ${tenantCase} as tenant from b),
  d as (select c.*,
        case when s < 85 then 'delivered' when s < 90 then 'undelivered' when s < 92 then 'expired'
             when s < 93 then 'rejected' when s < 94 then 'failed' when s < 98 then 'submitted'
             else 'accepted' end as st,
        'msg_' || ${base32Sql('t', 10, d)} || ${base32Sql(`(i * ${HASH_MUL}) % 1099511627776`, 8, d)}
               || ${base32Sql('i', 8, d)} as id
        from c)`;
}

function messagesInsert(shape: HistoryShape, lo: number, hi: number, d: Dialect): string {
  return `${rowsCte(shape, lo, hi, d)}
  insert into messages (id, tenant_id, to_number, country, sender, body, lane, encoding, segments, status,
    client_ref, callback_url, send_at, expires_at, error_code, error_reason, connector, created_at,
    updated_at, sealed_body, campaign_id)
  select id, tenant, '+336' || ${pad(`(i * ${PHONE_MUL}) % ${PHONE_POOL}`, 8, d)}, 'FR',
    case when lm < 2 then 'Verify' else 'Relais' end,
    case when lm < 2 then 'Votre code : ' || ${pad('h % 1000000', 6, d)} || '. Il expire dans 10 minutes.'
         when lm < 7 then 'Bonjour, votre commande ' || i || ' est en route. Suivez-la ici : https://ex.am/t/' || (h % 99991)
         when lm < 9 then 'PROMO -20% ce week-end avec le code WEEKEND' || (i % 100) || ' sur https://ex.am/s STOP au 36111'
         else 'Nouvelle collection en boutique : jusqu''a -30% sur une selection d''articles, livraison offerte des 30 euros d''achat, retours gratuits sous 30 jours. Code NOUVEAU' || (i % 1000) || ' sur https://ex.am/n. STOP au 36111' end,
    case when lm < 2 then 'otp' when lm < 7 then 'transactional' else 'bulk' end,
    'GSM-7', case when lm = 9 then 2 else 1 end, st,
    case when lm >= 2 and lm < 7 then 'order-' || i end, null, null, t + 172800000,
    case st when 'undelivered' then 'absent_subscriber' when 'expired' then 'expired'
            when 'rejected' then 'carrier_rejected' when 'failed' then 'submit_failed' end,
    null,
    case when st = 'accepted' then null when i % 2 = 0 then 'carrier-a' else 'carrier-b' end,
    t, case when st = 'accepted' then t else t + 4000 end, null,
    case when lm >= 7 and tm < 14 then 'cmp_01KB' || ${pad('(i / 50000) % 20', 22, d)} end
  from d`;
}

/** Parts and one status event for 30% of the messages that reached a carrier. */
function partsInsert(shape: HistoryShape, lo: number, hi: number, d: Dialect): string {
  return `${rowsCte(shape, lo, hi, d)}
  insert into message_parts (message_id, part_no, connector, carrier_id, carrier_key, status, error_code, updated_at)
  select id, 1, case when i % 2 = 0 then 'carrier-a' else 'carrier-b' end, 'c' || i, 'c' || i, st,
    case when st in ('undelivered', 'expired', 'rejected', 'failed') then 'err' end, t + 4000
  from d where lm < 3 and st <> 'accepted'`;
}

function eventsInsert(shape: HistoryShape, lo: number, hi: number, d: Dialect): string {
  return `${rowsCte(shape, lo, hi, d)}
  insert into message_events (message_id, status, at, error_code, detail)
  select id, st, t + 4000, case when st in ('undelivered', 'expired', 'rejected', 'failed') then 'err' end, null
  from d where lm < 3 and st <> 'accepted'`;
}

/**
 * stats_hourly as the platform would have written it: every message entered `accepted` in its hour
 * (no connector yet), those that left it entered `submitted` with their connector, and the final ones
 * their final status. One scan of messages into a small temp table; the rows then go in in hour order,
 * as the platform writes them hour after hour (so a day's rows share pages, as in production).
 */
const STATS_SQL = [
  'delete from stats_hourly',
  `create temp table history_agg as
     select created_at - created_at % ${HOUR_MS} as hour, tenant_id, lane, coalesce(connector, '') as connector,
            coalesce(campaign_id, '') as campaign_id, status, count(*) as messages, sum(segments) as segments
     from messages group by 1, 2, 3, 4, 5, 6`,
  `insert into stats_hourly (hour, tenant_id, lane, connector, campaign_id, status, messages, segments)
     select * from (
       select hour, tenant_id, lane, '' as connector, campaign_id, 'accepted' as status,
              sum(messages) as messages, sum(segments) as segments
       from history_agg group by hour, tenant_id, lane, campaign_id
       union all
       select hour, tenant_id, lane, connector, campaign_id, 'submitted', sum(messages), sum(segments)
       from history_agg where status <> 'accepted' group by hour, tenant_id, lane, connector, campaign_id
       union all
       select hour, tenant_id, lane, connector, campaign_id, status, messages, segments
       from history_agg where status not in ('accepted', 'submitted')
     ) r order by hour, tenant_id, lane, connector, campaign_id, status`,
  'drop table history_agg',
];

const HISTORY = ['messages', 'message_parts', 'message_events'];

/** Runs SQL against the database being seeded. */
interface Runner {
  exec(sql: string): Promise<void>;
  all<T>(sql: string): Promise<T[]>;
  close(): Promise<void>;
}

function sqliteRunner(file: string): Runner {
  const db = new Database(file);
  // Relais is stopped: nothing else reads, so durability can wait for the final checkpoint.
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -1048576');
  db.pragma('temp_store = MEMORY');
  return {
    async exec(sql) {
      db.exec(sql);
    },
    async all<T>(sql: string) {
      return db.prepare(sql).all() as T[];
    },
    async close() {
      db.pragma('wal_checkpoint(TRUNCATE)');
      db.close();
    },
  };
}

async function postgresRunner(url: string): Promise<Runner> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(
    "set synchronous_commit = off; set maintenance_work_mem = '1GB'; set work_mem = '256MB'",
  );
  return {
    async exec(sql) {
      await client.query(sql);
    },
    async all<T>(sql: string) {
      return (await client.query(sql)).rows as T[];
    },
    async close() {
      await client.end();
    },
  };
}

/**
 * Secondary (non-unique) indexes of the history tables, as their own CREATE statements: dropped
 * before the load and rebuilt after, which sorts once instead of inserting 10M times at random places.
 * Read from the live schema, so whatever the current migrations made is rebuilt as it was.
 */
async function secondaryIndexes(run: Runner, d: Dialect): Promise<{ name: string; sql: string }[]> {
  const list = HISTORY.map((t) => `'${t}'`).join(', ');
  if (d === 'sqlite') {
    return run.all(`select name, sql from sqlite_master where type = 'index' and tbl_name in (${list})
      and sql is not null and sql not like 'CREATE UNIQUE%'`);
  }
  return run.all(`select c.relname as name, pg_get_indexdef(i.indexrelid) as sql
    from pg_index i join pg_class c on c.oid = i.indexrelid join pg_class t on t.oid = i.indrelid
    join pg_namespace n on n.oid = t.relnamespace
    where n.nspname = current_schema() and t.relname in (${list}) and not i.indisprimary and not i.indisunique
      and not exists (select 1 from pg_inherits p where p.inhrelid = i.indexrelid)`);
}

export interface SeedTarget {
  kind: Dialect;
  /** SQLite file or PostgreSQL URL. */
  location: string;
}

export async function seedHistory(
  target: SeedTarget,
  shape: HistoryShape,
  log: (line: string) => void,
  chunk = 500_000,
): Promise<void> {
  const d = target.kind;
  const run = d === 'sqlite' ? sqliteRunner(target.location) : await postgresRunner(target.location);
  try {
    const indexes = await secondaryIndexes(run, d);
    for (const ix of indexes) await run.exec(`drop index ${ix.name}`);
    log(`dropped ${indexes.length} secondary indexes for the load`);
    const started = Date.now();
    for (let lo = 0; lo < shape.n; lo += chunk) {
      const hi = Math.min(shape.n, lo + chunk);
      await run.exec('begin');
      await run.exec(messagesInsert(shape, lo, hi, d));
      await run.exec(partsInsert(shape, lo, hi, d));
      await run.exec(eventsInsert(shape, lo, hi, d));
      await run.exec('commit');
      const rate = Math.round(hi / ((Date.now() - started) / 1000));
      log(
        `${hi.toLocaleString('en')} / ${shape.n.toLocaleString('en')} messages (${rate.toLocaleString('en')}/s)`,
      );
    }
    for (const ix of indexes) {
      const t0 = Date.now();
      // pg_get_indexdef writes a partitioned table's index ON ONLY the parent, which would build it
      // for no partition: rebuild it on the whole table.
      await run.exec(ix.sql.replace(/ ON ONLY /i, ' ON '));
      log(`rebuilt index ${ix.name} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
    await writeRollups(run);
    log('stats_hourly written, analyzed');
  } finally {
    await run.close();
  }
}

async function writeRollups(run: Runner): Promise<void> {
  await run.exec('begin');
  for (const sql of STATS_SQL) await run.exec(sql);
  await run.exec('commit');
  await run.exec('analyze');
}

/** Rewrites stats_hourly of a seeded database from its messages (a kept database after a seeder change). */
export async function rewriteRollups(target: SeedTarget): Promise<void> {
  const run =
    target.kind === 'sqlite' ? sqliteRunner(target.location) : await postgresRunner(target.location);
  try {
    await writeRollups(run);
  } finally {
    await run.close();
  }
}
