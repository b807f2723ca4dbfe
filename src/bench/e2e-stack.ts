import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { SimulatorStats } from '../simulator/stats.js';
import { type BenchDatabase, postgresDatabase, sqliteDatabase } from './databases.js';
import { type Child, httpJson, startChild } from './e2e-child.js';
import { type DbReader, openReader } from './e2e-db.js';
import { freePort, type RelaisProcess, relaisEnv, startRelais } from './server.js';

/**
 * Everything one measured run needs, fresh each time: a new database, the carrier simulator and the
 * webhook receiver in their own processes, and Relais (`node dist/main.js start`) configured through a
 * file (RELAIS_CONFIG) with one connector to the simulator, plus a tenant made with the CLI.
 */

const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));
const execFileP = promisify(execFile);

export interface SimReady {
  port: number;
  controlPort: number;
  benchPort: number;
}

export interface HookReady {
  port: number;
}

export interface ConnectorSettings {
  binds: number;
  window: number;
  tps: number;
}

/** GET /count of the webhook receiver (src/bench/e2e-hook.ts). */
export interface HookCount {
  requests: number;
  connections: number;
  events: number;
  unique: number;
  duplicates: number;
  malformed: number;
  byStatus: Record<string, number>;
  firstAt: number | null;
  lastUniqueAt: number | null;
}

export const simStats = async (stack: Stack) =>
  (await httpJson<SimulatorStats>(`${stack.simUrl}/stats`)).body;
export const hookCount = async (stack: Stack) => (await httpJson<HookCount>(`${stack.hookUrl}/count`)).body;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until every bind of the connector is up, so that the run does not time Relais's connecting. */
export async function waitBound(stack: Stack, binds: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const stats = await simStats(stack);
    if (stats.boundSessions >= binds) return;
    if (Date.now() > deadline) {
      throw new Error(
        `relais bound ${stats.boundSessions} of ${binds} sessions to the simulator within 15 s\n` +
          `--- relais output ---\n${stack.relais.output()}`,
      );
    }
    await sleep(100);
  }
}

export interface StackOptions {
  kind: 'sqlite' | 'postgres';
  connector: ConnectorSettings;
  /** Tenant's webhook_batch_size: 0 = one event per request. */
  webhookBatch: number;
  receiptDelayMs: number;
  /** Extra node flags for Relais (--cpu-prof…). */
  nodeArgs?: string[];
  /** Extra environment for Relais. */
  env?: NodeJS.ProcessEnv;
  keep?: boolean;
  /** YAML appended to the configuration file (top-level sections not written by the stack). */
  extraYaml?: string;
  /** Relais's log level (default warn). */
  logLevel?: string;
  /** The Relais entry point (default this checkout's dist/main.js; --baseline gives another's). */
  main?: string;
}

export interface Stack {
  db: BenchDatabase;
  sim: Child<SimReady>;
  hook: Child<HookReady>;
  relais: RelaisProcess;
  reader: DbReader;
  apiKey: string;
  tenantId: string;
  /** The configuration file given to Relais, as written. */
  configYaml: string;
  simUrl: string;
  hookUrl: string;
  /** Stops everything (Relais with SIGTERM, so a --cpu-prof profile gets written) and drops the database. */
  teardown(): Promise<void>;
}

