import type { PartToSubmit, SmppConnector, SubmitResult } from '../carriers/smpp-connector.js';
import type { UrgentTaker } from '../messages/service.js';
import type { StatusChange } from '../messages/status.js';
import type { IntakeLease } from '../messages/writer.js';
import type { Metrics } from '../observability/metrics.js';
import { submitKey } from '../receipts/carrier-keys.js';
import type { ReceiptMatcher } from '../receipts/receipt-matcher.js';
import type { RoutingTable } from '../routing/routes.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { CommandStatus } from '../smpp/constants.js';
import { buildSubmitParts } from '../smpp/long-message.js';
import type { MessageTable } from '../store/schema.js';
import { FairQueue, type Schedulable } from './fair-queue.js';
import type { StatusRecorder } from './status-recorder.js';
import { relativeValidity } from './validity.js';
import { type ClaimedMessage, claimedMessage, type WorkQueue } from './work-queue.js';

export interface DispatcherOptions {
  /** Identifies this process's leases. */
  owner: string;
  leaseMs: number;
  /** How much work to hold in memory per connector, in seconds of its TPS. */
  bufferSeconds: number;
  /** …and at most this many parts per connector. */
  maxBufferedParts: number;
  /** Release every lease at start (single-node SQLite installations). */
  releaseStaleLeases: boolean;
  /**
   * Parts the carrier accepted whose outcome is not committed yet, at most. Past it, submitting
   * pauses until the recorder catches up: after a crash these are the parts sent twice, so this caps
   * the duplicates (with the submits in flight).
   */
  maxUnrecorded: number;
  /** How long the fill loop sleeps when nothing wakes it (scheduled and retried work). */
  pollMs: number;
  metrics?: Metrics | undefined;
}

interface Job {
  message: ClaimedMessage;
  connector: SmppConnector;
  parts: PartToSubmit[];
  carrierIds: (string | null)[];
  remaining: number;
  done: boolean;
  /** A part went to the connector: the message can no longer be recalled. */
  started: boolean;
  /** Settles when the job's outcome is committed (receipts of its parts wait for it). */
  recorded: Promise<void>;
  markRecorded: () => void;
}

interface PartItem extends Schedulable {
  job: Job;
  index: number;
  attempts: number;
}

/** Temporary failures of one part retried in memory before the message goes back to the queue. */
const MAX_PART_ATTEMPTS = 5;
/**
 * Parts claimed per transaction at most. An OTP's intake waits for the transaction running when it
 * arrives: on SQLite, a claim of 1,000 held the main thread about 11 ms, and chunks of 250 took the
 * urgent-latency benchmark's p99 from 35 to 27 ms (docs/architecture.md).
 */
const CLAIM_CHUNK = 250;

/**
 * Moves queued messages to carriers. It leases work from the queue (urgent lanes claimed the moment
 * they are committed), routes each message, splits it into parts, and feeds each connector from its
 * own FairQueue (otp/transactional strictly before bulk, fair across tenants) as fast as the
 * connector's window and TPS allow. Outcomes go to the StatusRecorder in order; a message leaves
 * the queue only when the carrier has taken every part (`submitted`) or refused it.
 *
 * At-least-once toward the carrier: a part whose submit_sm was sent but whose answer was not recorded
 * before a crash is sent again after the lease ends (see docs/architecture.md for the bound).
 */
export class Dispatcher implements UrgentTaker {
  private readonly queues = new Map<string, FairQueue<PartItem>>();
  private readonly held = new Map<string, Job>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private running = false;
  private fillLoop: Promise<void> | null = null;
  private wakeFill: (() => void) | null = null;
  private fillRequested = false;
  private urgentClaim: Promise<void> | null = null;
  private urgentAgain = false;
  private renewTimer: NodeJS.Timeout | null = null;
  private inFlight = 0;
  private unrecorded = 0;
  /** Outcome commits in progress (awaited at stop). */
  private readonly recording = new Set<Promise<unknown>>();
  private idleWaiters: (() => void)[] = [];
  private nextReference = Math.floor(Math.random() * 256);

  constructor(
    private readonly workQueue: WorkQueue,
    private readonly connectors: Map<string, SmppConnector>,
    private readonly routing: RoutingTable,
    private readonly recorder: StatusRecorder,
    private readonly matcher: ReceiptMatcher,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly options: DispatcherOptions,
  ) {
    for (const name of connectors.keys()) this.queues.set(name, new FairQueue<PartItem>());
  }

