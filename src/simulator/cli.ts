// `relais sim`: the carrier simulator as its own process.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { createLogger } from '../shared/logger.js';
import { parseSimulatorOptions, type SimulatorOptions, SimulatorOptionsError } from './options.js';
import { type ControlServer, startControlServer } from './server-control.js';
import { CarrierSimulator } from './simulator.js';

export const SIM_USAGE = `usage: relais sim [options]

Runs the built-in carrier simulator: an SMPP 3.4 SMSC for tests, benchmarks and first runs.
See docs/simulator.md for every option.

options:
  --config FILE                 YAML file of simulator options (flags below override it)
  --host HOST                   SMPP listen address (default 127.0.0.1)
  --port N                      SMPP port (default 2775; 0 = any free port)
  --control-port N              HTTP control port (GET /stats, POST /options, POST /mo); off by default
  --control-host HOST           control listen address (default 127.0.0.1)
  --system-id ID                our system_id in bind responses (default relais-sim)
  --tls-cert FILE               serve SMPP over TLS with this certificate (PEM)…
  --tls-key FILE                …and its key (PEM)
  --tls-client-ca FILE          with TLS, require client certificates issued by this CA (PEM)
  --receipt-delay-ms N          delay of delivery receipts (default 200)
  --reject-rate X               share of submits refused with ESME_RSUBMITFAIL, 0..1
  --undeliverable-rate X        share of receipts saying UNDELIV, 0..1
  --expired-rate X              share of receipts saying EXPIRED, 0..1
  --throttle-tps N              submits per second before ESME_RTHROTTLED (0 = off)
  --seed N                      seed for a reproducible run
  --record-submits              keep every submit in memory (GET /received); off by default here
  --log-level LEVEL             fatal|error|warn|info|debug|trace|silent (default info)
  -h, --help                    this help`;

export interface SimulatorCommandIo {
  /** Where log lines go (default process.stdout). */
  stdout?: NodeJS.WritableStream;
  /** Where usage errors go (default process.stderr). */
  stderr?: NodeJS.WritableStream;
  /** Stops the simulator when aborted; without it, SIGTERM and SIGINT do. */
  signal?: AbortSignal;
}

class UsageError extends Error {}

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/** Runs `relais sim`; resolves with the exit code once stopped (0), or at once on bad usage (2) or failure (1). */
export async function runSimulatorCommand(args: string[], io: SimulatorCommandIo = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  let parsed: ParsedCommand;
  try {
    parsed = parseCommand(args);
  } catch (err) {
    if (err instanceof UsageError || err instanceof SimulatorOptionsError || isParseArgsError(err)) {
      stderr.write(`relais sim: ${(err as Error).message}\n\n${SIM_USAGE}\n`);
      return 2;
    }
    stderr.write(`relais sim: ${(err as Error).message}\n`);
    return 1;
  }
  if (parsed.help) {
    stdout.write(`${SIM_USAGE}\n`);
    return 0;
  }

  const logger = createLogger(parsed.logLevel, stdout);
  const sim = new CarrierSimulator(parsed.options, logger);
  let control: ControlServer | null = null;
  try {
    const { port } = await sim.start();
    if (parsed.controlPort !== null) {
      control = await startControlServer(sim, { host: parsed.controlHost, port: parsed.controlPort });
    }
    logger.info(
      {
        host: parsed.options.host,
        port,
        control_port: control?.port ?? null,
        system_id: parsed.options.system_id,
        tls: parsed.options.tls_cert_file !== undefined,
      },
      'carrier simulator listening',
    );
  } catch (err) {
    await control?.close();
    await sim.stop();
    stderr.write(`relais sim: cannot start: ${(err as Error).message}\n`);
    return 1;
  }

  await stopRequested(io.signal);
  await control?.close();
  await sim.stop();
  logger.info({ stats: sim.stats() }, 'carrier simulator stopped');
  return 0;
}

