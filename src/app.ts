import { dirname } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Readiness } from './api/routes/operations.js';
import { buildHttpServer } from './api/server.js';
import { type Audiences, buildAudiences } from './audiences/audiences.js';
import { BackupScheduler, backupDirOf } from './backup/schedule.js';
import { CampaignRunner } from './campaigns/campaign-runner.js';
import { CampaignService } from './campaigns/campaign-service.js';
import { CarrierService } from './carriers/carrier-service.js';
import type { Config } from './config/schema.js';
import { WorkQueue } from './dispatch/work-queue.js';
import { Housekeeping } from './housekeeping.js';
import { NumberService } from './inbound/numbers.js';
import { InboundService } from './inbound/service.js';
import { logFileOptions, RotatingLogFile } from './logging/log-file.js';
import { MessageService } from './messages/service.js';
import { DiskGuard, type StatfsReader } from './observability/disk-guard.js';
import { Metrics } from './observability/metrics.js';
import { registerStateGauges } from './observability/state-gauges.js';
import { OptoutService } from './optouts/optout-service.js';
import { Retention } from './retention/retention.js';
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
  campaigns: CampaignService;
  campaignRunner: CampaignRunner;
  /** Contacts, lists and CSV imports. */
  audiences: Audiences;
  /** Mobile-originated messages (stored, attributed, STOP/START) and the operator's inbound numbers. */
  inbound: InboundService;
  numbers: NumberService;
  optouts: OptoutService;
  /** Free-space watch; `isCritical()` refuses bulk intake and holds campaign expansion. */
  diskGuard: DiskGuard;
  /** Scheduled backups (`backup.schedule`), or null. */
  backups: BackupScheduler | null;
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
  /** How the disk guard reads free space (tests make a disk "fill" on demand). */
  statfs?: StatfsReader;
}

/** The composition root: main.ts and every test build the platform through here. */
export async function buildApp(config: Config, options: BuildOptions = {}): Promise<App> {
  const logFile = logFileOptions(config);
  // A logger given by the caller (tests) is used as is; otherwise `log.file` picks stdout or a file.
  const logOutput = !options.logger && logFile ? await RotatingLogFile.open(logFile) : undefined;
  const logger = options.logger ?? createLogger(config.log.level, logOutput);
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
  workQueue.handWebhooksTo(webhooks);
  const verify = buildVerify(config, store, clock, messages, logger);
  verify.onWebhookEvents(() => webhooks.notify());
  const retention = new Retention(store, clock, config.retention, logger.child({ role: 'retention' }));
  // PostgreSQL: history partitions for now and the days ahead, before anything is written.
  if (options.migrate !== false) await retention.preparePartitions();
  const housekeeping = new Housekeeping(
    store,
    clock,
    config,
    workQueue,
    logger.child({ role: 'housekeeping' }),
    verify.upkeep,
    retention,
  );
  const carriers = new CarrierService(config, store, workQueue, clock, logger, metrics);
  registerStateGauges(metrics, store, workQueue, carriers);
  messages.onQueued((urgent) => carriers.dispatcher.notify(urgent));
  messages.handUrgentTo(carriers.dispatcher);
  const optouts = new OptoutService(store, clock);
  optouts.onWebhookEvents(() => webhooks.notify());
  const numbers = new NumberService(store, clock);
  const inbound = new InboundService(store, clock, config.inbound, logger.child({ role: 'inbound' }));
  inbound.onWebhookEvents(() => webhooks.notify());
  carriers.handleInbound((connector, message) => inbound.receive(connector, message));
  const campaignRunner = new CampaignRunner({
    store,
    clock,
    config,
    logger: logger.child({ role: 'campaigns' }),
    capacityTps: () => [...carriers.connectors.values()].reduce((sum, c) => sum + c.config.tps, 0),
    onQueued: () => carriers.dispatcher.notify(false),
    onWebhookEvents: () => webhooks.notify(),
    recallHeld: (campaignId, outcome) => carriers.dispatcher.recall(campaignId, outcome),
  });
  const campaigns = new CampaignService(store, clock, campaignRunner);
  const backupDir = backupDirOf(config);
  const diskGuard = new DiskGuard(
    DiskGuard.volumesOf(config, logFile && dirname(logFile.file), backupDir),
    config.disk_guard,
    logger.child({ role: 'disk-guard' }),
    options.statfs,
  );
  diskGuard.registerMetrics(metrics);
  metrics.gauge(
    'relais_db_ping_seconds',
    'Round trip of a trivial query, measured at scrape',
    [],
    async (set) => {
      const started = performance.now();
      await store.ping();
      set({}, (performance.now() - started) / 1000);
    },
  );
  messages.refuseBulkWhile(() => diskGuard.isCritical());
  campaignRunner.shouldHold = () => diskGuard.isCritical();
  diskGuard.onChange((_state, previous) => {
    if (previous === 'critical') campaignRunner.notify();
  });
  const backups = config.backup.schedule
    ? new BackupScheduler(config, config.backup.schedule, logger.child({ role: 'backup' }), metrics, () =>
        diskGuard.volumes().some((v) => v.name === 'backups' && v.state === 'critical')
          ? 'the backup volume is below its critical free space'
          : null,
      )
    : null;
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
  const audiences = buildAudiences(store, clock, config, logger);
  const http = await buildHttpServer({
    config,
    logger,
    store,
    tenants,
    messages,
    verify,
    campaigns,
    audiences,
    optouts,
    numbers,
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
    campaigns,
    campaignRunner,
    audiences,
    inbound,
    numbers,
    optouts,
    diskGuard,
    backups,
    http,
    async start() {
      started = true;
      await diskGuard.check(); // bulk intake opens only if there is room for it
      diskGuard.start();
      await retention.preparePartitions(); // PostgreSQL: history partitions for today and ahead
      await carriers.start();
      webhooks.start();
      housekeeping.start();
      campaignRunner.start();
      await audiences.imports.resumeInterrupted(); // imports a crash interrupted
      await backups?.start();
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
          () => campaignRunner.stop(),
          () => carriers.stop(),
          () => webhooks.stop(),
          () => housekeeping.stop(),
          async () => backups?.stop(),
          () => diskGuard.stop(),
        );
      // Background imports stop between two chunks (they resume at the next start).
      steps.push(() => audiences.imports.stop());
      steps.push(() => messages.close());
      steps.push(() => store.close());
      // Last: the log file, so that every line of the shutdown is in it.
      if (logOutput) steps.push(() => logOutput.close());
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
