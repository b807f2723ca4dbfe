import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, get } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { benchArgs, usageError } from './args.js';
import { PG_ADMIN_URL } from './databases.js';
import { bulkBatchBodies } from './e2e-payloads.js';
import {
  createdAt,
  type HistoryShape,
  messageId,
  phoneOf,
  seedHistory,
  TENANT_COUNT,
  tenantIndex,
} from './history-seed.js';
import { rng } from './payloads.js';
import { createTenant, freePort, postJson, type RelaisProcess, relaisEnv, startRelais } from './server.js';
import { max, quantile } from './stats.js';

/**
 * The "bounded by design" check: with a big history (10M messages by default, a handful of tenants, one
 * big), the reads customers make stay fast through the real HTTP API of a running Relais process:
 * recent messages, cursor pages, a message by id, messages to a phone number, a day's statistics.
 * Every answer is checked against the seeded data (a lookup that finds nothing would be fast for the
 * wrong reason).
 *
 *   npm run build --silent && node dist/bench/history-bench.js --db sqlite --messages 10000000 --keep
 */

export const TARGET_P95_MS = 50;
const CONTROL = 'control: GET /healthz (no database)';
const DAY_MS = 86_400_000;
/** The history covers the 28 days before seeding: inside the default 30-day retention too. */
const SPAN_MS = 28 * DAY_MS;
const TENANT_NAMES = ['BigRetail', 'Clinic', 'Garage', 'Bakery', 'Florist'];

export interface HistoryBenchOptions {
  db: 'sqlite' | 'postgres';
  messages: number;
  /** Reuse a database seeded earlier with the same size (and leave it in place). */
  keep: boolean;
  /** Measured requests per kind of read. */
  requests: number;
  /** Measured batch requests of the intake series (500 messages each). */
  intakeRequests: number;
  log?: (line: string) => void;
}

