import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { type Agent, get, request } from 'node:http';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { NODE_FLAGS } from '../shared/node-flags.js';

/**
 * Relais as a user runs it: `node dist/main.js start` in its own process, configured through the
 * environment only, and `relais tenant create` for an API key.
 */

const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));
const execFileP = promisify(execFile);

export interface RelaisEnv {
  dataDir: string;
  /** Unset for SQLite in the data dir (the default a user gets). */
  databaseUrl?: string;
  port: number;
  /** A YAML configuration file (RELAIS_CONFIG), for settings the environment does not cover. */
  configFile?: string;
  /** RELAIS_LOG_LEVEL; default warn (a benchmark's output stays readable). */
  logLevel?: string;
}

export interface RelaisProcess {
  pid: number;
  baseUrl: string;
  /** The last lines the server wrote (stdout and stderr), for error reports. */
  output(): string;
  /** Lines written so far: with RELAIS_LOG_LEVEL=warn every line is a warning or an error. */
  linesWritten(): number;
  /**
   * SIGTERM: a clean shutdown (needed for --cpu-prof to write its profile). SIGKILL: a crash, after
   * which everything acknowledged must still be in the database. Resolves to the exit code or signal.
   */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<number | string | null>;
}

/** Environment for a Relais process: ours, minus any Relais settings of the caller's shell. */
export function relaisEnv(opts: RelaisEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('RELAIS_') || k === 'DATABASE_URL' || k === 'NODE_OPTIONS') continue;
    env[k] = v;
  }
  env.RELAIS_DATA_DIR = opts.dataDir;
  env.RELAIS_HTTP_PORT = String(opts.port);
  env.RELAIS_LOG_LEVEL = opts.logLevel ?? 'warn';
  if (opts.databaseUrl) env.DATABASE_URL = opts.databaseUrl;
  if (opts.configFile) env.RELAIS_CONFIG = opts.configFile;
  return env;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The V8 flags of the checkout whose entry point is `main` (its dist/shared/node-flags.js), else ours. */
async function nodeFlagsOf(main: string): Promise<readonly string[]> {
  if (main === MAIN) return NODE_FLAGS;
  const file = join(dirname(main), 'shared', 'node-flags.js');
  if (!existsSync(file)) return NODE_FLAGS;
  const mod = (await import(pathToFileURL(file).href)) as { NODE_FLAGS?: readonly string[] };
  return mod.NODE_FLAGS ?? NODE_FLAGS;
}

export async function startRelais(
  env: NodeJS.ProcessEnv,
  port: number,
  nodeArgs: string[] = [],
  /** The Relais entry point: this checkout's dist/main.js, or another checkout's (a baseline). */
  main = MAIN,
): Promise<RelaisProcess> {
  // Started as `npm start` starts it: with Relais's V8 flags — those of the checkout being run, so
  // a baseline runs with its own flags, not ours.
  const flags = await nodeFlagsOf(main);
  const child = spawn(process.execPath, [...flags, ...nodeArgs, main, 'start'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let written = 0;
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line) continue;
      written++;
      lines.push(line);
      if (lines.length > 50) lines.shift();
    }
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<number | string | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal)),
  );
  const baseUrl = `http://127.0.0.1:${port}`;

  try {
    await waitHealthy(baseUrl, child, exited);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n--- relais output ---\n${lines.join('\n')}`);
  }
  return {
    pid: child.pid!,
    baseUrl,
    output: () => lines.join('\n'),
    linesWritten: () => written,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

async function waitHealthy(baseUrl: string, child: ChildProcess, exited: Promise<unknown>) {
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (gone) throw new Error(`relais exited with code ${child.exitCode} before becoming healthy`);
    if (await healthy(baseUrl)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('relais did not answer /healthz within 30 s');
}

function healthy(baseUrl: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get(`${baseUrl}/healthz`, { timeout: 1000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

/** `relais tenant create --name Bench`: the API key is printed once, in JSON. */
export async function createTenant(env: NodeJS.ProcessEnv, name: string): Promise<{ apiKey: string }> {
  const { stdout } = await execFileP(process.execPath, [MAIN, 'tenant', 'create', '--name', name], { env });
  const created = JSON.parse(stdout) as { api_key?: unknown };
  if (typeof created.api_key !== 'string') throw new Error(`tenant create printed no api_key: ${stdout}`);
  return { apiKey: created.api_key };
}

/** POSTs a JSON body with the tenant's API key; resolves with the HTTP status. */
export function postJson(agent: Agent, url: string, apiKey: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          authorization: `Bearer ${apiKey}`,
          'content-type': 'application/json',
          'content-length': body.length,
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
