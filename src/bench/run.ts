import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { benchArgs, usageError } from './args.js';
import { type BenchDatabase, postgresDatabase, postgresUnreachable, sqliteDatabase } from './databases.js';
import { messages, summarise } from './payloads.js';
import { machineInfo } from './proc.js';
import { formatProfile, profilesIn, summariseProfile } from './profile.js';
import { type DatabaseRun, renderSection, writeSection } from './report.js';
import { buildBodies, type Quiet, runScenario, type ScenarioResult, type ScenarioSpec } from './scenario.js';
import { createTenant, freePort, relaisEnv, startRelais } from './server.js';

/**
 * `npm run bench`: accepted messages per second over HTTP, one message per request and 1,000 per
 * batch, on SQLite and PostgreSQL. See docs/benchmarks.md for what is measured and how.
 */

const USAGE = `usage: npm run bench [-- options]

  --quick            small counts, one repeat: a smoke run (docs/benchmarks.md is left alone)
  --db NAME          sqlite or postgres (repeatable; default both)
  --profile          run Relais under node --cpu-prof and print its hot spots (docs left alone)
  --no-docs          do not rewrite docs/benchmarks.md
  --with-dispatch    keep the built-in carrier simulator on (the default configuration), so the
                     dispatcher sends messages to it while they are submitted; by default the
                     benchmark measures intake alone (a configuration file sets simulator.enabled:
                     never, and with no connector the dispatcher sends nothing)
  --keep             keep the benchmark databases and data dirs
  --quiet-wait SEC   before each repeat, wait up to this long in all (default 60) for the machine to
                     be idle, so that other work does not count against Relais; 0 to not wait
  -h, --help         this help

PostgreSQL: RELAIS_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/test) must allow CREATE
DATABASE; it is skipped when unreachable, unless CI=true.`;

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const DOCS = join(REPO, 'docs', 'benchmarks.md');
const SEED = 20_240_601;

function specs(quick: boolean): ScenarioSpec[] {
  return [
    {
      name: 'single',
      title: 'Single: one message per request',
      path: '/v1/messages',
      itemsPerRequest: 1,
      requests: quick ? 2_000 : 20_000,
      concurrency: 64,
      maxSeconds: quick ? 5 : 8,
      warmupRequests: quick ? 200 : 2_000,
      repeats: quick ? 1 : 3,
      spareRepeats: quick ? 0 : 2,
      distinctBodies: quick ? 1_000 : 5_000,
    },
    {
      name: 'batch',
      title: 'Batch: 1,000 messages per request',
      path: '/v1/messages/batch',
      itemsPerRequest: 1_000,
      requests: quick ? 20 : 200,
      concurrency: 4,
      maxSeconds: quick ? 5 : 10,
      warmupRequests: quick ? 2 : 10,
      repeats: quick ? 1 : 3,
      spareRepeats: quick ? 0 : 2,
      distinctBodies: quick ? 5 : 20,
    },
  ];
}

const log = (line: string) => process.stdout.write(`${line}\n`);

/** What to undo if the run is interrupted (Ctrl-C): the Relais child, the benchmark databases. */
const onInterrupt = new Set<() => Promise<unknown>>();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`bench: ${signal}, cleaning up\n`);
    void Promise.allSettled([...onInterrupt].map((undo) => undo())).then(() => process.exit(130));
  });
}

