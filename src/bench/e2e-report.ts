import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { NODE_FLAGS } from '../shared/node-flags.js';
import type { CpuUsage } from './e2e-cpu.js';
import type { LatencyResult, LatencySpec } from './e2e-latency.js';
import type { ThroughputResult, ThroughputSpec } from './e2e-throughput.js';
import type { MachineInfo } from './proc.js';

/** The carrier-path benchmark's section of docs/benchmarks.md, and its summary on stdout. */

export const E2E_START = '<!-- bench:e2e:start -->';
export const E2E_END = '<!-- bench:e2e:end -->';

/** "Other CPU" at or above this (% of one core) marks a run as disturbed by other work. */
const DISTURBED_PCT = 20;

export const TARGETS = {
  sqlite: 10_000,
  postgres: 6_000,
  urgentP99Ms: 25,
} as const;

export interface DatabaseE2e {
  kind: 'sqlite' | 'postgres';
  skipped?: string;
  where?: string;
  throughput: ThroughputResult[];
  latency: LatencyResult | null;
  /** Why a part failed, if it did. */
  errors: string[];
}

export interface E2eReport {
  date: Date;
  command: string;
  seconds: number;
  machine: MachineInfo;
  throughputSpecs: ThroughputSpec[];
  latencySpec: LatencySpec;
  configYaml: string;
  runs: DatabaseE2e[];
}

export const DB = { sqlite: 'SQLite', postgres: 'PostgreSQL' } as const;
export const n0 = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '–');
const ms = (v: number) => (!Number.isFinite(v) ? '–' : v < 10 ? `${v.toFixed(2)} ms` : `${v.toFixed(1)} ms`);
const sec = (v: number | null) => (v === null ? '–' : `${v.toFixed(1)} s`);
const pct = (v: number | null) => (v === null || !Number.isFinite(v) ? '–' : `${v.toFixed(0)}%`);
const mib = (v: number) => (Number.isFinite(v) ? `${(v / 2 ** 20).toFixed(0)} MiB` : '–');

export function webhookMode(batch: number): string {
  return batch > 0 ? `batched (${batch} per request)` : 'one event per request';
}

