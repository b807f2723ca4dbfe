import type { FastifyInstance } from 'fastify';
import type { Readiness } from './api/routes/operations.js';
import { buildHttpServer } from './api/server.js';
import { CarrierService } from './carriers/carrier-service.js';
import type { Config } from './config/schema.js';
import { WorkQueue } from './dispatch/work-queue.js';
import { Housekeeping } from './housekeeping.js';
import { MessageService } from './messages/service.js';
import { Metrics } from './observability/metrics.js';
import { registerStateGauges } from './observability/state-gauges.js';
import { type Clock, systemClock } from './shared/clock.js';
import { createLogger, type Logger } from './shared/logger.js';
import { openStore, type Store } from './store/store.js';
import { TenantService } from './tenants/tenants.js';
import { loadSealingSecret, Sealer } from './verify/sealing.js';
import { VerifyService } from './verify/service.js';
import { WebhookSender } from './webhooks/webhook-sender.js';

export interface App {
  config: Config;
  logger: Logger;
  clock: Clock;
  store: Store;
  tenants: TenantService;
  messages: MessageService;
  verify: VerifyService;
  workQueue: WorkQueue;
  webhooks: WebhookSender;
  housekeeping: Housekeeping;
  carriers: CarrierService;
  http: FastifyInstance;
  /** Starts background roles (carriers, webhook sender, housekeeping) and listens on the configured port. */
  start(): Promise<{ port: number }>;
  close(): Promise<void>;
}

export interface BuildOptions {
  clock?: Clock;
  logger?: Logger;
  /** Apply migrations while building (default true). */
  migrate?: boolean;
}

/** The composition root: main.ts and every test build the platform through here. */
export async function buildApp(config: Config, options: BuildOptions = {}): Promise<App> {
  const logger = options.logger ?? createLogger(config.log.level);
  const clock = options.clock ?? systemClock;
  const store = openStore(config);
  if (options.migrate !== false) await store.migrate();
  const tenants = new TenantService(store, clock);
  const metrics = new Metrics();
  const messages = new MessageService(store, clock, config, metrics);
  const workQueue = new WorkQueue(store, clock);
  const webhooks = new WebhookSender(
    store,
    clock,
    config.webhooks,
    logger.child({ role: 'webhooks' }),
    metrics,
  );
  workQueue.onWebhookEvents(() => webhooks.notify());
  const verify = buildVerify(config, store, clock, messages, logger);
  verify.onWebhookEvents(() => webhooks.notify());
  const housekeeping = new Housekeeping(
    store,
    clock,
    config,
    workQueue,
    logger.child({ role: 'housekeeping' }),
    verify.upkeep,
  );
  const carriers = new CarrierService(config, store, workQueue, clock, logger, metrics);
  registerStateGauges(metrics, store, workQueue, carriers);
  messages.onQueued((urgent) => carriers.dispatcher.notify(urgent));
  const readiness = async (): Promise<Readiness> => {
    const checks: Readiness['checks'] = {};
    try {
      await store.ping();
      checks.database = { ok: true };
      checks.migrations = (await store.isMigrated())
        ? { ok: true }
        : { ok: false, detail: 'migrations pending' };
    } catch (err) {
      checks.database = { ok: false, detail: (err as Error).message };
    }
    const bound = [...carriers.connectors.values()].filter((c) => c.boundTransmitters > 0).map((c) => c.name);
    checks.carriers =
      bound.length > 0
        ? { ok: true, detail: `bound: ${bound.join(', ')}` }
        : { ok: false, detail: 'no connector bound' };
    return { ready: Object.values(checks).every((c) => c.ok), checks };
  };
  const http = await buildHttpServer({
    config,
    logger,
    store,
    tenants,
    messages,
    verify,
    metrics,
    readiness,
  });

  let started = false;
  return {
    config,
    logger,
    clock,
    store,
    tenants,
    messages,
    verify,
    workQueue,
    webhooks,
    housekeeping,
    carriers,
    http,
    async start() {
      started = true;
      await carriers.start();
      webhooks.start();
      housekeeping.start();
      await http.listen({ host: config.http.host, port: config.http.port });
      const address = http.server.address();
      const port = typeof address === 'object' && address ? address.port : config.http.port;
      return { port };
    },
    async close() {
      // Intake first, then the background roles, then storage: nothing is written after close.
      // Each step runs even if one before it failed, so the database is always closed.
      const steps: (() => Promise<unknown>)[] = [() => closeHttp(http)];
      if (started)
        steps.push(
          () => carriers.stop(),
          () => webhooks.stop(),
          () => housekeeping.stop(),
        );
      steps.push(() => store.close());
      let failure: unknown = null;
      for (const step of steps) {
        try {
          await step();
        } catch (err) {
          logger.error({ err }, 'error while closing');
          failure ??= err;
        }
      }
      if (failure) throw failure;
    },
  };
}

/** Verify, with its sealing key from the configuration or DATA_DIR/verify.key (created at first start). */
function buildVerify(config: Config, store: Store, clock: Clock, messages: MessageService, logger: Logger) {
  const log = logger.child({ role: 'verify' });
  const secret = loadSealingSecret(config);
  if (secret.created) log.info({ path: secret.path }, 'generated the Verify sealing key');
  if (secret.looseMode) log.warn({ path: secret.path }, 'the Verify sealing key file is readable by others');
  if (secret.source === 'file' && store.dialect === 'postgres') {
    log.warn(
      { path: secret.path },
      'verify.sealing_key is not configured: using a key file of this node; every node must share one key',
    );
  }
  return new VerifyService(store, clock, config, messages, new Sealer(secret.secret), log);
}

/**
 * Stops intake: refuses new requests (503 while closing), lets requests in progress finish, and
 * closes each keep-alive connection as soon as it is idle — otherwise a busy client's connection
 * would hold the shutdown for the 72 s keep-alive timeout (measured: 70 s under load).
 */
async function closeHttp(http: FastifyInstance): Promise<void> {
  const sweeper = setInterval(() => http.server.closeIdleConnections(), 50);
  try {
    await http.close();
  } finally {
    clearInterval(sweeper);
  }
}
