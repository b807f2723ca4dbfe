import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { benchArgs, usageError } from './args.js';
import { postgresUnreachable } from './databases.js';
import { destroyAgent, httpJson } from './e2e-child.js';
import { type Stack, startStack, waitBound } from './e2e-stack.js';
import { machineInfo } from './proc.js';

/** `log.max_total_bytes` of the soak: logs are bounded by design below it. */
const LOG_CAP_BYTES = 4 * 1024 * 1024;
/**
 * The soak: steady traffic for a long run with retention set to minutes, sampling the size of the
 * database, of the log files and of Relais's memory. What it shows: with retention and log rotation
 * on, nothing grows without bound — the series flatten once the retention horizon is reached.
 */

const USAGE = `usage: node dist/bench/soak.js [options]

  --db NAME                 sqlite, postgres or both (default both)
  --minutes N               length of each run (default 20)
  --rate N                  messages a second sent through the HTTP API (default 200)
  --retention-minutes N     retention.messages_days, in minutes (default 3)
  --sample-seconds N        time between two samples (default 30)
  --no-docs                 do not rewrite docs/benchmarks.md
  -h, --help                this help`;

export interface SoakSample {
  /** Seconds since traffic started. */
  t: number;
  sent: number;
  /** Rows in `messages` (what retention has not removed yet). */
  historyRows: number;
  dbBytes: number;
  logBytes: number;
  logFiles: number;
  rssBytes: number;
}

export interface SoakResult {
  kind: 'sqlite' | 'postgres';
  minutes: number;
  rate: number;
  retentionMinutes: number;
  samples: SoakSample[];
  /** Sizes at the end against the largest seen in the first half after warm-up (1.0 = flat). */
  growth: { db: number; log: number; rss: number; history: number };
  flat: boolean;
}

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const SOAK_START = '<!-- bench:soak:start -->';
const SOAK_END = '<!-- bench:soak:end -->';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function soakYaml(retentionMinutes: number): string {
  const days = retentionMinutes / 1440;
  return [
    'log:',
    '  level: info',
    '  file: logs/relais.log',
    `  max_file_bytes: ${1024 * 1024}`,
    '  max_files: 4',
    `  max_total_bytes: ${LOG_CAP_BYTES}`,
    'retention:',
    `  messages_days: ${days}`,
    `  rollups_days: ${days * 2}`,
    // PostgreSQL: partitions a tenth of the horizon wide, created a few ahead (not days of them).
    `  partition_hours: ${Math.max(1 / 60, retentionMinutes / 10 / 60)}`,
    `  partitions_ahead_days: ${(retentionMinutes / 1440) * 0.5}`,
    '',
  ].join('\n');
}

function dirBytes(dir: string): { bytes: number; files: number } {
  if (!existsSync(dir)) return { bytes: 0, files: 0 };
  let bytes = 0;
  let files = 0;
  for (const name of readdirSync(dir)) {
    const st = statSync(join(dir, name));
    if (st.isFile()) {
      bytes += st.size;
      files++;
    }
  }
  return { bytes, files };
}

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

async function databaseSize(stack: Stack): Promise<{ bytes: number; rows: number }> {
  if (stack.db.kind === 'sqlite') {
    const base = join(stack.db.dataDir, 'relais.db');
    let bytes = 0;
    for (const f of [base, `${base}-wal`, `${base}-shm`]) if (existsSync(f)) bytes += statSync(f).size;
    const rows = await stack.reader.outcome();
    return { bytes, rows: Object.values(rows.messages).reduce((a, b) => a + b, 0) };
  }
  const client = new pg.Client({ connectionString: stack.db.databaseUrl });
  await client.connect();
  try {
    const size = await client.query<{ b: string }>('select pg_database_size(current_database()) as b');
    const rows = await client.query<{ n: string }>('select count(*) as n from messages');
    return { bytes: Number(size.rows[0]!.b), rows: Number(rows.rows[0]!.n) };
  } finally {
    await client.end();
  }
}

/** Steady bulk traffic: `rate` messages a second in ten batches a second, to varied numbers. */
async function sendTraffic(stack: Stack, rate: number, until: () => boolean, counter: { sent: number }) {
  const perBatch = Math.max(1, Math.round(rate / 10));
  let seq = 0;
  const started = Date.now();
  let batches = 0;
  while (!until()) {
    const messages = Array.from({ length: perBatch }, () => {
      seq++;
      return {
        to: `+336${String(10_000_000 + (seq % 89_999_999)).padStart(8, '0')}`,
        from: 'Soak',
        text: `Soak message ${seq}: your order has shipped`,
        lane: 'bulk',
      };
    });
    const res = await httpJson(`${stack.relais.baseUrl}/v1/messages/batch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.apiKey}` },
      body: { messages },
    });
    const rejected = (res.body as { rejected?: number }).rejected;
    if (res.status !== 202 || rejected !== 0) {
      throw new Error(`batch refused: ${res.status} ${JSON.stringify(res.body).slice(0, 500)}`);
    }
    counter.sent += perBatch;
    batches++;
    // Paced on the schedule, not on the answers: a slow answer does not lower the offered rate.
    const due = started + batches * 100 - Date.now();
    if (due > 0) await sleep(due);
  }
}