export interface LatencySummary {
  name: string;
  requests: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface HistoryBenchResult {
  db: 'sqlite' | 'postgres';
  messages: number;
  /** False when a kept database was reused. */
  seededNow: boolean;
  seedSeconds: number;
  series: LatencySummary[];
  /**
   * Writes on top of the history: batches of bulk messages accepted one request at a time. Each
   * new message adds an entry at a random place of the phone-number index, whose size grows with the
   * history: what this measures that an intake run on an empty database does not.
   */
  intake: IntakeSummary;
  targetP95Ms: number;
  /** Every series (but the control) under the target at p95. */
  met: boolean;
  /** 1-minute load average before and after measuring: on a shared 2-core machine, read it first. */
  loadAverage: [number, number];
}

export interface IntakeSummary {
  requests: number;
  perRequest: number;
  msgPerSec: number;
  p50: number;
  p95: number;
}

/** What a seeded database needs to be reused: its shape and the tenants' API keys. */
interface Seeded {
  shape: HistoryShape;
  apiKeys: string[];
  seedSeconds: number;
}

interface Location {
  dataDir: string;
  databaseUrl: string | undefined;
  /** Creates the empty database (PostgreSQL) or nothing (SQLite: Relais creates the file). */
  create(): Promise<void>;
  drop(): Promise<void>;
}

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function location(opts: HistoryBenchOptions): Location {
  const dataDir = opts.keep
    ? join(tmpdir(), 'relais-history-bench', `${opts.db}-${opts.messages}`)
    : mkdtempSync(join(tmpdir(), 'relais-history-'));
  const dbName = opts.keep
    ? `relais_history_${opts.messages}`
    : `relais_history_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${dbName}`;
  const pgUrl = opts.db === 'postgres' ? url.toString() : undefined;
  return {
    dataDir,
    databaseUrl: pgUrl,
    async create() {
      // A run interrupted while seeding left no marker: start again from nothing.
      rmSync(dataDir, { recursive: true, force: true });
      mkdirSync(dataDir, { recursive: true });
      if (pgUrl) {
        await adminQuery(`drop database if exists ${dbName} with (force)`);
        await adminQuery(`create database ${dbName}`);
      }
    },
    async drop() {
      rmSync(dataDir, { recursive: true, force: true });
      if (pgUrl) await adminQuery(`drop database if exists ${dbName} with (force)`);
    },
  };
}

/** Relais as deployed, minus the carrier simulator, with retention wide enough for the seeded past. */
async function start(loc: Location): Promise<RelaisProcess> {
  const port = await freePort();
  const configFile = join(loc.dataDir, 'history-bench.yaml');
  writeFileSync(
    configFile,
    '# written by the history benchmark\nsimulator:\n  enabled: never\nretention:\n  messages_days: 3650\n',
  );
  return startRelais(
    relaisEnv({ dataDir: loc.dataDir, databaseUrl: loc.databaseUrl, port, configFile }),
    port,
  );
}

const agent = new Agent({ keepAlive: true, maxSockets: 1 });

function fetchJson(url: string, apiKey: string): Promise<{ status: number; body: unknown; ms: number }> {
  return new Promise((resolvePromise, reject) => {
    const t0 = performance.now();
    const req = get(url, { agent, headers: { authorization: `Bearer ${apiKey}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const ms = performance.now() - t0;
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolvePromise({ status: res.statusCode ?? 0, body: JSON.parse(text), ms });
        } catch {
          reject(
            new Error(`GET ${url}: ${res.statusCode} with a body that is not JSON: ${text.slice(0, 200)}`),
          );
        }
      });
    });
    req.on('error', reject);
  });
}

async function seed(loc: Location, n: number, log: (line: string) => void): Promise<Seeded> {
  await loc.create();
  const relais = await start(loc);
  const apiKeys: string[] = [];
  const tenantIds: string[] = [];
  try {
    const env = relaisEnv({ dataDir: loc.dataDir, databaseUrl: loc.databaseUrl, port: 0 });
    for (const name of TENANT_NAMES.slice(0, TENANT_COUNT)) {
      const { apiKey } = await createTenant(env, name);
      const account = await fetchJson(`${relais.baseUrl}/v1/account`, apiKey);
      apiKeys.push(apiKey);
      tenantIds.push((account.body as { tenant_id: string }).tenant_id);
    }
  } finally {
    // SQLite is seeded with the server stopped (one writer); PostgreSQL alike, for the same timings.
    await relais.stop('SIGTERM');
  }
  const shape: HistoryShape = { n, start: Date.now() - SPAN_MS, spanMs: SPAN_MS, tenantIds };
  const t0 = performance.now();
  await seedHistory(
    {
      kind: loc.databaseUrl ? 'postgres' : 'sqlite',
      location: loc.databaseUrl ?? join(loc.dataDir, 'relais.db'),
    },
    shape,
    log,
  );
  const seeded = { shape, apiKeys, seedSeconds: Math.round((performance.now() - t0) / 100) / 10 };
  writeFileSync(join(loc.dataDir, 'history-bench.json'), JSON.stringify(seeded));
  return seeded;
}

class CheckFailed extends Error {}

function check(ok: boolean, what: string): void {
  if (!ok) throw new CheckFailed(what);
}

/** First row number created at or after a time (created_at is non-decreasing in the row number). */
function firstAtOrAfter(shape: HistoryShape, time: number): number {
  let lo = 0;
  let hi = shape.n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (createdAt(shape, mid) < time) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Messages the big tenant (index 0: 14 rows in 20) created in [from, to), from the shape alone. */
function bigTenantCount(shape: HistoryShape, from: number, to: number): number {
  let count = 0;
  for (let i = firstAtOrAfter(shape, from), end = firstAtOrAfter(shape, to); i < end; i++) {
    if (tenantIndex(i) === 0) count++;
  }
  return count;
}

interface Page {
  data: { id: string; to: string; status: string }[];
  next_cursor: string | null;
}

type Read = () => Promise<number>;

const INTAKE_PER_REQUEST = 500;

/** Batches of bulk messages for the big tenant, one request at a time (after 5 unmeasured). */
async function measureIntake(baseUrl: string, seeded: Seeded, requests: number): Promise<IntakeSummary> {
  const warmup = 5;
  const bodies = bulkBatchBodies(20_261_126, warmup + requests, INTAKE_PER_REQUEST);
  const url = `${baseUrl}/v1/messages/batch`;
  const ms: number[] = [];
  let t0 = 0;
  for (const [i, body] of bodies.entries()) {
    if (i === warmup) t0 = performance.now();
    const t = performance.now();
    const status = await postJson(agent, url, seeded.apiKeys[0]!, body);
    check(status === 202, `POST ${url}: ${status}`);
    if (i >= warmup) ms.push(performance.now() - t);
  }
  const seconds = (performance.now() - t0) / 1000;
  const round = (v: number) => Math.round(v * 100) / 100;
  return {
    requests,
    perRequest: INTAKE_PER_REQUEST,
    msgPerSec: Math.round((requests * INTAKE_PER_REQUEST) / seconds),
    p50: round(quantile(ms, 0.5)),
    p95: round(quantile(ms, 0.95)),
  };
}

async function measure(name: string, requests: number, warmup: number, read: Read): Promise<LatencySummary> {
  for (let i = 0; i < warmup; i++) await read();
  const ms: number[] = [];
  for (let i = 0; i < requests; i++) ms.push(await read());
  const round = (v: number) => Math.round(v * 100) / 100;
  return {
    name,
    requests,
    p50: round(quantile(ms, 0.5)),
    p95: round(quantile(ms, 0.95)),
    p99: round(quantile(ms, 0.99)),
    max: round(max(ms)),
  };
}

/** The six kinds of reads, each answer checked against the seeded shape. */
function reads(baseUrl: string, seeded: Seeded): { name: string; read: Read }[] {
  const { shape, apiKeys } = seeded;
  const rand = rng(20_261_125);
  const pick = (n: number) => Math.floor(rand() * n);
  const pageOf = async (tenant: number, cursor: string | null) => {
    const url = `${baseUrl}/v1/messages?limit=50${cursor ? `&cursor=${cursor}` : ''}`;
    const res = await fetchJson(url, apiKeys[tenant]!);
    const page = res.body as Page;
    check(
      res.status === 200 && page.data.length === 50,
      `GET ${url}: ${res.status}, ${page.data?.length} rows`,
    );
    return { page, ms: res.ms };
  };
  let firstTenant = 0;
  let cursor: string | null = null;
  let pagesLeft = 0;
  const firstFullDay = Math.ceil(shape.start / DAY_MS) * DAY_MS;
  const fullDays = Math.floor((shape.start + shape.spanMs - firstFullDay) / DAY_MS);
  return [
    {
      // The noise floor: the same HTTP round trip with no database work. On a busy machine every
      // series below pays what this one pays.
      name: CONTROL,
      read: async () => {
        const res = await fetchJson(`${baseUrl}/healthz`, '');
        check(res.status === 200, `GET /healthz: ${res.status}`);
        return res.ms;
      },
    },
    {
      name: 'list: first page (50), each tenant in turn',
      read: async () => (await pageOf(firstTenant++ % apiKeys.length, null)).ms,
    },
    {
      name: 'list: next pages by cursor (big tenant)',
      read: async () => {
        if (pagesLeft === 0) {
          cursor = (await pageOf(0, null)).page.next_cursor;
          pagesLeft = 4;
        }
        const { page, ms } = await pageOf(0, cursor);
        cursor = page.next_cursor;
        pagesLeft--;
        return ms;
      },
    },
    {
      // No index holds the common statuses (migration 011, and 013 on SQLite): the filter walks the
      // tenant's messages newest first until it has a page. Submitted is 4% of the seeded history.
      name: 'list by status (?status=submitted), each tenant in turn',
      read: async () => {
        const tenant = firstTenant++ % apiKeys.length;
        const res = await fetchJson(`${baseUrl}/v1/messages?status=submitted&limit=50`, apiKeys[tenant]!);
        const page = res.body as Page;
        check(
          res.status === 200 && page.data.length === 50 && page.data.every((m) => m.status === 'submitted'),
          `GET ?status=submitted: ${res.status}, ${page.data?.length} rows`,
        );
        return res.ms;
      },
    },
    {
      name: 'get by id (random across the history)',
      read: async () => {
        const i = pick(shape.n);
        const id = messageId(shape, i);
        const res = await fetchJson(`${baseUrl}/v1/messages/${id}`, apiKeys[tenantIndex(i)]!);
        check(res.status === 200 && (res.body as { id: string }).id === id, `GET ${id}: ${res.status}`);
        return res.ms;
      },
    },
    {
      name: 'list by phone number (?to=)',
      read: async () => {
        const i = pick(shape.n);
        const to = phoneOf(i);
        const res = await fetchJson(
          `${baseUrl}/v1/messages?to=${encodeURIComponent(to)}`,
          apiKeys[tenantIndex(i)]!,
        );
        const page = res.body as Page;
        check(
          res.status === 200 && page.data.length > 0 && page.data.every((m) => m.to === to),
          `GET ?to=${to}: ${res.status}, ${page.data?.length} rows`,
        );
        return res.ms;
      },
    },
    {
      name: 'stats: one day by hour and status (big tenant)',
      read: async () => {
        const from = firstFullDay + pick(fullDays) * DAY_MS;
        const day = (t: number) => new Date(t).toISOString().slice(0, 10);
        const url = `${baseUrl}/v1/stats?from=${day(from)}&to=${day(from + DAY_MS)}&group_by=hour,status`;
        const res = await fetchJson(url, apiKeys[0]!);
        const body = res.body as { data: unknown[]; totals: { accepted: number } };
        const expected = bigTenantCount(shape, from, from + DAY_MS);
        check(
          res.status === 200 && body.totals.accepted === expected && body.data.length > 24,
          `GET ${url}: ${res.status}, accepted ${body.totals?.accepted}, expected ${expected}`,
        );
        return res.ms;
      },
    },
  ];
}

export async function runHistoryBench(opts: HistoryBenchOptions): Promise<HistoryBenchResult> {
  const log = opts.log ?? ((line: string) => console.error(`[history ${opts.db}] ${line}`));
  const loc = location(opts);
  const marker = join(loc.dataDir, 'history-bench.json');
  let seeded: Seeded;
  let seededNow = false;
  if (opts.keep && existsSync(marker)) {
    seeded = JSON.parse(readFileSync(marker, 'utf8')) as Seeded;
    log(
      `reusing ${opts.messages.toLocaleString('en')} messages seeded in ${seeded.seedSeconds} s (${loc.dataDir})`,
    );
  } else {
    log(`seeding ${opts.messages.toLocaleString('en')} messages in ${loc.databaseUrl ?? loc.dataDir}`);
    seeded = await seed(loc, opts.messages, log);
    seededNow = true;
    log(`seeded in ${seeded.seedSeconds} s`);
  }
  const relais = await start(loc);
  const series: LatencySummary[] = [];
  let intake: IntakeSummary;
  const loadBefore = loadavg()[0]!;
  try {
    for (const { name, read } of reads(relais.baseUrl, seeded)) {
      const s = await measure(name, opts.requests, Math.min(50, opts.requests), read);
      log(`${name}: p50 ${s.p50} ms, p95 ${s.p95} ms, p99 ${s.p99} ms, max ${s.max} ms`);
      series.push(s);
    }
    // Last: it adds to the history the reads above were checked against.
    intake = await measureIntake(relais.baseUrl, seeded, opts.intakeRequests);
    log(
      `intake, ${intake.requests} batches of ${intake.perRequest}: ${intake.msgPerSec} msg/s, p50 ${intake.p50} ms, p95 ${intake.p95} ms per batch`,
    );
  } catch (err) {
    log(`--- relais output ---\n${relais.output()}`);
    throw err;
  } finally {
    await relais.stop('SIGTERM');
    agent.destroy();
    if (!opts.keep) await loc.drop();
  }
  return {
    db: opts.db,
    messages: opts.messages,
    seededNow,
    seedSeconds: seeded.seedSeconds,
    series,
    intake,
    targetP95Ms: TARGET_P95_MS,
    met: series.every((s) => s.name === CONTROL || s.p95 < TARGET_P95_MS),
    loadAverage: [Math.round(loadBefore * 10) / 10, Math.round(loadavg()[0]! * 10) / 10],
  };
}

const USAGE = `usage: node dist/bench/history-bench.js [--db sqlite|postgres] [--messages N] [--requests N]
       [--intake-requests N] [--keep]

  --db NAME       sqlite (default) or postgres (RELAIS_BENCH_PG_URL, default the local server)
  --messages N    history size (default 10,000,000)
  --requests N    measured requests per kind of read (default 1,000)
  --intake-requests N
                  measured batches of 500 bulk messages written on top of the history (default 200);
                  with --keep they stay in the kept database
  --keep          seed once into $TMPDIR/relais-history-bench/<db>-<N> (or database relais_history_<N>)
                  and reuse it on later runs with --keep`;

async function main(): Promise<void> {
  const values = benchArgs('history-bench', USAGE, {
    options: {
      db: { type: 'string', default: 'sqlite' },
      messages: { type: 'string', default: '10000000' },
      requests: { type: 'string', default: '1000' },
      'intake-requests': { type: 'string', default: '200' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const messages = Number(values.messages);
  const requests = Number(values.requests);
  const intakeRequests = Number(values['intake-requests']);
  const usage: (why: string) => never = (why) => usageError('history-bench', USAGE, why);
  if (values.db !== 'sqlite' && values.db !== 'postgres') usage('--db is sqlite or postgres');
  if (!Number.isInteger(messages) || messages < 1000)
    usage('--messages expects a whole number, 1,000 or more');
  if (!Number.isInteger(requests) || requests < 1) usage('--requests expects a positive whole number');
  if (!Number.isInteger(intakeRequests) || intakeRequests < 1)
    usage('--intake-requests expects a positive whole number');
  const result = await runHistoryBench({
    db: values.db,
    messages,
    requests,
    intakeRequests,
    keep: values.keep,
  });
  console.log(JSON.stringify(result, null, 2));
  if (!result.met) process.exitCode = 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(err instanceof CheckFailed ? `wrong answer: ${err.message}` : err);
    process.exit(1);
  });
}
