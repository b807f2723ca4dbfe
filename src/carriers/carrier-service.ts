import type { Config } from '../config/schema.js';
import { Dispatcher } from '../dispatch/dispatcher.js';
import { StatusRecorder } from '../dispatch/status-recorder.js';
import type { WorkQueue } from '../dispatch/work-queue.js';
import type { Metrics } from '../observability/metrics.js';
import { ReceiptMatcher } from '../receipts/receipt-matcher.js';
import { type RouteConfig, RoutingTable } from '../routing/routes.js';
import type { Clock } from '../shared/clock.js';
import { newId } from '../shared/ids.js';
import type { Logger } from '../shared/logger.js';
import { CarrierSimulator } from '../simulator/simulator.js';
import type { Store } from '../store/store.js';
import { CarrierLink } from './carrier-link.js';
import { type SmppConnectorConfig, smppConnectorSchema } from './config.js';
import { type InboundMessage, SmppConnector } from './smpp-connector.js';

/**
 * The carrier side, wired: connectors (or the built-in simulator when none is configured), the
 * routing table, the dispatcher, receipts matching and the ordered outcome recorder.
 */
export class CarrierService {
  readonly connectors = new Map<string, SmppConnector>();
  readonly dispatcher: Dispatcher;
  readonly matcher: ReceiptMatcher;
  /** Outcomes of submits (the dispatcher's): these gate how far submitting runs ahead of the database. */
  readonly recorder: StatusRecorder;
  /**
   * Receipts, committed beside the submits' outcomes (two transactions at a time on PostgreSQL). A
   * receipt is handed over only once its part's `submitted` change has committed (ReceiptMatcher).
   */
  readonly receiptRecorder: StatusRecorder;
  simulator: CarrierSimulator | null = null;
  /** The thread holding every connector's SMPP sessions. */
  readonly link = new CarrierLink();
  private readonly routes: RouteConfig[];
  private inboundHandler: ((connector: string, message: InboundMessage) => Promise<unknown>) | null = null;

  constructor(
    private readonly config: Config,
    store: Store,
    workQueue: WorkQueue,
    clock: Clock,
    private readonly log: Logger,
    metrics?: Metrics,
  ) {
    // PostgreSQL runs two of each at a time; SQLite's single writer would only queue them.
    const concurrency = store.dialect === 'postgres' ? 2 : 1;
    // Batches gather for up to 50 ms: at 1,000 msg/s on SQLite (the urgent-latency benchmark's bulk
    // flow) they held about 9 changes before, and Relais used 113% CPU (docs/architecture.md).
    // Outcomes commit at once when half of max_unrecorded waits, so the dispatcher, which stops
    // submitting at that bound, never waits out the linger. A deliver_sm is answered only once its
    // receipt is stored: receipts commit after 5 ms without a new one, as a carrier that waits for
    // its deliver_sm window to empty sends none.
    // The dispatcher hears of its outcomes at commit: waiting for the log's sync too (8–25 ms median
    // on SQLite under the benchmark's load) held it at max_unrecorded for most of the run
    // (docs/architecture.md). The carrier hears of its receipts only once they are on disk.
    this.recorder = new StatusRecorder((units) => workQueue.recordOutcomes(units), {
      concurrency,
      lingerMs: 50,
      flushAt: Math.ceil(config.dispatcher.max_unrecorded / 2),
      resolveWhen: 'committed',
    });
    this.receiptRecorder = new StatusRecorder((units) => workQueue.recordOutcomes(units), {
      concurrency,
      lingerMs: 50,
      quietMs: 5,
      resolveWhen: 'durable',
    });
    this.matcher = new ReceiptMatcher(
      store.db,
      (unit, now) => this.receiptRecorder.record(unit, now),
      log.child({ role: 'receipts' }),
      {
        maxRecent: 500_000,
        parkMs: 30_000,
        metrics,
      },
    );
    const useSimulator =
      config.simulator.enabled === 'always' ||
      (config.simulator.enabled === 'auto' && config.connectors.length === 0);
    const connectorConfigs: SmppConnectorConfig[] = useSimulator
      ? [...config.connectors, simulatorConnector(config)]
      : config.connectors;
    for (const c of connectorConfigs) {
      this.connectors.set(
        c.name,
        new SmppConnector(
          c,
          this.link,
          {
            onReceipt: (name, receipt, carrierWaiting) =>
              this.matcher.handle(
                name,
                receipt,
                this.connectors.get(name)!.config.receipt_id_format,
                carrierWaiting,
              ),
            // Acknowledged to the carrier once the handler's promise resolves (stored and committed).
            onInbound: async (name, message) => {
              if (this.inboundHandler) {
                await this.inboundHandler(name, message);
                return;
              }
              this.log.warn({ connector: name, to: message.to }, 'inbound message received but not stored');
            },
            onStateChange: (name) => this.dispatcher.connectorChanged(name),
          },
          clock,
          log.child({ role: 'connector' }),
          metrics,
        ),
      );
    }
    this.routes =
      config.routes.length > 0
        ? config.routes.map((r) => ({ connectors: [r.connector].flat(), match: r.match }))
        : [{ connectors: [...this.connectors.keys()] }];
    this.dispatcher = new Dispatcher(
      workQueue,
      this.connectors,
      new RoutingTable(this.routes),
      this.recorder,
      this.matcher,
      clock,
      log.child({ role: 'dispatcher' }),
      {
        owner: newId('req').replace('req_', 'node_'),
        leaseMs: config.dispatcher.lease_ms,
        bufferSeconds: config.dispatcher.buffer_seconds,
        maxBufferedParts: config.dispatcher.max_buffered_parts,
        releaseStaleLeases: store.dialect === 'sqlite',
        maxUnrecorded: config.dispatcher.max_unrecorded,
        pollMs: config.dispatcher.poll_ms,
        metrics,
      },
    );
    this.simulator = useSimulator
      ? new CarrierSimulator(
          {
            host: '127.0.0.1',
            port: config.simulator.port,
            receipt_delay_ms: config.simulator.receipt_delay_ms,
            record_submits: false,
          },
          log.child({ role: 'simulator' }),
        )
      : null;
  }

  /** Where mobile-originated messages go (the inbound service); set before start. */
  handleInbound(handler: (connector: string, message: InboundMessage) => Promise<unknown>): void {
    this.inboundHandler = handler;
  }

  async start(): Promise<void> {
    if (this.simulator) {
      const { port } = await this.simulator.start();
      const connector = this.connectors.get('simulator')!;
      (connector.config as { port: number }).port = port;
      this.log.info({ port }, 'built-in carrier simulator listening (no connector configured)');
    }
    for (const c of this.connectors.values()) c.start();
    await this.dispatcher.start();
  }

  async stop(): Promise<void> {
    await this.dispatcher.stop();
    await Promise.all([...this.connectors.values()].map((c) => c.stop()));
    await this.link.close();
    this.matcher.stop();
    await this.simulator?.stop();
  }
}

function simulatorConnector(config: Config): SmppConnectorConfig {
  return smppConnectorSchema.parse({
    name: 'simulator',
    host: '127.0.0.1',
    port: config.simulator.port || 2775,
    system_id: 'relais',
    password: 'relais',
    window: 50,
    tps: config.simulator.tps,
    reconnect_min_ms: 100,
    reconnect_max_ms: 5000,
  });
}
