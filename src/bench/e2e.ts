import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { benchArgs, usageError } from './args.js';
import { postgresUnreachable } from './databases.js';
import { destroyAgent } from './e2e-child.js';
import { type LatencySpec, runLatency } from './e2e-latency.js';
import { type Comparison, comparisonTable, medianRun } from './e2e-median.js';
import { waitForOtherBenchmarks } from './e2e-others.js';
import { bulkBatchBodies } from './e2e-payloads.js';
import { formatInclusive, inclusiveProfile } from './e2e-profile.js';
import {
  type DatabaseE2e,
  latencyTable,
  latencyVerdict,
  renderE2eSection,
  TARGETS,
  targetsTable,
  throughputTable,
  throughputVerdict,
  webhookMode,
  writeE2eSection,
} from './e2e-report.js';
import { relaisConfigYaml, type Stack } from './e2e-stack.js';
import { runThroughput, type ThroughputResult, type ThroughputSpec } from './e2e-throughput.js';
import { machineInfo, waitForQuiet } from './proc.js';
import { formatProfile, profilesIn, summariseProfile } from './profile.js';
import { formatStatementTimes } from './statement-times.js';

/**
 * `npm run bench:e2e`: the carrier path end to end — HTTP intake, dispatch over SMPP to a carrier
 * simulator in its own process, receipts, and webhooks to a receiver in its own process — on SQLite and
 * PostgreSQL; plus the latency of urgent messages behind a saturated connector. Writes its section of
 * docs/benchmarks.md (see e2e-report.ts).
 */

const USAGE = `usage: npm run bench:e2e [-- options]

  --quick            ${'20,000'} messages per throughput run and a smaller latency run: a smoke run
                     (docs/benchmarks.md is left alone)
  --db NAME          sqlite or postgres (repeatable; default both)
  --only NAME        batched, single or latency (repeatable; default all three): the runs to do.
                     batched / single: throughput with webhooks batched by 100 / one event per request
  --messages N       messages per throughput run (a multiple of 1,000; default 200,000)
  --budget SEC       stop a throughput run unfinished after this long and report the rate reached
                     (default 120; 60 with --quick)
  --runs N           run each throughput measurement N times and report the median run, with the
                     range (default 1); on a noisy machine single runs vary by ±15%
  --baseline DIR     another checkout (built: DIR/dist/main.js) run as a baseline: each throughput
                     run of this checkout is paired with one of DIR, interleaved, and the medians are
                     compared at the end (docs left alone)
  --profile          run Relais under node --cpu-prof and print its hot spots (docs left alone)
  --statements       time Relais's SQLite statements and transactions, and print where the time
                     goes (statement-timer.ts; SQLite runs only; docs left alone)
  --no-docs          do not rewrite docs/benchmarks.md
  --keep             keep the benchmark databases and data dirs
  --quiet-wait SEC   before each run, wait up to this long in all (default 60) for the machine to be
                     idle; 0 to not wait
  -h, --help         this help

Before starting, it waits (up to 30 min) for any other benchmark (dist/bench/run.js or e2e.js) to end.
PostgreSQL: RELAIS_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/test) must allow CREATE
DATABASE; it is skipped when unreachable, unless CI=true.`;

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const DOCS = join(REPO, 'docs', 'benchmarks.md');
const SEED = 20_240_777;
const CONNECTOR = { binds: 2, window: 200, tps: 50_000 };
const RECEIPT_DELAY_MS = 100;

const log = (line: string) => process.stdout.write(`${line}\n`);

const active = new Set<Stack>();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`bench:e2e: ${signal}, cleaning up\n`);
    void Promise.allSettled([...active].map((s) => s.teardown())).then(() => process.exit(130));
  });
}