export async function runSoak(
  kind: 'sqlite' | 'postgres',
  opts: { minutes: number; rate: number; retentionMinutes: number; sampleSeconds: number },
  log: (line: string) => void,
): Promise<SoakResult> {
  const stack = await startStack({
    kind,
    connector: { binds: 1, window: 50, tps: Math.max(100, opts.rate * 2) },
    webhookBatch: 50,
    receiptDelayMs: 100,
    extraYaml: soakYaml(opts.retentionMinutes),
    logLevel: 'info',
  });
  const samples: SoakSample[] = [];
  try {
    await waitBound(stack, 1);
    const endAt = Date.now() + opts.minutes * 60_000;
    const counter = { sent: 0 };
    const start = Date.now();
    const traffic = sendTraffic(stack, opts.rate, () => Date.now() >= endAt, counter);
    let failure: unknown = null;
    traffic.catch((err) => {
      failure = err;
    });
    for (;;) {
      const { bytes, rows } = await databaseSize(stack);
      const logs = dirBytes(join(stack.db.dataDir, 'logs'));
      const sample: SoakSample = {
        t: Math.round((Date.now() - start) / 1000),
        sent: counter.sent,
        historyRows: rows,
        dbBytes: bytes,
        logBytes: logs.bytes,
        logFiles: logs.files,
        rssBytes: rssBytes(stack.relais.pid),
      };
      samples.push(sample);
      log(
        `  ${kind} t=${sample.t}s sent=${sample.sent} history=${rows} db=${mib(bytes)} ` +
          `logs=${mib(logs.bytes)} (${logs.files} files) rss=${mib(sample.rssBytes)}`,
      );
      if (failure) throw failure;
      if (Date.now() >= endAt) break;
      await sleep(Math.min(opts.sampleSeconds * 1000, Math.max(0, endAt - Date.now())));
    }
    await traffic;
  } finally {
    await stack.teardown();
  }
  // Warm-up: two retention horizons (rows start leaving after one; housekeeping needs a pass or two).
  const warm = samples.filter((s) => s.t >= opts.retentionMinutes * 120);
  const half = warm.slice(0, Math.max(1, Math.floor(warm.length / 2)));
  const last = samples.at(-1)!;
  const ratio = (pick: (s: SoakSample) => number) =>
    half.length === 0 ? Number.NaN : pick(last) / Math.max(1, Math.max(...half.map(pick)));
  const growth = {
    db: ratio((s) => s.dbBytes),
    log: ratio((s) => s.logBytes),
    rss: ratio((s) => s.rssBytes),
    history: ratio((s) => s.historyRows),
  };
  // Flat: the end is no more than 25% above the largest value of the first half after warm-up —
  // or, for logs, never above their configured cap (a short run may end before they reach it).
  // …and the run meant something: messages did reach the history (and logs were written).
  const flowed = samples.some((s) => s.historyRows > 0) && samples.some((s) => s.logBytes > 0);
  const logsCapped = samples.every((s) => s.logBytes <= LOG_CAP_BYTES);
  const flat =
    flowed &&
    Object.entries(growth).every(
      ([what, g]) => (what === 'log' && logsCapped) || (Number.isFinite(g) && g <= 1.25),
    );
  return {
    kind,
    minutes: opts.minutes,
    rate: opts.rate,
    retentionMinutes: opts.retentionMinutes,
    samples,
    growth,
    flat,
  };
}

const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;