async function benchDatabase(
  db: BenchDatabase,
  scenarioSpecs: ScenarioSpec[],
  bodies: Map<string, Buffer[]>,
  options: { profileDir: string | null; quiet: Quiet; withDispatch: boolean },
): Promise<DatabaseRun> {
  const port = await freePort();
  let configFile: string | undefined;
  if (!options.withDispatch) {
    // Intake alone: no carrier, so the dispatcher claims nothing (see --with-dispatch).
    configFile = join(db.dataDir, 'bench-intake.yaml');
    writeFileSync(configFile, '# written by npm run bench: intake alone\nsimulator:\n  enabled: never\n');
  }
  const env = relaisEnv({ dataDir: db.dataDir, databaseUrl: db.databaseUrl, port, configFile });
  const nodeArgs = options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`] : [];
  const server = await startRelais(env, port, nodeArgs);
  const kill = () => server.stop('SIGKILL');
  onInterrupt.add(kill);
  const scenarios: ScenarioResult[] = [];
  try {
    const { apiKey } = await createTenant(env, 'Bench');
    log(`${db.kind}: relais pid ${server.pid} on ${server.baseUrl}, data in ${db.describe}`);
    for (const spec of scenarioSpecs) {
      scenarios.push(
        await runScenario(
          spec,
          { baseUrl: server.baseUrl, apiKey, pid: server.pid, postgres: db.kind === 'postgres' },
          bodies.get(spec.name)!,
          options.quiet,
          log,
        ),
      );
    }
  } catch (err) {
    const output = server.output();
    await server.stop('SIGKILL');
    onInterrupt.delete(kill);
    if (output) log(`--- relais output (last lines) ---\n${output}`);
    throw err;
  }
  // A crash right after the last answer: every acknowledged message must already be committed. With
  // --profile the shutdown is clean instead, so that V8 writes the profile.
  const stopped = await server.stop(options.profileDir ? 'SIGTERM' : 'SIGKILL');
  onInterrupt.delete(kill);
  if (options.profileDir && stopped !== 0) {
    log(`${db.kind}: WARNING: relais exited with ${stopped} on SIGTERM (a clean shutdown exits with 0)`);
  }
  const accepted = scenarios.reduce((sum, s) => sum + s.acceptedTotal, 0);
  // Every message, whatever the dispatcher has done with it since, is still one row of `messages`.
  const statuses = await db.messageStatuses();
  const rows = Object.values(statuses).reduce((a, b) => a + b, 0);
  const ok = rows === accepted;
  log(
    `${db.kind}: ${accepted.toLocaleString('en-US')} accepted, ${rows.toLocaleString('en-US')} rows in messages ` +
      `${ok ? 'ok' : 'MISMATCH'} (by status: ${JSON.stringify(statuses)})`,
  );
  if (server.linesWritten() > 0)
    log(`${db.kind}: relais logged ${server.linesWritten()} lines:\n${server.output()}`);
  return {
    kind: db.kind,
    where: await db.settings(),
    scenarios,
    durability: { accepted, rows, statuses, ok },
    serverLogLines: server.linesWritten(),
  };
}

async function main(): Promise<number> {
  const values = benchArgs('bench', USAGE, {
    options: {
      quick: { type: 'boolean', default: false },
      db: { type: 'string', multiple: true },
      profile: { type: 'boolean', default: false },
      'no-docs': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      'with-dispatch': { type: 'boolean', default: false },
      'quiet-wait': { type: 'string', default: '60' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const kinds = (values.db ?? ['sqlite', 'postgres']).flatMap((d) => d.split(','));
  for (const k of kinds) {
    if (k !== 'sqlite' && k !== 'postgres') usageError('bench', USAGE, `unknown database "${k}"`);
  }
  const started = performance.now();
  const date = new Date();
  const scenarioSpecs = specs(values.quick);
  const machine = machineInfo();
  log(
    `relais intake benchmark${values.quick ? ' (quick)' : ''}: ${machine.cpu}, ${machine.cores} cores, ` +
      `${machine.ramGiB} GiB, Node.js ${machine.node}`,
  );

  const bodies = new Map(scenarioSpecs.map((s, i) => [s.name, buildBodies(s, SEED + i)]));
  const mix = summarise(messages(SEED, 5_000));
  const quietWait = Number(values['quiet-wait']);
  if (!Number.isFinite(quietWait) || quietWait < 0) {
    process.stderr.write(`bench: --quiet-wait expects seconds, not "${values['quiet-wait']}"\n`);
    return 2;
  }
  const quiet: Quiet = { budgetMs: (values.quick ? Math.min(quietWait, 10) : quietWait) * 1000 };
  const profileDir = values.profile ? mkdtempSync(join(tmpdir(), 'relais-bench-prof-')) : null;

  const runs: DatabaseRun[] = [];
  let failed = false;
  for (const kind of ['sqlite', 'postgres'] as const) {
    if (!kinds.includes(kind)) continue;
    if (kind === 'postgres') {
      const why = await postgresUnreachable();
      if (why) {
        if (process.env.CI === 'true') {
          process.stderr.write(`bench: PostgreSQL is unreachable (${why}) and CI=true: failing\n`);
          return 1;
        }
        log(`postgres: SKIPPED, PostgreSQL is unreachable (${why}); set RELAIS_BENCH_PG_URL`);
        runs.push({ kind, skipped: 'PostgreSQL unreachable', scenarios: [] });
        continue;
      }
    }
    const db = kind === 'sqlite' ? sqliteDatabase() : await postgresDatabase();
    const drop = () => db.drop();
    if (!values.keep) onInterrupt.add(drop);
    try {
      const run = await benchDatabase(db, scenarioSpecs, bodies, {
        profileDir: profileDir && join(profileDir, kind),
        quiet,
        withDispatch: values['with-dispatch'],
      });
      runs.push(run);
      if (!run.durability?.ok) failed = true;
    } catch (err) {
      process.stderr.write(`bench: ${kind} FAILED: ${(err as Error).stack ?? String(err)}\n`);
      failed = true;
    } finally {
      onInterrupt.delete(drop);
      if (values.keep) log(`${kind}: kept ${db.describe}`);
      else await db.drop();
    }
  }

  const section = renderSection({
    date,
    command: ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(
      ' ',
    ),
    withDispatch: values['with-dispatch'],
    machine,
    mix,
    specs: scenarioSpecs,
    runs,
    seconds: (performance.now() - started) / 1000,
  });
  log('');
  log(section);

  if (profileDir) {
    log(`\nCPU profiles of Relais in ${profileDir} (open them in Chrome DevTools or speedscope)`);
    for (const kind of kinds) {
      const dir = join(profileDir, kind);
      for (const file of existsSync(dir) ? profilesIn(dir) : []) {
        log(`\n${kind}: ${formatProfile(summariseProfile(file))}`);
      }
    }
  }
  if (failed) {
    process.stderr.write('bench: FAILED (see above); docs/benchmarks.md left unchanged\n');
    return 1;
  }
  if (values.quick || values.profile || values['no-docs']) {
    log('\n(docs/benchmarks.md left unchanged: only a full run without --profile rewrites it)');
  } else {
    writeSection(DOCS, section);
    log(`\nwrote ${DOCS}`);
  }
  return 0;
}

process.exitCode = await main();
