// The built-in carrier: an SMPP 3.4 SMSC that accepts submit_sm, answers with message ids, sends
// delivery receipts and mobile-originated messages, and misbehaves on demand (rejects, throttling,
// undeliverable and expired receipts, dropped connections, stalls). Tests, benchmarks and the README's
// first run send through it over real TCP.

import type { Server, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { TlsOptions } from 'node:tls';
import { createLogger, type Logger } from '../shared/logger.js';
import { readPemFile } from '../shared/pem-file.js';
import { CommandStatus } from '../smpp/constants.js';
import { createPdu, type Pdu, type SubmitSmPdu, type SubmitSmRespPdu } from '../smpp/pdu.js';
import { type BindRequest, createSmscServer } from '../smpp/server.js';
import type { SmppSession } from '../smpp/session.js';
import {
  buildMo,
  buildReceipt,
  finalState,
  firstMessageId,
  formatMessageId,
  type ReceiptJob,
  readSubmitContent,
  receiptJob,
  receiptTextId,
  type SubmitContent,
  submitRecord,
  wantsReceipt,
} from './content.js';
import { type DeliveryItem, DeliveryRouter, type Receiver } from './delivery.js';
import { listen } from './listen.js';
import {
  bindStatus,
  parseSimulatorOptions,
  type SimulatorOptions,
  type SimulatorOptionsInput,
} from './options.js';
import { createRandom, type Random } from './random.js';
import { Scheduler } from './scheduler.js';
import { SlidingWindow } from './sliding-window.js';
import { Stall } from './stall.js';
import { emptyStats, type SimulatorStats } from './stats.js';
import type { BoundSessionInfo, MoInput, SubmitRecord } from './types.js';

export type { BoundSessionInfo, MoInput, SubmitRecord } from './types.js';

interface Bound extends BoundSessionInfo {
  session: SmppSession;
  canSubmit: boolean;
  /** Set for receiver and transceiver binds. */
  receiver: Receiver | null;
}

interface PendingResponse {
  bound: Bound;
  pdu: SubmitSmRespPdu;
}

/** A receiver starts taking queued deliver_sm this long after its bind, so the ESME can set its handler. */
const RECEIVER_GRACE_MS = 20;

export class CarrierSimulator {
  /** Every submit_sm, when record_submits is on. Clear it with `received.length = 0` or reset(). */
  readonly received: SubmitRecord[] = [];
  /** Called for every submit_sm, whatever record_submits says. */
  onSubmit: ((record: SubmitRecord) => void) | null = null;

  private options: SimulatorOptions;
  private readonly logger: Logger;
  private random: Random;
  private counters: SimulatorStats = emptyStats();
  private readonly scheduler: Scheduler;
  private readonly router: DeliveryRouter;
  private readonly stall: Stall;
  private readonly receivedWindow = new SlidingWindow(1000);
  private readonly acceptedWindow = new SlidingWindow(1000);
  private readonly bound = new Set<Bound>();
  private server: Server | null = null;
  private nextId: number;
  private sessionSeq = 0;
  private moReference = 0;
  private stopped = false;

  constructor(options: SimulatorOptionsInput = {}, logger?: Logger) {
    this.options = parseSimulatorOptions(options);
    this.logger = logger ?? createLogger('silent');
    this.random = createRandom(this.options.seed);
    this.nextId = firstMessageId(this.random);
    this.scheduler = new Scheduler(
      () => performance.now(),
      (err) => this.logger.error({ err }, 'carrier simulator task failed'),
    );
    this.stall = new Stall(this.scheduler, () => this.router.pumpAll());
    this.router = new DeliveryRouter({
      options: () => this.options,
      stats: this.counters,
      scheduler: this.scheduler,
      now: () => performance.now(),
      held: () => this.stall.active(performance.now()),
    });
  }

  /** Listens; resolves with the port actually bound (useful with port 0). */
  async start(): Promise<{ port: number }> {
    if (this.server) throw new Error('carrier simulator already started');
    if (this.stopped) throw new Error('a stopped carrier simulator cannot be restarted; create a new one');
    const server = createSmscServer({
      systemId: this.options.system_id,
      session: { responseTimeoutMs: this.options.response_timeout_ms, enquireLinkIntervalMs: 0 },
      authenticate: (bind) => this.authenticate(bind),
      onBound: (session, bind) => this.onBound(session, bind),
      ...simulatorTls(this.options),
    });
    server.on('connection', (socket: Socket) => {
      this.stall.track(socket, performance.now());
    });
    this.server = server;
    const port = await listen(server, this.options.port, this.options.host);
    server.on('error', (err) => this.logger.error({ err }, 'carrier simulator server error'));
    this.logger.debug({ host: this.options.host, port }, 'carrier simulator listening');
    return { port };
  }

  /** Closes the listener and every connection; queued MO promises reject. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.scheduler.clear();
    this.router.stop();
    for (const b of this.bound) b.session.close('simulator stopped');
    for (const socket of this.stall.sockets) socket.destroy();
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Changes settings live (failure injection, delays, throttling…); host, port, system_id and TLS stay. */
  setOptions(partial: Partial<SimulatorOptionsInput>): SimulatorOptions {
    this.options = parseSimulatorOptions({ ...this.options, ...partial });
    if (partial.seed !== undefined) this.random = createRandom(this.options.seed);
    return this.options;
  }

  getOptions(): SimulatorOptions {
    return this.options;
  }

  stats(): SimulatorStats {
    return {
      ...this.counters,
      boundSessions: this.bound.size,
      queued: this.router.queued,
    };
  }

  /** Zeroes the counters and forgets the recorded submits. */
  reset(): void {
    const outstanding = this.counters.outstanding; // still owed answers
    Object.assign(this.counters, emptyStats(), { outstanding, maxOutstanding: outstanding });
    this.received.length = 0;
    this.receivedWindow.clear();
  }

  sessions(): BoundSessionInfo[] {
    return [...this.bound].map(({ id, systemId, mode }) => ({ id, systemId, mode }));
  }

  /**
   * Sends a mobile-originated message (deliver_sm, esm_class 0; GSM-7 or UCS-2, split with a UDH when
   * long) to a receiver/transceiver bind, queuing it until one binds. Resolves with the deliver_sm_resp
   * status (the first non-zero one for a multipart message); rejects if it cannot be delivered at all.
   */
  async sendMo(input: MoInput): Promise<number> {
    if (this.stopped) throw new Error('simulator stopped');
    const parts = buildMo(input.from, input.to, input.text, this.moReference++);
    const receivers = [...this.bound].filter((b) => b.receiver !== null);
    const systemId =
      input.systemId ??
      receivers[0]?.systemId ??
      (this.options.accounts?.length === 1 ? this.options.accounts[0]!.system_id : null);
    let target: Receiver | null = null;
    if (input.sessionIndex !== undefined) {
      const candidates = receivers.filter((b) => systemId === null || b.systemId === systemId);
      target = candidates[input.sessionIndex]?.receiver ?? null;
      if (!target)
        throw new RangeError(`no receiver session #${input.sessionIndex} for ${systemId ?? 'any'}`);
    }
    return this.router.deliverMo(parts, systemId, target);
  }

  private authenticate(bind: BindRequest): number {
    const status = bindStatus(this.options, bind.systemId, bind.password);
    if (status !== CommandStatus.ESME_ROK) {
      this.counters.bindsRefused++;
      this.logger.info({ system_id: bind.systemId, status }, 'carrier simulator refused a bind');
    }
    return status;
  }

  private onBound(session: SmppSession, bind: BindRequest): void {
    if (this.stopped) {
      session.close('simulator stopped');
      return;
    }
    const id = ++this.sessionSeq;
    const canReceive = bind.mode !== 'transmitter';
    const b: Bound = {
      id,
      systemId: bind.systemId,
      mode: bind.mode,
      session,
      canSubmit: bind.mode !== 'receiver',
      receiver: canReceive ? { id, systemId: bind.systemId, session, inFlight: 0 } : null,
    };
    this.bound.add(b);
    this.counters.binds++;
    session.onRequest = (pdu) => this.onRequest(b, pdu);
    session.once('close', (reason: string) => {
      this.bound.delete(b);
      if (b.receiver) this.router.removeReceiver(b.receiver);
      this.logger.debug({ session: id, reason }, 'carrier simulator session closed');
    });
    if (b.receiver) {
      const receiver = b.receiver;
      setTimeout(() => {
        if (!session.closed && !this.stopped) this.router.addReceiver(receiver);
      }, RECEIVER_GRACE_MS).unref();
    }
    this.logger.debug({ session: id, system_id: bind.systemId, mode: bind.mode }, 'carrier simulator bind');
  }

  private onRequest(b: Bound, pdu: Pdu): void {
    switch (pdu.command) {
      case 'submit_sm':
        this.onSubmitSm(b, pdu);
        return;
      case 'bind_transceiver':
      case 'bind_transmitter':
      case 'bind_receiver':
        b.session.rejectRequest(pdu, CommandStatus.ESME_RALYBND);
        return;
      default:
        b.session.rejectRequest(pdu, CommandStatus.ESME_RINVCMDID);
    }
  }

  private onSubmitSm(b: Bound, pdu: SubmitSmPdu): void {
    const now = performance.now();
    const o = this.options;
    const c = this.counters;
    const n = ++c.submitsReceived;
    const tps = this.receivedWindow.add(now);
    if (tps > c.maxTpsObserved) c.maxTpsObserved = tps;
    if (++c.outstanding > c.maxOutstanding) c.maxOutstanding = c.outstanding;
    const recording = o.record_submits || this.onSubmit !== null;

    if (o.drop_after_submits > 0 && n % o.drop_after_submits === 0) {
      c.outstanding--;
      if (recording) this.record(now, b, pdu, null, null, readSubmitContent(pdu));
      this.drop(b, n);
      return;
    }
    if (o.stall_every_submits > 0 && o.stall_ms > 0 && n % o.stall_every_submits === 0) this.startStall(now);

    // Three draws per submit whatever the outcome, so a seed gives the same run for the same traffic.
    const rejectDraw = this.random();
    const outcomeDraw = this.random();
    const jitterDraw = this.random();

    let status: number = CommandStatus.ESME_ROK;
    if (!b.canSubmit) status = CommandStatus.ESME_RINVBNDSTS;
    else if (pdu.destinationAddr === '') status = CommandStatus.ESME_RINVDSTADR;
    else if (o.throttle_tps > 0 && this.acceptedWindow.count(now) >= o.throttle_tps)
      status = CommandStatus.ESME_RTHROTTLED;
    else {
      this.acceptedWindow.add(now);
      if (rejectDraw < o.reject_rate) status = o.reject_status;
    }

    if (status !== CommandStatus.ESME_ROK) {
      if (status === CommandStatus.ESME_RTHROTTLED) c.submitsThrottled++;
      else c.submitsRejected++;
      if (recording) this.record(now, b, pdu, null, status, readSubmitContent(pdu));
      this.respond(b, createPdu('submit_sm_resp', { sequence: pdu.sequence, status }), now);
      return;
    }

    c.submitsAccepted++;
    const number = this.nextId++;
    const messageId = formatMessageId(number, o.message_id_format);
    const state = finalState(outcomeDraw, o.undeliverable_rate, o.expired_rate);
    const wanted = o.receipts && wantsReceipt(pdu.registeredDelivery, state);
    const content = recording || wanted ? readSubmitContent(pdu) : null;
    if (recording) this.record(now, b, pdu, messageId, CommandStatus.ESME_ROK, content!);
    const resp = createPdu('submit_sm_resp', { sequence: pdu.sequence, messageId });
    if (!wanted) {
      this.respond(b, resp, now);
      return;
    }

    const job = receiptJob(pdu, {
      systemId: b.systemId,
      messageId,
      textId: receiptTextId(number, o.message_id_format, o.receipt_id_format),
      state,
      errorCode: state === 'undeliverable' ? o.undeliverable_error.padStart(3, '0') : '000',
      text: content!.text,
    });
    if (o.receipt_before_response) {
      // Written before the response: on the same connection the ESME reads the receipt first.
      const item: DeliveryItem = {
        kind: 'receipt',
        systemId: b.systemId,
        body: buildReceipt(job, Date.now()),
        attempts: 0,
      };
      if (b.receiver) this.router.sendOn(b.receiver, item);
      else this.router.enqueue(item);
      this.respond(b, resp, now);
      return;
    }
    const respondAt = this.respond(b, resp, now);
    const due = now + o.receipt_delay_ms + Math.floor(jitterDraw * (o.receipt_delay_jitter_ms + 1));
    this.scheduler.at(Math.max(due, respondAt), this.emitReceipt, job);
  }

  /** Sends (or schedules) a submit_sm_resp; returns when it goes out. */
  private respond(b: Bound, pdu: SubmitSmRespPdu, now: number): number {
    const delay = this.options.submit_response_delay_ms;
    if (delay === 0 && !this.stall.active(now)) {
      this.counters.outstanding--;
      b.session.respond(pdu);
      return now;
    }
    const at = Math.max(now + delay, this.stall.until);
    this.scheduler.at(at, this.writeResponse, { bound: b, pdu });
    return at;
  }

  private readonly writeResponse = (pending: PendingResponse): void => {
    this.counters.outstanding--;
    pending.bound.session.respond(pending.pdu);
  };

  private readonly emitReceipt = (job: ReceiptJob): void => {
    this.router.enqueue({
      kind: 'receipt',
      systemId: job.systemId,
      body: buildReceipt(job, Date.now()),
      attempts: 0,
    });
  };

  private record(
    at: number,
    b: Bound,
    pdu: SubmitSmPdu,
    messageId: string | null,
    status: number | null,
    content: SubmitContent,
  ): void {
    const record = submitRecord(at, b.systemId, b.id, pdu, messageId, status, content);
    if (this.options.record_submits) this.received.push(record);
    this.onSubmit?.(record);
  }

  /** Closes the connection without unbind, the submit unanswered (after the answers already written). */
  private drop(b: Bound, n: number): void {
    this.counters.connectionsDropped++;
    this.logger.info({ session: b.id, submits: n }, 'carrier simulator dropping a connection');
    const socket = b.session.socket;
    socket.uncork();
    socket.destroy();
  }

  /** Answers nothing, reads nothing and sends nothing for stall_ms. */
  private startStall(now: number): void {
    if (!this.stall.start(now, this.options.stall_ms)) return;
    this.counters.stalls++;
    this.logger.info({ stall_ms: this.options.stall_ms }, 'carrier simulator stalling');
  }
}

/** The TLS options of the SMPP listener, PEM files read now (a wrong path fails start()). */
function simulatorTls(options: SimulatorOptions): { tls?: TlsOptions } {
  if (!options.tls_cert_file || !options.tls_key_file) return {};
  const clientCa = options.tls_client_ca_file;
  return {
    tls: {
      cert: readPemFile('tls_cert_file', options.tls_cert_file),
      key: readPemFile('tls_key_file', options.tls_key_file),
      ...(clientCa
        ? { ca: readPemFile('tls_client_ca_file', clientCa), requestCert: true, rejectUnauthorized: true }
        : {}),
    },
  };
}