function table(header: string[], rows: string[][]): string {
  const align = header.map((_, i) => (i === 0 ? '---' : '---:'));
  return [header, align, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

export function throughputVerdict(r: ThroughputResult): { pass: boolean; text: string } {
  const target = TARGETS[r.kind];
  const pass = !r.capped && r.checks.every((c) => c.ok) && r.rate >= target;
  const rate = r.capped
    ? `${n0(r.rate)} msg/s reached, capped at ${r.atCap?.seconds.toFixed(0)} s`
    : `${n0(r.rate)} msg/s`;
  return { pass, text: `${rate} **${pass ? 'PASS' : 'MISS'}**` };
}

export function latencyVerdict(r: LatencyResult): { pass: boolean; text: string } {
  const pass = r.arrived === r.sent && r.p99 < TARGETS.urgentP99Ms;
  return { pass, text: `${ms(r.p99)} **${pass ? 'PASS' : 'MISS'}**` };
}

function cpuCells(c: CpuUsage): string[] {
  return [
    pct(c.relaisPct),
    pct(c.relaisMainWaitPct),
    mib(c.relaisPeakRssBytes),
    pct(c.simulatorPct),
    pct(c.receiverPct),
    pct(c.postgresPct),
    pct(c.otherPct),
  ];
}

export function targetsTable(runs: DatabaseE2e[], specs: ThroughputSpec[]): string {
  const measured = runs.filter((r) => !r.skipped);
  const header = ['Measure', 'Target', ...measured.map((r) => DB[r.kind])];
  const rows: string[][] = [];
  for (const spec of specs) {
    rows.push([
      `End to end, webhooks ${webhookMode(spec.webhookBatch)}`,
      `≥ ${n0(TARGETS.sqlite)} msg/s on SQLite, ≥ ${n0(TARGETS.postgres)} on PostgreSQL`,
      ...measured.map((run) => {
        const r = run.throughput.find((t) => t.spec.webhookBatch === spec.webhookBatch);
        return r ? throughputVerdict(r).text : 'not measured (failed)';
      }),
    ]);
  }
  rows.push([
    'Urgent (otp) p99 with the connector saturated by bulk',
    `< ${TARGETS.urgentP99Ms} ms`,
    ...measured.map((run) => (run.latency ? latencyVerdict(run.latency).text : 'not measured (failed)')),
  ]);
  for (const run of runs) {
    if (run.skipped)
      rows.push([`${DB[run.kind]}`, 'skipped', run.skipped, ...measured.slice(1).map(() => '')]);
  }
  return table(header, rows);
}

export function throughputTable(runs: DatabaseE2e[]): string {
  const header = [
    'Database',
    'webhooks',
    'messages',
    'msg/s end to end',
    'intake msg/s',
    'all submitted',
    'all delivered',
    'all webhooks answered',
    'webhook requests (connections)',
    'Relais CPU per msg',
    'Relais CPU',
    'Relais main thread waiting for a core',
    'Relais peak RSS',
    'simulator CPU',
    'receiver CPU',
    'PostgreSQL CPU',
    'other CPU',
    'checks',
  ];
  const rows: string[][] = [];
  for (const run of runs) {
    for (const r of run.throughput) {
      const cap = r.atCap;
      const N = r.spec.messages;
      rows.push([
        DB[r.kind],
        webhookMode(r.spec.webhookBatch),
        n0(N),
        `**${n0(r.rate)}**${r.rates ? ` (median of ${r.rates.length} runs: ${n0(Math.min(...r.rates))}–${n0(Math.max(...r.rates))})` : ''}` +
          `${cap ? ` (capped at ${cap.seconds.toFixed(0)} s)` : ''}`,
        n0(r.accepted / r.intakeSeconds),
        sec(r.submittedSeconds),
        r.deliveredSeconds === null && cap
          ? `> ${sec(cap.seconds)} (${n0(cap.delivered)} of ${n0(N)} by then)`
          : sec(r.deliveredSeconds),
        r.webhooksSeconds === null && cap
          ? `> ${sec(cap.seconds)} (${n0(cap.webhookEvents)} of ${n0(2 * N)} events by then)`
          : sec(r.webhooksSeconds),
        `${n0(r.receiver.requests)} (${n0(r.receiver.connections)})`,
        // Capped: part of the work was still to do, so a per-message cost would flatter.
        cap ? '–' : `${n0(r.cpu.relaisUsPerMsg)} µs`,
        ...cpuCells(r.cpu),
        r.checks.every((c) => c.ok)
          ? 'ok'
          : `**${r.checks
              .filter((c) => !c.ok)
              .map((c) => `FAILED: ${c.what}`)
              .join('; ')}**`,
      ]);
    }
  }
  return table(header, rows);
}

export function latencyTable(runs: DatabaseE2e[]): string {
  const header = [
    'Database',
    'otp sent / arrived',
    'p50',
    'p95',
    'p99',
    'max',
    'HTTP 202 p50 / p99',
    'bulk submits/s at the simulator (mean, min–max)',
    'bulk backlog left',
    'Relais CPU',
    'Relais main thread waiting for a core',
    'Relais peak RSS',
    'simulator CPU',
    'receiver CPU',
    'PostgreSQL CPU',
    'other CPU',
  ];
  const rows: string[][] = [];
  for (const run of runs) {
    const r = run.latency;
    if (!r) continue;
    const b = r.bulkPerSecond;
    rows.push([
      DB[r.kind],
      `${n0(r.sent)} / ${n0(r.arrived)}`,
      ms(r.p50),
      ms(r.p95),
      `**${ms(r.p99)}**`,
      ms(r.max),
      `${ms(r.http202p50)} / ${ms(r.http202p99)}`,
      `${n0(b.mean)} (${n0(b.min)}–${n0(b.max)}, ${b.seconds} s)`,
      n0(r.backlogLeft),
      ...cpuCells(r.cpu),
    ]);
  }
  return table(header, rows);
}

export function renderE2eSection(report: E2eReport): string {
  const m = report.machine;
  const t = report.throughputSpecs[0];
  const l = report.latencySpec;
  const out: string[] = [];
  out.push(E2E_START);
  out.push('## Carrier path: end to end through the simulator');
  out.push('');
  out.push(
    '_Generated by `npm run bench:e2e` (src/bench/e2e*.ts); rerun it to refresh this section, do not edit by hand._',
  );
  out.push('');
  out.push(`- Date: ${report.date.toISOString().replace(/\.\d+Z$/, 'Z')}`);
  out.push(`- Command: \`${report.command}\` (${(report.seconds / 60).toFixed(1)} min)`);
  out.push(
    `- Machine: ${m.cpu}, ${m.cores} cores, ${m.ramGiB} GiB RAM; ${m.os}; Node.js ${m.node}. Relais, the ` +
      'carrier simulator, the webhook receiver, the load generator and PostgreSQL all share these cores.',
  );
  for (const run of report.runs) {
    if (run.where) out.push(`- ${DB[run.kind]} data: ${run.where}; a new one for every run`);
  }
  out.push('');
  out.push('### Targets');
  out.push('');
  out.push(targetsTable(report.runs, report.throughputSpecs));
  out.push('');
  if (t) {
    out.push('### End-to-end throughput');
    out.push('');
    out.push(
      `${n0(t.messages)} \`bulk\` messages (one GSM-7 part each) through \`POST /v1/messages/batch\`, ` +
        `${n0(t.perRequest)} per request, ${t.concurrency} requests in flight. Timed from the first request ` +
        'until every message is `delivered` in the database **and** the receiver has answered every webhook ' +
        'event (two per message: `submitted` and `delivered`); "msg/s end to end" = messages / that time. ' +
        `A run still unfinished after ${t.budgetSeconds} s is stopped there and reports the rate it reached ` +
        '(webhook events answered per second ÷ 2), marked capped. The other columns are times from the first ' +
        'request: the last `submitted` and the last `delivered` are read from the database afterwards ' +
        '(`message_events.at`, `messages.updated_at`), the last webhook answer at the receiver.',
    );
    const repeated = report.runs.flatMap((run) => run.throughput).find((r) => r.rates);
    if (repeated?.rates) {
      out.push('');
      out.push(
        `Each configuration ran ${repeated.rates.length} times (\`--runs ${repeated.rates.length}\`): the row is the median run ` +
          "(its other columns are that run's), and the range of all runs is given beside it.",
      );
    }
    out.push('');
    out.push(throughputTable(report.runs));
    out.push('');
  }
  out.push('### Urgent-lane latency');
  out.push('');
  out.push(
    `The connector throttled to ${n0(l.connector.tps)} submits/s (\`tps: ${l.connector.tps}\`; the simulator ` +
      `itself is not throttled), ${n0(l.backlog)} \`bulk\` messages queued first through the batch endpoint, ` +
      `then ${n0(l.otp)} \`otp\` messages sent one by one (\`POST /v1/messages\`, each after the previous 202 ` +
      `and a ${l.gapMs} ms pause), each with a unique text. Latency = wall-clock arrival of its submit_sm at ` +
      'the simulator − the start of its HTTP request (the simulator process reports `performance.timeOrigin ' +
      '+ SubmitRecord.at`; the offset between its clock and ours is measured over HTTP beforehand, to within ' +
      `${report.runs.map((r) => r.latency?.clockErrorMs.toFixed(2)).find((v) => v) ?? '?'} ms). ` +
      'The bulk rate at the simulator during the measurement and the backlog still queued at its end show ' +
      `that the connector was saturated throughout. Webhooks stay on (batched, ${l.webhookBatch} per request).`,
  );
  out.push('');
  out.push(latencyTable(report.runs));
  const disturbed = report.runs.flatMap((run) => [
    ...run.throughput
      .filter((r) => r.cpu.otherPct >= DISTURBED_PCT)
      .map((r) => `${DB[run.kind]} ${webhookMode(r.spec.webhookBatch)}`),
    ...(run.latency && run.latency.cpu.otherPct >= DISTURBED_PCT ? [`${DB[run.kind]} latency`] : []),
  ]);
  if (disturbed.length > 0) {
    out.push('');
    out.push(
      `**Note:** other work used the machine during ${disturbed.join(', ')} ("other CPU" ≥ ${DISTURBED_PCT}% ` +
        'of a core): those runs had less CPU than this machine can give; "Relais CPU per msg" is less affected.',
    );
  }
  out.push('');
  out.push('### Setup');
  out.push('');
  out.push(
    '- Each run gets a new database, a new carrier simulator process, a new webhook receiver process and a ' +
      `new Relais process: \`node ${NODE_FLAGS.join(' ')} dist/main.js start\` (as \`npm start\` runs it) with ` +
      '`RELAIS_DATA_DIR`, `DATABASE_URL` (PostgreSQL), ' +
      '`RELAIS_HTTP_PORT`, `RELAIS_LOG_LEVEL=warn` and this configuration file (`RELAIS_CONFIG`); everything ' +
      'else is the default (SQLite in WAL mode with `synchronous = FULL`; a PostgreSQL pool of 10; webhook ' +
      'concurrency 32). The latency run uses the same file with `tps: ' +
      `${l.connector.tps}\`.`,
  );
  out.push('');
  out.push('```yaml');
  out.push(report.configYaml.trimEnd());
  out.push('```');
  out.push('');
  out.push(
    '- The tenant comes from `node dist/main.js tenant create --name Bench --webhook-url ' +
      'http://127.0.0.1:PORT/hook --webhook-batch N` (N = 0 for one event per request).',
  );
  out.push(
    `- Simulator (src/bench/e2e-sim.ts: the \`relais sim\` simulator with a small extra HTTP port): ` +
      `unthrottled, receipts ${l.receiptDelayMs} ms after each submit, \`record_submits\` off.`,
  );
  out.push(
    '- Webhook receiver (src/bench/e2e-hook.ts, its own process, node:http): answers 200 as soon as a body ' +
      'is read, then counts its events (each event of a batch) by distinct id and status. Each run also ' +
      'checks the database: every message `delivered`, and 2 webhook events `delivered` per message ' +
      '(`webhook_events` rows and events of the delivery log, `webhook_deliveries`).',
  );
  out.push(
    '- CPU is user + system time from `/proc/<pid>/stat` over the run (from the first request to the end), ' +
      'in % of one core; PostgreSQL: all its server processes; other: the rest of the machine (from ' +
      '`/proc/stat`, minus Relais, the simulator, the receiver, PostgreSQL and the benchmark process: kernel ' +
      'threads, and anyone else using the cores). "Relais CPU per msg" divides Relais CPU by the messages of ' +
      'the run (not shown for capped runs). "Relais main thread waiting for a core" is the share of the run ' +
      'its main thread, the throughput limit, was runnable but not on a core (`/proc/<pid>/task/<pid>/schedstat`): ' +
      'what the other threads and processes sharing the cores cost it. ' +
      'Peak RSS is `VmHWM` of the Relais process (fresh for each run). ' +
      'Before each run the benchmark waits, within a budget, for the machine to be idle.',
  );
  out.push(E2E_END);
  return out.join('\n');
}

const PREAMBLE = `# Benchmarks

Each benchmark below owns the section between its \`<!-- bench:NAME:start -->\` and
\`<!-- bench:NAME:end -->\` markers and rewrites it on every full run. Numbers are only comparable on the
same machine.
`;

/** Replaces the e2e section of the file (appending it when missing), leaving every other section alone. */
export function writeE2eSection(file: string, section: string): void {
  const current = existsSync(file) ? readFileSync(file, 'utf8') : PREAMBLE;
  const start = current.indexOf(E2E_START);
  const end = current.indexOf(E2E_END);
  const next =
    start >= 0 && end > start
      ? current.slice(0, start) + section + current.slice(end + E2E_END.length)
      : `${current.trimEnd()}\n\n${section}\n`;
  writeFileSync(file, next);
}
