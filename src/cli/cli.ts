import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { NumberService } from '../inbound/numbers.js';
import { parseRetentionDays, setTenantRetention } from '../retention/tenant-retention.js';
import { systemClock } from '../shared/clock.js';
import { RelaisError } from '../shared/errors.js';
import { openStore } from '../store/store.js';
import { checkOptoutMention, TenantService } from '../tenants/tenants.js';
import { CallbackUrlError, checkCallbackUrl } from '../webhooks/targets.js';

const USAGE = `usage: relais <command> [options]

commands:
  start                                  run the platform (API, carriers, webhooks, housekeeping)
  sim [--port 2775] …                    run the carrier simulator alone (see docs/simulator.md)
  migrate                                apply database migrations and exit
  tenant create --name NAME [--webhook-url URL] [--webhook-batch N] [--optout-mention TEXT]
                                         create a tenant; prints its id, API key and webhook secret (once)
  tenant list                            list tenants
  tenant update --tenant ID [--retention-days N|default] [--optout-mention TEXT]
                                         keep this tenant's history N days (fractions allowed) instead
                                         of retention.messages_days; "default" removes the override;
                                         --optout-mention "STOP au 36111" is added to its bulk messages
                                         ("" removes it)
  key create --tenant ID [--name NAME]   create another API key for a tenant (printed once)
  number add --tenant ID --number N      assign an inbound number or short code to a tenant (may be shared)
  number list [--tenant ID]              list inbound number assignments
  number remove --tenant ID --number N   take a number away from a tenant
  key list --tenant ID                   list a tenant's keys (prefixes only)
  key revoke --key KEY_ID                revoke an API key (servers refuse it within 0.5 s)
  backup --to DIR                        consistent online backup of the database (while it runs)
  restore --from FILE                    restore a backup into the configured database (Relais stopped)

options:
  --config FILE                          YAML configuration (or RELAIS_CONFIG); see docs/configuration.md
  -h, --help                             this help
  --version                              print the version`;

/** Thrown for usage mistakes: printed with the usage, exit code 2. */
class UsageError extends Error {}