export function renderSoakSection(results: SoakResult[], command: string): string {
  const m = machineInfo();
  const lines = [
    SOAK_START,
    '## Soak: sizes stay flat with retention and log rotation',
    '',
    'Steady bulk traffic through the HTTP API to the simulator (separate processes), with `retention.messages_days` set',
    'to minutes, PostgreSQL partitions a tenth of that wide, and log files capped (`log.max_file_bytes` 1 MiB,',
    '`log.max_files` 4, `log.max_total_bytes` 4 MiB, level info). Sampled from outside Relais: database size (SQLite file',
    '+ WAL; PostgreSQL `pg_database_size`), rows in `messages`, log directory, Relais RSS.',
    '',
  ];
  for (const r of results) {
    lines.push(
      subsectionStart(r.kind),
      `### ${r.kind === 'sqlite' ? 'SQLite' : 'PostgreSQL'}: ${r.minutes} min at ${r.rate} msg/s, retention ${r.retentionMinutes} min — ${r.flat ? '**flat**' : '**GROWING**'}`,
      '',
      `Machine: ${m.cpu}, ${m.cores} cores, ${m.ramGiB} GiB, Node.js ${process.version}. Date: ${new Date().toISOString()}. Command: \`${command}\`.`,
      '',
      `End versus the largest value of the first half after warm-up (two horizons): database ×${r.growth.db.toFixed(2)}, logs ×${r.growth.log.toFixed(2)}, history rows ×${r.growth.history.toFixed(2)}, RSS ×${r.growth.rss.toFixed(2)}. Flat: none more than ×1.25, except logs, flat while they stay under their ${mib(LOG_CAP_BYTES)} cap.`,
      '',
      '| t (s) | sent | rows in history | database | logs (files) | Relais RSS |',
      '| ---: | ---: | ---: | ---: | ---: | ---: |',
      ...r.samples.map(
        (s) =>
          `| ${s.t} | ${s.sent.toLocaleString('en-US')} | ${s.historyRows.toLocaleString('en-US')} | ${mib(s.dbBytes)} | ${mib(s.logBytes)} (${s.logFiles}) | ${mib(s.rssBytes)} |`,
      ),
      '',
      subsectionEnd(r.kind),
    );
  }
  lines.push(SOAK_END);
  return lines.join('\n');
}

const subsectionStart = (kind: string) => `<!-- soak:${kind} -->`;
const subsectionEnd = (kind: string) => `<!-- /soak:${kind} -->`;

function subsectionOf(text: string, kind: string): string | null {
  const start = text.indexOf(subsectionStart(kind));
  const end = text.indexOf(subsectionEnd(kind));
  return start >= 0 && end > start ? text.slice(start, end + subsectionEnd(kind).length) : null;
}

/** Replaces the soak section; a database this run left out keeps its earlier results. */
export function writeSoakSection(file: string, fresh: string): void {
  const doc = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const start = doc.indexOf(SOAK_START);
  const end = doc.indexOf(SOAK_END);
  const old = start >= 0 && end > start ? doc.slice(start, end) : '';
  let section = fresh;
  for (const kind of ['sqlite', 'postgres']) {
    const kept = subsectionOf(old, kind);
    if (!kept || subsectionOf(fresh, kind)) continue;
    // SQLite's results stay first.
    const before =
      kind === 'sqlite' && section.includes(subsectionStart('postgres'))
        ? subsectionStart('postgres')
        : SOAK_END;
    section = section.replace(before, `${kept}\n\n${before}`);
  }
  const next =
    start >= 0 && end > start
      ? doc.slice(0, start) + section + doc.slice(end + SOAK_END.length)
      : `${doc.trimEnd()}\n\n${section}\n`;
  writeFileSync(file, next);
}

async function main(): Promise<void> {
  const values = benchArgs('soak', USAGE, {
    options: {
      db: { type: 'string', default: 'both' },
      minutes: { type: 'string', default: '20' },
      rate: { type: 'string', default: '200' },
      'retention-minutes': { type: 'string', default: '3' },
      'sample-seconds': { type: 'string', default: '30' },
      'no-docs': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const usage: (why: string) => never = (why) => usageError('soak', USAGE, why);
  if (!['sqlite', 'postgres', 'both'].includes(values.db)) usage(`unknown database "${values.db}"`);
  for (const name of ['minutes', 'rate', 'retention-minutes', 'sample-seconds'] as const) {
    if (!(Number(values[name]) > 0)) usage(`--${name} expects a positive number`);
  }
  const kinds: ('sqlite' | 'postgres')[] =
    values.db === 'both' ? ['sqlite', 'postgres'] : [values.db as 'sqlite' | 'postgres'];
  if (kinds.includes('postgres')) {
    const why = await postgresUnreachable();
    if (why) throw new Error(`PostgreSQL unreachable: ${why}`);
  }
  const opts = {
    minutes: Number(values.minutes),
    rate: Number(values.rate),
    retentionMinutes: Number(values['retention-minutes']),
    sampleSeconds: Number(values['sample-seconds']),
  };
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const results: SoakResult[] = [];
  for (const kind of kinds) {
    log(`soak on ${kind}: ${opts.minutes} min at ${opts.rate} msg/s, retention ${opts.retentionMinutes} min`);
    results.push(await runSoak(kind, opts, log));
  }
  const section = renderSoakSection(
    results,
    `node dist/bench/soak.js ${process.argv.slice(2).join(' ')}`.trim(),
  );
  log(section);
  if (!values['no-docs']) {
    writeSoakSection(join(REPO, 'docs', 'benchmarks.md'), section);
    log('docs/benchmarks.md updated (soak section)');
  }
  destroyAgent();
  if (!results.every((r) => r.flat)) process.exitCode = 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  main().catch((err) => {
    process.stderr.write(`bench:soak failed: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}