  async start(): Promise<void> {
    if (this.running) return;
    if (this.options.releaseStaleLeases) {
      const released = await this.workQueue.releaseEveryLease();
      if (released > 0) this.log.info({ released }, 'released leases left by a previous run');
    }
    this.running = true;
    this.fillLoop = this.runFill();
    this.renewTimer = setInterval(() => {
      if (this.held.size > 0) {
        this.workQueue
          .renewLeases(this.options.owner, [...this.held.keys()], this.options.leaseMs)
          .catch((err) => this.log.error({ err }, 'could not renew leases'));
      }
    }, this.options.leaseMs / 3);
    this.renewTimer.unref();
  }

  /** Stops claiming, lets submits in flight finish (bounded by the response timeout), returns the rest. */
  async stop(): Promise<void> {
    this.running = false;
    this.wakeFill?.();
    await this.fillLoop;
    await this.urgentClaim;
    if (this.renewTimer) clearInterval(this.renewTimer);
    for (const t of this.timers.values()) clearTimeout(t);
    for (const q of this.queues.values()) q.drain();
    if (this.inFlight > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
    // Outcomes still being committed touch the same queue rows: releasing before they are done
    // deadlocked on PostgreSQL (seen once under load).
    await Promise.allSettled(this.recording);
    await this.workQueue.releaseAll(this.options.owner);
  }

  /** New work was committed; `urgent` when it includes otp or transactional messages. */
  notify(urgent: boolean): void {
    if (urgent) this.claimUrgent();
    this.fillRequested = true;
    this.wakeFill?.();
  }

  /** A connector bound or lost a bind. */
  connectorChanged(name: string): void {
    const connector = this.connectors.get(name);
    if (connector) this.pump(connector);
    this.fillRequested = true;
    this.wakeFill?.();
  }

  /**
   * A campaign was cancelled: its messages held here with no part sent yet end with `outcome` now,
   * through the recorder like any outcome, rather than go out in the next second of the buffer.
   * Those with a part already at the connector go on (the carrier may have it). Resolves, with how
   * many, once their outcome is committed.
   */
  async recall(campaignId: string, outcome: Omit<StatusChange, 'messageId'>): Promise<number> {
    const recorded: Promise<unknown>[] = [];
    for (const job of this.held.values()) {
      if (job.done || job.started || job.message.campaign_id !== campaignId) continue;
      recorded.push(this.finish(job, { ...outcome, messageId: job.message.id }));
    }
    if (recorded.length > 0) for (const q of this.queues.values()) q.removeWhere((item) => item.job.done);
    await Promise.all(recorded);
    return recorded.length;
  }

  /** Parts waiting in memory per connector (for metrics). */
  buffered(): Record<string, number> {
    return Object.fromEntries([...this.queues].map(([n, q]) => [n, q.size]));
  }

  private claimUrgent(): void {
    if (!this.running) return;
    if (this.urgentClaim) {
      this.urgentAgain = true;
      return;
    }
    this.urgentClaim = (async () => {
      do {
        this.urgentAgain = false;
        const room = this.wanted(true);
        if (room > 0) await this.claim(Math.min(500, room), 'transactional');
      } while (this.urgentAgain && this.running);
    })()
      .catch((err) => this.log.error({ err }, 'urgent claim failed'))
      .finally(() => {
        this.urgentClaim = null;
      });
  }

  private async runFill(): Promise<void> {
    while (this.running) {
      this.fillRequested = false;
      let claimed = 0;
      let wanted = 0;
      try {
        wanted = this.wanted();
        if (wanted > 0) claimed = await this.claim(wanted, 'bulk');
      } catch (err) {
        this.log.error({ err }, 'claim failed');
      }
      if (!this.running) break;
      if ((wanted > 0 && claimed >= wanted) || this.fillRequested) continue;
      // Until new work is committed, a connector comes up, half the buffer is used (pump), or a poll
      // for scheduled and retried work.
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.wakeFill = null;
          resolve();
        };
        const timer = setTimeout(done, this.options.pollMs);
        this.wakeFill = done;
      });
    }
  }

  /**
   * Parts to claim so each bound connector holds `bufferSeconds` of its TPS in memory. For urgent
   * claims only urgent parts count: a full bulk buffer never keeps an otp in the database, but a
   * flood of urgent traffic is not all pulled into memory either.
   */
  private wanted(urgentOnly = false): number {
    let want = 0;
    for (const [name, c] of this.connectors) {
      if (c.boundTransmitters === 0) continue;
      const target = this.bufferTarget(c);
      const queue = this.queues.get(name)!;
      const held = urgentOnly ? queue.sizeOf('otp') + queue.sizeOf('transactional') : queue.size;
      // Bulk refills once half the buffer is used, up to CLAIM_CHUNK parts a claim, rather than a few
      // rows per free slot (the profile showed claims of ~12 rows, 80 transactions a second). Claims
      // follow one another while the buffer stays at or below half. Urgent work is never held back.
      if (urgentOnly || held <= target / 2) want += Math.max(0, target - held);
    }
    return Math.min(want, CLAIM_CHUNK);
  }

  /** Parts to hold in memory for a connector. */
  private bufferTarget(c: SmppConnector): number {
    // Held work stays leased at the head of the queue, and every claim steps over it: a 50,000 TPS
    // connector held 50,000 parts, and the claims scanned them (profiled on PostgreSQL: 51 µs a row).
    return Math.max(
      c.config.window * c.config.binds * 2,
      Math.min(Math.ceil(c.currentTps * this.options.bufferSeconds), this.options.maxBufferedParts),
    );
  }

  private async claim(limit: number, upToLane: 'transactional' | 'bulk'): Promise<number> {
    // With no carrier bound, claiming would only shuffle leases: the work waits in the queue.
    if (![...this.connectors.values()].some((c) => c.boundTransmitters > 0)) return 0;
    const claimed = await this.workQueue.claim({
      owner: this.options.owner,
      limit,
      leaseMs: this.options.leaseMs,
      upToLane,
    });
    await this.accept(claimed);
    return claimed.length;
  }

  /**
   * UrgentTaker, for intake: urgent messages may be committed already leased to this dispatcher
   * while it runs, has a carrier bound, and has room for urgent work.
   */
  lease(): IntakeLease | null {
    if (!this.running || this.wanted(true) <= 0) return null;
    return { owner: this.options.owner, until: this.clock.now() + this.options.leaseMs };
  }

  /** UrgentTaker: urgent messages just committed under lease(). */
  take(rows: MessageTable[]): void {
    const messages = rows.map((row) => claimedMessage({ ...row, attempts: 0 }));
    const handled = this.running
      ? this.accept(messages)
      : // Stopped meanwhile: give the leases back at once rather than let them run out.
        this.workQueue.retryLater(
          this.options.owner,
          messages.map((m) => m.id),
          this.clock.now(),
          false,
        );
    handled.catch((err) => this.log.error({ err }, 'could not take urgent messages from intake'));
  }

  /** Leased messages: routed, held in memory per connector, and submitted as the connectors allow. */
  private async accept(claimed: ClaimedMessage[]): Promise<void> {
    const touched = new Set<SmppConnector>();
    const unroutable: StatusChange[] = [];
    const noCarrier: string[] = [];
    for (const message of claimed) {
      if (this.held.has(message.id)) continue;
      const names = this.routing.connectorsFor({
        to: message.to,
        country: message.country,
        tenant_id: message.tenant_id,
        lane: message.lane,
      });
      const connector = names.map((n) => this.connectors.get(n)).find((c) => c && c.boundTransmitters > 0);
      if (names.length === 0) {
        unroutable.push({
          messageId: message.id,
          status: 'failed',
          errorCode: 'no_route',
          errorReason: 'no route matches this destination',
        });
        continue;
      }
      if (!connector) {
        noCarrier.push(message.id);
        continue;
      }
      this.hold(message, connector);
      touched.add(connector);
    }
    for (const c of touched) this.pump(c);
    if (unroutable.length > 0) void this.recorder.record({ changes: unroutable });
    if (noCarrier.length > 0) {
      // Every carrier of the route is down: try again shortly, the binds reconnect on their own.
      await this.workQueue.retryLater(this.options.owner, noCarrier, this.clock.now() + 2000, false);
    }
  }

  private hold(message: ClaimedMessage, connector: SmppConnector): void {
    const reference = this.nextReference;
    this.nextReference = (this.nextReference + 1) & 0xff;
    const validity = relativeValidity(message.expires_at - this.clock.now());
    const parts = buildSubmitParts(message.text, reference).map((p) => ({
      to: message.to,
      from: message.from,
      dataCoding: p.dataCoding,
      esmClass: p.esmClass,
      shortMessage: p.shortMessage,
      validityPeriod: validity,
    }));
    let markRecorded = () => {};
    const recorded = new Promise<void>((resolve) => {
      markRecorded = resolve;
    });
    const job: Job = {
      message,
      connector,
      parts,
      carrierIds: parts.map(() => null),
      remaining: parts.length,
      done: false,
      started: false,
      recorded,
      markRecorded,
    };
    this.held.set(message.id, job);
    const queue = this.queues.get(connector.name)!;
    parts.forEach((_, index) => {
      queue.push({ lane: message.lane, flow: message.tenant_id, cost: 1, job, index, attempts: 0 });
    });
  }

  private pump(connector: SmppConnector): void {
    const queue = this.queues.get(connector.name)!;
    while (queue.size > 0 && this.running) {
      if (this.unrecorded >= this.options.maxUnrecorded) return; // finish() pumps again once recorded
      const urgentNext = queue.sizeOf('otp') + queue.sizeOf('transactional') > 0;
      const wait = connector.readiness(urgentNext);
      if (wait === null) return; // window full or not bound: a response or a bind calls pump again
      if (wait > 0) {
        if (!this.timers.has(connector.name)) {
          this.timers.set(
            connector.name,
            setTimeout(() => {
              this.timers.delete(connector.name);
              this.pump(connector);
            }, wait),
          );
        }
        return;
      }
      const item = queue.pop()!;
      // Half the buffer used: refill now. Without new intake to wake it, the fill loop would sleep
      // out its poll while the connector ran dry (seen at the end of the throughput benchmark).
      if (this.wakeFill && queue.size <= this.bufferTarget(connector) / 2) this.wakeFill();
      if (item.job.done) continue;
      if (item.job.message.expires_at <= this.clock.now()) {
        this.finish(item.job, {
          messageId: item.job.message.id,
          status: 'expired',
          errorCode: 'validity_expired',
          errorReason: 'the validity period ended before the carrier took the message',
        });
        continue;
      }
      item.job.started = true;
      this.inFlight++;
      void connector.submit(item.job.parts[item.index]!, item.job.message.lane !== 'bulk').then((result) => {
        this.inFlight--;
        this.onResult(item, result);
        if (this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
        this.pump(connector);
      });
    }
  }

  private onResult(item: PartItem, result: SubmitResult): void {
    const job = item.job;
    if (job.done) return;
    const connector = job.connector;
    if (result.ok) {
      this.unrecorded++;
      job.carrierIds[item.index] = result.carrierId;
      this.matcher.register(connector.name, submitKey(result.carrierId, connector.config.receipt_id_format), {
        messageId: job.message.id,
        partNo: item.index + 1,
        after: job.recorded,
      });
      if (--job.remaining === 0) {
        this.finish(job, {
          messageId: job.message.id,
          status: 'submitted',
          connector: connector.name,
          parts: job.carrierIds.map((carrierId, i) => ({
            partNo: i + 1,
            connector: connector.name,
            carrierId,
            carrierKey: submitKey(carrierId!, connector.config.receipt_id_format),
            status: 'submitted' as const,
          })),
        });
      }
      return;
    }
    if (!result.temporary) {
      const code = `0x${(result.status ?? 0).toString(16).padStart(8, '0').toUpperCase()}`;
      this.finish(job, {
        messageId: job.message.id,
        status: 'rejected',
        connector: connector.name,
        errorCode: code,
        errorReason: `the carrier refused part ${item.index + 1}: ${result.reason}`,
      });
      return;
    }
    const queue = this.queues.get(connector.name)!;
    if (result.status === CommandStatus.ESME_RTHROTTLED) {
      // The connector has already slowed down; the part keeps its place at the head of its flow.
      queue.pushFront(item);
      return;
    }
    item.attempts++;
    if (item.attempts < MAX_PART_ATTEMPTS && this.running) {
      const delay = 250 * 2 ** item.attempts;
      this.log.warn(
        { message_id: job.message.id, part: item.index + 1, reason: result.reason, retry_in_ms: delay },
        'submit failed, retrying',
      );
      setTimeout(() => {
        if (job.done) return;
        queue.pushFront(item);
        this.pump(connector);
      }, delay).unref();
      return;
    }
    // Still failing: the message goes back to the queue for a later try, while its validity lasts.
    // Its parts already accepted will be sent again: counted as unrecorded until the requeue commits.
    job.done = true;
    job.markRecorded();
    this.unrecorded -= job.carrierIds.filter((c) => c !== null).length;
    this.held.delete(job.message.id);
    void this.workQueue
      .retryLater(this.options.owner, [job.message.id], this.clock.now() + 30_000, true)
      .catch((err) => this.log.error({ err, message_id: job.message.id }, 'could not requeue a message'));
  }

  /** Records a job's outcome; the lease is dropped only once the outcome is committed. */
  private finish(job: Job, change: StatusChange): Promise<unknown> {
    job.done = true;
    this.options.metrics?.outcomes.inc({ status: change.status, connector: job.connector.name });
    const accepted = job.carrierIds.filter((c) => c !== null).length;
    const recording: Promise<unknown> = this.recorder
      .record({ changes: [change] })
      .then(
        () => this.held.delete(job.message.id),
        (err) => this.log.error({ err, message_id: job.message.id }, 'could not record an outcome'),
      )
      .finally(() => {
        job.markRecorded();
        const wasBlocked = this.unrecorded >= this.options.maxUnrecorded;
        this.unrecorded -= accepted;
        if (wasBlocked && this.unrecorded < this.options.maxUnrecorded) {
          for (const c of this.connectors.values()) this.pump(c);
        }
        this.recording.delete(recording);
      });
    this.recording.add(recording);
    return recording;
  }
}
