import { AdaptiveRate, TokenBucket } from '../dispatch/token-bucket.js';
import type { Metrics } from '../observability/metrics.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { BindMode } from '../smpp/client.js';
import { CommandStatus, describeStatus, isTemporaryError } from '../smpp/constants.js';
import type { DeliveryReceipt } from '../smpp/receipt.js';
import { destinationAddress, sourceAddress } from './addresses.js';
import type { CarrierLink, Incoming, LinkBind } from './carrier-link.js';
import type { SmppConnectorConfig } from './config.js';
import { connectorTls } from './connector-tls.js';

/** One SMS part ready for submit_sm. */
export interface PartToSubmit {
  to: string;
  from: string;
  dataCoding: number;
  esmClass: number;
  shortMessage: Buffer;
  /** SMPP relative validity ("000001000000000R"), or '' for the SMSC default. */
  validityPeriod: string;
}

export type SubmitResult =
  | { ok: true; carrierId: string }
  /** `status` null: no answer (timeout, connection lost) — the carrier may or may not have the part. */
  | { ok: false; status: number | null; temporary: boolean; reason: string };

export interface InboundMessage {
  from: string;
  to: string;
  dataCoding: number;
  esmClass: number;
  shortMessage: Buffer;
}

export interface ConnectorHandlers {
  /**
   * Persist a receipt; the deliver_sm is acknowledged only once this resolves (so none is lost).
   * `carrierWaiting`: the carrier may be holding further deliver_sm until this one is answered.
   */
  onReceipt(connector: string, receipt: DeliveryReceipt, carrierWaiting: boolean): Promise<void>;
  /** Persist a mobile-originated message; acknowledged once this resolves. */
  onInbound(connector: string, message: InboundMessage): Promise<void>;
  /** A bind came up or went down: the dispatcher re-routes and refills. */
  onStateChange(connector: string): void;
}

interface Bind {
  mode: BindMode;
  session: LinkBind | null;
}

/**
 * An SMPP 3.4 client connection to one carrier: `binds` transceivers (or as many transmitter +
 * receiver pairs), each kept bound with exponential back-off; at most `window` unanswered submit_sm per
 * bind; one token bucket for the whole connector (its TPS), slowed down on ESME_RTHROTTLED.
 * The sessions themselves live on the carrier link thread (carrier-link.ts); this is their policy.
 */
export class SmppConnector {
  readonly name: string;
  private readonly bucket: TokenBucket;
  private readonly adaptive: AdaptiveRate;
  private readonly binds: Bind[];
  private running = false;
  private readonly loops: Promise<void>[] = [];
  private readonly recoveryTimer: NodeJS.Timeout;
  private wakeReconnect: (() => void)[] = [];
  private readonly tls: ReturnType<typeof connectorTls>;
  throttleEvents = 0;