export function relaisConfigYaml(simPort: number, c: ConnectorSettings): string {
  return [
    '# written by the carrier-path benchmark (src/bench/e2e.ts)',
    'connectors:',
    '  - name: sim',
    '    host: 127.0.0.1',
    `    port: ${simPort}`,
    '    system_id: relais',
    '    password: bench',
    `    binds: ${c.binds}`,
    `    window: ${c.window}`,
    `    tps: ${c.tps}`,
    'webhooks:',
    '  allow_private_targets: true',
    'simulator:',
    '  enabled: never',
    '',
  ].join('\n');
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const db = options.kind === 'sqlite' ? sqliteDatabase() : await postgresDatabase();
  const undo: (() => Promise<unknown>)[] = [];
  const teardown = async () => {
    for (const step of undo.reverse()) {
      try {
        await step();
      } catch (err) {
        process.stderr.write(`bench:e2e: cleanup step failed: ${(err as Error).message}\n`);
      }
    }
    undo.length = 0;
  };
  if (!options.keep) undo.push(() => db.drop());
  try {
    const sim = await startChild<SimReady>('./e2e-sim.js', {
      options: {
        port: 0,
        receipt_delay_ms: options.receiptDelayMs,
        record_submits: false,
      },
    });
    undo.push(() => sim.stop());
    const hook = await startChild<HookReady>('./e2e-hook.js', {});
    undo.push(() => hook.stop());

    const configYaml = relaisConfigYaml(sim.ready.port, options.connector) + (options.extraYaml ?? '');
    const configFile = join(db.dataDir, 'bench-e2e.yaml');
    writeFileSync(configFile, configYaml);
    const port = await freePort();
    const env = relaisEnv({
      dataDir: db.dataDir,
      databaseUrl: db.databaseUrl,
      port,
      configFile,
      ...(options.logLevel ? { logLevel: options.logLevel } : {}),
    });
    Object.assign(env, options.env);

    // The tenant first (it migrates the fresh database), so Relais starts with its webhook URL known.
    const hookUrl = `http://127.0.0.1:${hook.ready.port}/hook`;
    const main = options.main ?? MAIN;
    const { stdout } = await execFileP(
      process.execPath,
      [
        main,
        'tenant',
        'create',
        '--name',
        'Bench',
        '--webhook-url',
        hookUrl,
        '--webhook-batch',
        String(options.webhookBatch),
      ],
      { env },
    );
    const created = JSON.parse(stdout) as { api_key?: unknown; tenant_id?: unknown };
    if (typeof created.api_key !== 'string' || typeof created.tenant_id !== 'string') {
      throw new Error(`tenant create printed no api_key / tenant_id: ${stdout}`);
    }

    const relais = await startRelais(env, port, options.nodeArgs ?? [], main);
    undo.push(async () => {
      const code = await relais.stop('SIGTERM');
      if (code !== 0) process.stderr.write(`bench:e2e: relais exited with ${code} on SIGTERM\n`);
    });
    const reader = await openReader(db);
    undo.push(() => reader.close());
    return {
      db,
      sim,
      hook,
      relais,
      reader,
      apiKey: created.api_key,
      tenantId: created.tenant_id,
      configYaml,
      simUrl: `http://127.0.0.1:${sim.ready.benchPort}`,
      hookUrl: `http://127.0.0.1:${hook.ready.port}`,
      teardown,
    };
  } catch (err) {
    await teardown();
    throw err;
  }
}

/** What a scenario is told: where to profile, whether to keep the data, how to log, who tracks the stack. */
export interface ScenarioOptions {
  profileDir: string | null;
  /** Where Relais writes its SQLite statement times (statement-timer.ts); null: not timed. */
  statementsDir?: string | null;
  keep: boolean;
  log: (line: string) => void;
  onStack: (s: Stack) => void;
  /** The Relais entry point, when not this checkout's. */
  main?: string;
}

/** Starts a stack for a scenario's connector and webhook settings, profiled when asked, and waits for its binds. */
export async function startScenarioStack(
  kind: 'sqlite' | 'postgres',
  spec: { connector: ConnectorSettings; webhookBatch: number; receiptDelayMs: number },
  options: ScenarioOptions,
): Promise<Stack> {
  const stack = await startStack({
    kind,
    connector: spec.connector,
    webhookBatch: spec.webhookBatch,
    receiptDelayMs: spec.receiptDelayMs,
    nodeArgs: [
      ...(options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`] : []),
      ...(options.statementsDir ? [`--import=${new URL('./statement-timer.js', import.meta.url).href}`] : []),
    ],
    env: options.statementsDir ? { RELAIS_BENCH_STATEMENTS_DIR: options.statementsDir } : {},
    keep: options.keep,
    ...(options.main ? { main: options.main } : {}),
  });
  options.onStack(stack);
  return stack;
}