async function main(): Promise<number> {
  const values = benchArgs('bench:e2e', USAGE, {
    options: {
      quick: { type: 'boolean', default: false },
      db: { type: 'string', multiple: true },
      only: { type: 'string', multiple: true },
      messages: { type: 'string' },
      budget: { type: 'string' },
      runs: { type: 'string', default: '1' },
      baseline: { type: 'string' },
      profile: { type: 'boolean', default: false },
      statements: { type: 'boolean', default: false },
      'no-docs': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      'quiet-wait': { type: 'string', default: '60' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const usage: (why: string) => never = (why) => usageError('bench:e2e', USAGE, why);
  const kinds = (values.db ?? ['sqlite', 'postgres']).flatMap((d) => d.split(','));
  if (kinds.some((k) => k !== 'sqlite' && k !== 'postgres')) return usage(`unknown database in ${kinds}`);
  const only = (values.only ?? ['batched', 'single', 'latency']).flatMap((d) => d.split(','));
  if (only.some((o) => !['batched', 'single', 'latency'].includes(o))) return usage(`unknown run in ${only}`);
  const quick = values.quick;
  const messages = values.messages ? Number(values.messages) : quick ? 20_000 : 200_000;
  if (!Number.isInteger(messages) || messages <= 0 || messages % 1000 !== 0) {
    return usage('--messages must be a positive multiple of 1,000');
  }
  const budgetSeconds = values.budget ? Number(values.budget) : quick ? 60 : 120;
  if (!Number.isFinite(budgetSeconds) || budgetSeconds <= 0) return usage('--budget expects seconds');
  const repeats = Number(values.runs);
  if (!Number.isInteger(repeats) || repeats < 1) return usage('--runs expects a positive whole number');
  const baselineMain = values.baseline ? resolve(values.baseline, 'dist', 'main.js') : null;
  if (baselineMain && !existsSync(baselineMain)) {
    return usage(`--baseline: ${baselineMain} does not exist (build that checkout first: npm run build)`);
  }
  const quietWait = Number(values['quiet-wait']);
  if (!Number.isFinite(quietWait) || quietWait < 0) return usage('--quiet-wait expects seconds');
  let quietBudgetMs = (quick ? Math.min(quietWait, 10) : quietWait) * 1000;

  await waitForOtherBenchmarks(30 * 60_000, log);

  const started = performance.now();
  const date = new Date();
  const machine = machineInfo();
  log(
    `relais carrier-path benchmark${quick ? ' (quick)' : ''}: ${machine.cpu}, ${machine.cores} cores, ` +
      `${machine.ramGiB} GiB, Node.js ${machine.node}`,
  );

  const throughputSpecs: ThroughputSpec[] = [
    { webhookBatch: 100, name: 'batched' },
    { webhookBatch: 0, name: 'single' },
  ]
    .filter((s) => only.includes(s.name))
    .map(({ webhookBatch }) => ({
      messages,
      perRequest: 1000,
      concurrency: 4,
      webhookBatch,
      budgetSeconds,
      receiptDelayMs: RECEIPT_DELAY_MS,
      connector: CONNECTOR,
    }));
  const latencySpec: LatencySpec = {
    backlog: quick ? 20_000 : 100_000,
    otp: quick ? 200 : 1000,
    gapMs: 10,
    receiptDelayMs: RECEIPT_DELAY_MS,
    webhookBatch: 100,
    connector: { ...CONNECTOR, tps: 1000 },
  };
  const bodies = bulkBatchBodies(SEED, 20, 1000);
  // Profiles and statement times of this checkout's runs: one directory per run.
  const diagnosticsRoot =
    values.profile || values.statements ? mkdtempSync(join(tmpdir(), 'relais-e2e-prof-')) : null;
  const diagnostics = (name: string | null) => {
    if (!diagnosticsRoot || name === null) return { profileDir: null, statementsDir: null };
    const dir = join(diagnosticsRoot, name);
    mkdirSync(dir, { recursive: true });
    return { profileDir: values.profile ? dir : null, statementsDir: values.statements ? dir : null };
  };

  const quiet = async () => {
    if (quietBudgetMs <= 0) return;
    const { waitedMs, busyPct } = await waitForQuiet(quietBudgetMs);
    quietBudgetMs -= waitedMs;
    if (busyPct >= 25) log(`  (the machine is busy: ${busyPct.toFixed(0)}% of a core used by other work)`);
  };
  const onStack = (s: Stack) => active.add(s);

  const runs: DatabaseE2e[] = [];
  const comparisons: Comparison[] = [];
  let failed = false;
  for (const kind of ['sqlite', 'postgres'] as const) {
    if (!kinds.includes(kind)) continue;
    if (kind === 'postgres') {
      const why = await postgresUnreachable();
      if (why) {
        if (process.env.CI === 'true') {
          process.stderr.write(`bench:e2e: PostgreSQL is unreachable (${why}) and CI=true: failing\n`);
          return 1;
        }
        log(`postgres: SKIPPED, PostgreSQL is unreachable (${why}); set RELAIS_BENCH_PG_URL`);
        runs.push({ kind, skipped: 'PostgreSQL unreachable', throughput: [], latency: null, errors: [] });
        continue;
      }
    }
    const run: DatabaseE2e = { kind, throughput: [], latency: null, errors: [] };
    runs.push(run);
    for (const spec of throughputSpecs) {
      const mode = webhookMode(spec.webhookBatch);
      const results = { mine: [] as ThroughputResult[], baseline: [] as ThroughputResult[] };
      for (let i = 1; i <= repeats; i++) {
        // Interleaved (baseline, then this checkout) so that a machine's drift hits both alike.
        for (const side of baselineMain ? (['baseline', 'mine'] as const) : (['mine'] as const)) {
          await quiet();
          const which = `${repeats > 1 ? `, run ${i} of ${repeats}` : ''}${baselineMain ? `, ${side === 'mine' ? 'this checkout' : 'baseline'}` : ''}`;
          log(
            `${kind}: throughput, ${spec.messages.toLocaleString('en-US')} messages, webhooks ${mode}${which}`,
          );
          const dirs = diagnostics(
            side === 'mine'
              ? `${kind}-${spec.webhookBatch > 0 ? 'batched' : 'single'}${repeats > 1 ? `-${i}` : ''}`
              : null,
          );
          try {
            const r = await runThroughput(kind, spec, bodies, {
              ...dirs,
              keep: values.keep,
              log,
              onStack,
              ...(side === 'baseline' && baselineMain ? { main: baselineMain } : {}),
            });
            results[side].push(r);
            run.where ??= r.where;
            log(`  ${kind} ${mode}: ${runSummary(r)}`);
            if (!r.checks.every((c) => c.ok)) failed = true;
          } catch (err) {
            failed = true;
            run.errors.push(`throughput (${mode}${which}): ${(err as Error).message}`);
            process.stderr.write(
              `bench:e2e: ${kind} throughput FAILED: ${(err as Error).stack ?? String(err)}\n`,
            );
          }
        }
      }
      const mine = medianRun(results.mine);
      if (mine) run.throughput.push(mine);
      const baseline = medianRun(results.baseline);
      if (baseline && mine) comparisons.push({ kind, mode, baseline, mine });
    }
    if (only.includes('latency')) {
      await quiet();
      log(
        `${kind}: urgent-lane latency, ${latencySpec.otp} otp behind ${latencySpec.backlog.toLocaleString('en-US')} bulk at ${latencySpec.connector.tps} TPS`,
      );
      try {
        const r = await runLatency(kind, latencySpec, bodies, {
          ...diagnostics(`${kind}-latency`),
          keep: values.keep,
          log,
          onStack,
        });
        run.latency = r;
        run.where ??= r.where;
        log(
          `  ${kind} latency: ${r.arrived}/${r.sent} arrived, p50 ${r.p50.toFixed(2)} ms, p95 ${r.p95.toFixed(2)} ms, ` +
            `p99 ${r.p99.toFixed(2)} ms, max ${r.max.toFixed(2)} ms (${latencyVerdict(r).pass ? 'PASS' : 'MISS'}); ` +
            `bulk ${Math.round(r.bulkPerSecond.mean)}/s (min ${r.bulkPerSecond.min}) at the simulator, ` +
            `${r.backlogLeft.toLocaleString('en-US')} bulk still queued; relais CPU ${r.cpu.relaisPct.toFixed(0)}%, ` +
            `main thread waiting for a core ${r.cpu.relaisMainWaitPct.toFixed(0)}%`,
        );
        if (r.arrived !== r.sent) failed = true;
      } catch (err) {
        failed = true;
        run.errors.push(`latency: ${(err as Error).message}`);
        process.stderr.write(`bench:e2e: ${kind} latency FAILED: ${(err as Error).stack ?? String(err)}\n`);
      }
    }
  }
  destroyAgent();

  const section = renderE2eSection({
    date,
    command: ['npm run bench:e2e', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(
      ' ',
    ),
    seconds: (performance.now() - started) / 1000,
    machine,
    throughputSpecs,
    latencySpec,
    configYaml: relaisConfigYaml(2775, CONNECTOR).replace('port: 2775', 'port: SIMULATOR_PORT'),
    runs,
  });
  log('');
  log(targetsTable(runs, throughputSpecs));
  log('');
  log(throughputTable(runs));
  log('');
  log(latencyTable(runs));
  if (comparisons.length > 0) {
    log('');
    log(comparisonTable(comparisons));
  }
  log(
    `\ntargets: ${TARGETS.sqlite} msg/s SQLite, ${TARGETS.postgres} msg/s PostgreSQL, urgent p99 < ${TARGETS.urgentP99Ms} ms`,
  );

  if (diagnosticsRoot) {
    log(`\nProfiles and statement times of Relais in ${diagnosticsRoot} (profiles open in Chrome DevTools)`);
    for (const run of runs) {
      const diagnosed = [
        ...run.throughput.map((r) => ({
          r,
          what: `webhooks ${webhookMode(r.spec.webhookBatch)}`,
          messages: r.spec.messages,
        })),
        ...(run.latency
          ? [
              {
                r: run.latency,
                what: 'urgent-lane latency run',
                messages: latencySpec.backlog + latencySpec.otp,
              },
            ]
          : []),
      ];
      for (const { r, what, messages } of diagnosed) {
        if (r.profileDir && existsSync(r.profileDir)) {
          for (const file of profilesIn(r.profileDir)) {
            log(`\n=== ${run.kind}, ${what} ===`);
            log(formatProfile(summariseProfile(file, 30)));
            log(formatInclusive(inclusiveProfile(file)));
          }
        }
        if (r.statementsDir && existsSync(r.statementsDir)) {
          log(`\n=== ${run.kind}, ${what}: SQLite statements ===`);
          log(
            formatStatementTimes(r.statementsDir, messages) ||
              '(none: the statements are timed on SQLite only)',
          );
        }
      }
    }
  }
  for (const run of runs) for (const e of run.errors) log(`${run.kind}: ERROR ${e.split('\n', 1)[0]}`);
  if (failed) {
    process.stderr.write('bench:e2e: FAILED (see above); docs/benchmarks.md left unchanged\n');
    return 1;
  }
  if (quick || values.profile || values.statements || values['no-docs'] || baselineMain) {
    log(
      '\n(docs/benchmarks.md left unchanged: only a full run without --profile, --statements or --baseline rewrites it)',
    );
  } else {
    writeE2eSection(DOCS, section);
    log(`\nwrote ${DOCS}`);
  }
  return 0;
}

/** One run's line of the log. */
function runSummary(r: ThroughputResult): string {
  return (
    `${throughputVerdict(r).text.replaceAll('**', '')}; ` +
    `intake ${Math.round(r.accepted / r.intakeSeconds).toLocaleString('en-US')} msg/s, ` +
    `all submitted ${r.submittedSeconds?.toFixed(1) ?? '–'} s, all delivered ${r.deliveredSeconds?.toFixed(1) ?? '–'} s, ` +
    `webhooks ${r.webhooksSeconds?.toFixed(1) ?? '–'} s; relais CPU ${r.cpu.relaisPct.toFixed(0)}%, ` +
    `${r.cpu.relaisUsPerMsg.toFixed(0)} µs/msg, main thread waiting for a core ${r.cpu.relaisMainWaitPct.toFixed(0)}%, ` +
    `peak RSS ${(r.cpu.relaisPeakRssBytes / 2 ** 20).toFixed(0)} MiB; ` +
    `simulator CPU ${r.cpu.simulatorPct.toFixed(0)}%; checks ${r.checks.map((c) => `${c.what}: ${c.ok ? 'ok' : 'FAILED'}`).join(', ')}`
  );
}

process.exitCode = await main();