interface ParsedCommand {
  help: boolean;
  options: SimulatorOptions;
  controlPort: number | null;
  controlHost: string;
  logLevel: string;
}

/** Flags and --config into validated options; throws UsageError or SimulatorOptionsError. */
export function parseCommand(args: string[]): ParsedCommand {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      'control-port': { type: 'string' },
      'control-host': { type: 'string' },
      'system-id': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-client-ca': { type: 'string' },
      'receipt-delay-ms': { type: 'string' },
      'reject-rate': { type: 'string' },
      'undeliverable-rate': { type: 'string' },
      'expired-rate': { type: 'string' },
      'throttle-tps': { type: 'string' },
      seed: { type: 'string' },
      'record-submits': { type: 'boolean' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const help = values.help === true;

  // As its own process the simulator may run for hours: no submit log in memory unless asked for.
  const raw: Record<string, unknown> = { record_submits: false };
  let controlPort: number | null = null;
  let controlHost = '127.0.0.1';
  if (values.config) {
    const file = readConfigFile(values.config);
    if (file.control_port !== undefined) controlPort = asPort('control_port in --config', file.control_port);
    if (typeof file.control_host === 'string') controlHost = file.control_host;
    delete file.control_port;
    delete file.control_host;
    Object.assign(raw, file);
  }
  const flag = (name: string, key: string, kind: 'int' | 'number') => {
    const value = values[name as keyof typeof values];
    if (typeof value === 'string')
      raw[key] = kind === 'int' ? integer(`--${name}`, value) : number(`--${name}`, value);
  };
  if (values.host !== undefined) raw.host = values.host;
  if (values['system-id'] !== undefined) raw.system_id = values['system-id'];
  if (values['tls-cert'] !== undefined) raw.tls_cert_file = values['tls-cert'];
  if (values['tls-key'] !== undefined) raw.tls_key_file = values['tls-key'];
  if (values['tls-client-ca'] !== undefined) raw.tls_client_ca_file = values['tls-client-ca'];
  flag('port', 'port', 'int');
  flag('receipt-delay-ms', 'receipt_delay_ms', 'int');
  flag('reject-rate', 'reject_rate', 'number');
  flag('undeliverable-rate', 'undeliverable_rate', 'number');
  flag('expired-rate', 'expired_rate', 'number');
  flag('throttle-tps', 'throttle_tps', 'int');
  flag('seed', 'seed', 'int');
  if (values['record-submits']) raw.record_submits = true;
  if (values['control-port'] !== undefined) controlPort = asPort('--control-port', values['control-port']);
  if (values['control-host'] !== undefined) controlHost = values['control-host'];
  const logLevel = values['log-level'] ?? 'info';
  if (!LOG_LEVELS.has(logLevel))
    throw new UsageError(`--log-level must be one of ${[...LOG_LEVELS].join(', ')}`);

  return { help, options: parseSimulatorOptions(raw), controlPort, controlHost, logLevel };
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read --config ${path}: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (err) {
    throw new UsageError(`--config ${path} is not valid YAML: ${(err as Error).message}`);
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new UsageError(`--config ${path} must be a YAML mapping of simulator options`);
  }
  return { ...(value as Record<string, unknown>) };
}

function number(flag: string, text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value))
    throw new UsageError(`${flag} must be a number, got '${text}'`);
  return value;
}

function integer(flag: string, text: string): number {
  const value = number(flag, text);
  if (!Number.isInteger(value)) throw new UsageError(`${flag} must be an integer, got '${text}'`);
  return value;
}

function asPort(what: string, value: unknown): number {
  const port = typeof value === 'string' ? integer(what, value) : value;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`${what} must be a port number 0..65535, got '${String(value)}'`);
  }
  return port;
}

function isParseArgsError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

function stopRequested(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal) {
      if (signal.aborted) return resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
      return;
    }
    const onSignal = () => {
      process.removeListener('SIGTERM', onSignal);
      process.removeListener('SIGINT', onSignal);
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