export async function runCli(argv: string[]): Promise<number> {
  // The simulator has its own flags (docs/simulator.md).
  if (argv[0] === 'sim') return (await import('../simulator/cli.js')).runSimulatorCommand(argv.slice(1));
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    process.stderr.write(`relais: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.version) {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length === 0) {
    process.stderr.write(`relais: a command is needed\n\n${USAGE}\n`);
    return 2;
  }
  try {
    const config = loadConfig({ file: values.config });
    return await dispatch(positionals, values, config);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`relais: ${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    if (err instanceof ConfigError || err instanceof RelaisError) {
      process.stderr.write(`relais: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`relais: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string' },
      name: { type: 'string' },
      tenant: { type: 'string' },
      key: { type: 'string' },
      to: { type: 'string' },
      from: { type: 'string' },
      'webhook-url': { type: 'string' },
      'webhook-batch': { type: 'string' },
      'retention-days': { type: 'string' },
      'optout-mention': { type: 'string' },
      number: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
    },
  });
}

type Values = ReturnType<typeof parse>['values'];

async function dispatch(positionals: string[], values: Values, config: Config): Promise<number> {
  const command = positionals.join(' ');
  switch (command) {
    case 'start':
      return start(config);
    case 'migrate': {
      const store = openStore(config);
      try {
        print({ applied: await store.migrate(), dialect: store.dialect });
        return 0;
      } finally {
        await store.close();
      }
    }
    case 'tenant create':
      return withTenants(config, async (tenants) => {
        const name = required(values.name, '--name');
        const webhookUrl = values['webhook-url'];
        if (webhookUrl !== undefined) {
          try {
            checkCallbackUrl(webhookUrl, { allowPrivateTargets: config.webhooks.allow_private_targets });
          } catch (err) {
            if (err instanceof CallbackUrlError)
              throw new RelaisError(err.code, `--webhook-url: ${err.message}`);
            throw err;
          }
        }
        const batch = values['webhook-batch'] === undefined ? 0 : Number(values['webhook-batch']);
        if (!Number.isInteger(batch) || batch < 0 || batch > 1000) {
          throw new UsageError('--webhook-batch takes a whole number from 0 to 1000');
        }
        print(
          await tenants.create({
            name,
            webhookUrl: webhookUrl ?? null,
            webhookBatchSize: batch,
            optoutMention: values['optout-mention'] ?? null,
          }),
        );
      });
    case 'tenant update':
      return withTenants(config, async (tenants, store) => {
        const tenantId = required(values.tenant, '--tenant');
        const retention = values['retention-days'];
        const mention = values['optout-mention'];
        if (retention === undefined && mention === undefined) {
          throw new UsageError('tenant update needs --retention-days or --optout-mention');
        }
        // Both checked before either is written.
        const days = retention === undefined ? undefined : parseRetentionDays(retention);
        const optoutMention = mention === undefined ? undefined : checkOptoutMention(mention);
        if (days !== undefined) await setTenantRetention(store, tenantId, days);
        if (optoutMention !== undefined) await tenants.updateOptoutMention(tenantId, optoutMention);
        print({
          tenant_id: tenantId,
          ...(days === undefined ? {} : { retention_days: days }),
          ...(optoutMention === undefined ? {} : { optout_mention: optoutMention }),
        });
      });
    case 'tenant list':
      return withTenants(config, async (tenants) => print(await tenants.list()));
    case 'key create':
      return withTenants(config, async (tenants) =>
        print(await tenants.createKey(required(values.tenant, '--tenant'), values.name)),
      );
    case 'key list':
      return withTenants(config, async (tenants) =>
        print(await tenants.listKeys(required(values.tenant, '--tenant'))),
      );
    case 'key revoke':
      return withTenants(config, async (tenants) => {
        const keyId = required(values.key, '--key');
        if (!(await tenants.revokeKey(keyId))) throw new RelaisError('not_found', `no active key ${keyId}`);
        print({ revoked: keyId });
      });
    case 'number add':
    case 'number remove':
    case 'number list':
      return withTenants(config, async (_tenants, store) => {
        const numbers = new NumberService(store, systemClock);
        if (command === 'number list') return print(await numbers.list(values.tenant));
        const tenantId = required(values.tenant, '--tenant');
        const number = required(values.number, '--number');
        if (command === 'number add') return print(await numbers.add(number, tenantId));
        await numbers.remove(number, tenantId);
        print({ removed: number, tenant_id: tenantId });
      });
    case 'backup': {
      const { backupDatabase } = await import('../backup/backup.js');
      print(await backupDatabase(config, required(values.to, '--to')));
      return 0;
    }
    case 'restore': {
      const { restoreDatabase } = await import('../backup/backup.js');
      print(await restoreDatabase(config, required(values.from, '--from')));
      return 0;
    }
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

/** Short-lived commands open the same database as a running server: WAL and busy_timeout make it safe. */
async function withTenants(
  config: Config,
  fn: (tenants: TenantService, store: ReturnType<typeof openStore>) => Promise<void>,
): Promise<number> {
  const store = openStore(config);
  try {
    await store.migrate();
    await fn(new TenantService(store, systemClock), store);
    return 0;
  } finally {
    await store.close();
  }
}

async function start(config: Config): Promise<number> {
  // Loaded here only: short commands do not pay for the HTTP stack.
  const { buildApp } = await import('../app.js');
  const app = await buildApp(config);
  const { port } = await app.start();
  app.logger.info(
    { port, host: config.http.host, database: app.store.dialect, data_dir: config.data_dir },
    `Relais is up: http://${config.http.host}:${port} (API docs at /docs)`,
  );
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        // A second signal: leave now. Everything acknowledged is already committed.
        app.logger.warn({ signal }, 'second signal, exiting at once');
        process.exit(130);
      }
      stopping = true;
      app.logger.info({ signal }, 'shutting down');
      app.close().then(
        () => resolve(0),
        (err) => {
          app.logger.error({ err }, 'error during shutdown');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new UsageError(`${flag} is required`);
  return value;
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}