  constructor(
    readonly config: SmppConnectorConfig,
    private readonly link: CarrierLink,
    private readonly handlers: ConnectorHandlers,
    clock: Clock,
    private readonly log: Logger,
    private readonly metrics?: Metrics,
  ) {
    this.name = config.name;
    // Burst of a tenth of a second: smooth enough for carriers that count per second or per 100 ms.
    this.bucket = new TokenBucket(config.tps, Math.max(1, Math.ceil(config.tps / 10)), clock);
    this.adaptive = new AdaptiveRate(this.bucket, config.tps, clock);
    this.recoveryTimer = setInterval(() => this.adaptive.tick(), 250);
    this.recoveryTimer.unref();
    const modes: BindMode[] =
      config.bind_mode === 'transceiver'
        ? Array.from({ length: config.binds }, () => 'transceiver' as const)
        : Array.from({ length: config.binds }, () => ['transmitter', 'receiver'] as const).flat();
    this.binds = modes.map((mode) => ({ mode, session: null }));
    this.tls = connectorTls(config);
    if (typeof config.tls === 'object' && !config.tls.reject_unauthorized) {
      log.warn(
        { connector: this.name },
        'tls.reject_unauthorized is false: any certificate is accepted, so the link to the carrier is not authenticated',
      );
    }
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    for (const [i, bind] of this.binds.entries()) this.loops.push(this.keepBound(bind, i));
  }

  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.recoveryTimer);
    for (const wake of this.wakeReconnect) wake();
    await Promise.all(this.binds.map((b) => b.session?.unbind(1000)));
    await Promise.all(this.loops);
  }

  /** Transmit-capable binds currently bound. */
  get boundTransmitters(): number {
    return this.transmitters().length;
  }

  get currentTps(): number {
    return this.bucket.currentRate;
  }

  /** Submits in flight across binds. */
  get outstanding(): number {
    return this.transmitters().reduce((n, s) => n + s.outstanding, 0);
  }

  /**
   * 0 if a submit can go now; otherwise ms until a token (or null: window full or not bound). Bulk
   * leaves one token in the bucket for urgent parts: an OTP arriving while a campaign saturates the
   * connector goes at once instead of waiting for the next token (up to 1/TPS: 2 ms at 500 TPS).
   * The rate is the same either way: every submit still takes a token.
   */
  readiness(urgent = false): number | null {
    if (!this.transmitters().some((s) => s.outstanding < this.config.window)) return null;
    return this.bucket.msUntilToken(this.reserveFor(urgent));
  }

  private reserveFor(urgent: boolean): number {
    return urgent ? 0 : Math.min(1, this.bucket.capacity - 1);
  }

  /**
   * Submits one part. Call when `readiness() === 0`; takes a token and the least-loaded bind. Never
   * throws: every outcome is a SubmitResult.
   */
  async submit(part: PartToSubmit, urgent = false): Promise<SubmitResult> {
    const session = this.leastLoaded();
    if (!session || !this.bucket.tryTake(this.reserveFor(urgent))) {
      return { ok: false, status: null, temporary: true, reason: 'no capacity: not bound or rate exceeded' };
    }
    const source = sourceAddress(part.from, this.config);
    const destination = destinationAddress(part.to, this.config);
    const started = performance.now();
    const answer = await session.submit({
      serviceType: this.config.service_type,
      sourceAddrTon: source.ton,
      sourceAddrNpi: source.npi,
      sourceAddr: source.addr,
      destAddrTon: destination.ton,
      destAddrNpi: destination.npi,
      destinationAddr: destination.addr,
      esmClass: part.esmClass,
      registeredDelivery: this.config.registered_delivery ? 1 : 0,
      validityPeriod: part.validityPeriod,
      dataCoding: part.dataCoding,
      shortMessage: part.shortMessage,
    });
    if (answer.status === null) return { ok: false, status: null, temporary: true, reason: answer.reason };
    this.metrics?.submitSeconds.observe({ connector: this.name }, (performance.now() - started) / 1000);
    if (answer.messageId !== null && answer.status === CommandStatus.ESME_ROK) {
      if (answer.messageId === '')
        return {
          ok: false,
          status: null,
          temporary: true,
          reason: 'carrier answered with an empty message id',
        };
      return { ok: true, carrierId: answer.messageId };
    }
    if (answer.status === CommandStatus.ESME_RTHROTTLED) {
      this.throttleEvents++;
      this.metrics?.throttled.inc({ connector: this.name });
      this.adaptive.onThrottled();
    }
    return {
      ok: false,
      status: answer.status,
      temporary: isTemporaryError(answer.status),
      reason: describeStatus(answer.status),
    };
  }

  private transmitters(): LinkBind[] {
    const out: LinkBind[] = [];
    for (const b of this.binds)
      if (b.mode !== 'receiver' && b.session && b.session.closedReason === null) out.push(b.session);
    return out;
  }

  private leastLoaded(): LinkBind | null {
    let best: LinkBind | null = null;
    for (const s of this.transmitters()) {
      if (s.outstanding < this.config.window && (!best || s.outstanding < best.outstanding)) best = s;
    }
    return best;
  }

  private async keepBound(bind: Bind, index: number): Promise<void> {
    let delay = this.config.reconnect_min_ms;
    while (this.running) {
      try {
        const session = await this.link.bind(
          {
            host: this.config.host,
            port: this.config.port,
            tls: this.tls,
            mode: bind.mode,
            systemId: this.config.system_id,
            password: this.config.password,
            systemType: this.config.system_type,
            connectTimeoutMs: this.config.connect_timeout_ms,
            session: {
              responseTimeoutMs: this.config.response_timeout_ms,
              enquireLinkIntervalMs: this.config.enquire_link_interval_ms,
            },
          },
          (event, session) => this.onIncoming(event, session),
        );
        if (!this.running) {
          await session.unbind(500);
          return;
        }
        bind.session = session;
        delay = this.config.reconnect_min_ms;
        this.log.info({ connector: this.name, bind: index, mode: bind.mode }, 'bound');
        this.handlers.onStateChange(this.name);
        const reason = await session.closed;
        bind.session = null;
        this.handlers.onStateChange(this.name);
        if (this.running)
          this.log.warn({ connector: this.name, bind: index, reason }, 'bind lost; reconnecting');
      } catch (err) {
        this.log.warn(
          { connector: this.name, bind: index, err: (err as Error).message, retry_in_ms: delay },
          'bind failed',
        );
      }
      if (!this.running) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wakeReconnect.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      this.wakeReconnect = [];
      delay = Math.min(this.config.reconnect_max_ms, delay * 2);
    }
  }

  /** Receipts and inbound messages from the carrier, acknowledged once stored. */
  private onIncoming(event: Incoming, session: LinkBind): void {
    const carrierWaiting = session.received();
    const stored =
      event.kind === 'receipt'
        ? this.handlers.onReceipt(this.name, event.receipt, carrierWaiting)
        : this.handlers.onInbound(this.name, event.message);
    stored.then(
      () => session.ack(event.sequence, CommandStatus.ESME_ROK),
      (err: Error) => {
        // Not stored: a temporary error makes the carrier send it again later.
        this.log.error({ connector: this.name, err: err.message }, 'could not store an incoming deliver_sm');
        session.ack(event.sequence, CommandStatus.ESME_RX_T_APPN);
      },
    );
  }
}
