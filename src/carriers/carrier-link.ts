import { Worker } from 'node:worker_threads';
import { workerScript } from '../shared/worker-script.js';
import type { DeliveryReceipt, ReceiptState } from '../smpp/receipt.js';
import {
  type Batch,
  type BindRequest,
  EV_LENGTH,
  Ev,
  Op,
  pushSubmit,
  RecordBatcher,
  type SubmitFields,
} from './link-protocol.js';
import type { InboundMessage } from './smpp-connector.js';

/** A submit_sm's answer: the carrier's (status, and message_id unless a generic_nack), or none. */
export type SubmitAnswer = { status: number; messageId: string | null } | { status: null; reason: string };

/** A deliver_sm from the carrier; answer it with `LinkBind.ack` once it is stored. */
export type Incoming =
  | { kind: 'receipt'; sequence: number; receipt: DeliveryReceipt }
  | { kind: 'inbound'; sequence: number; message: InboundMessage };

interface BindEntry {
  bind: LinkBind;
  /** Settle `bind()`'s promise; null once settled. */
  bound: ((bind: LinkBind) => void) | null;
  failed: ((err: Error) => void) | null;
  incoming(event: Incoming, bind: LinkBind): void;
}

/**
 * The main thread's side of the carrier link thread (link-thread.ts), which holds every SMPP session:
 * its socket I/O, PDU codec and receipt parsing, about 12% of the main thread's busy time in the
 * end-to-end benchmark, where the main thread is the limit (docs/architecture.md).
 *
 * Commands and events travel in one batch per event-loop turn each way (link-protocol.ts). The thread
 * starts with the first bind. If it fails or exits, its binds close (the connectors bind again, on a
 * new thread), and the submits it held get no answer: what a lost connection gives, and handled the
 * same way (sent again, at least once). Deliver_sm it had not answered are sent again by the carrier.
 */
export class CarrierLink {
  private worker: Worker | null = null;
  private readonly commands = new RecordBatcher((batch) => (this.worker ?? this.spawn()).postMessage(batch));
  private nextId = 1;
  private readonly binds = new Map<number, BindEntry>();
  private readonly submits = new Map<number, (answer: SubmitAnswer) => void>();

  /**
   * Opens a bind on the thread; resolves once bound, rejects with the bind's error. `incoming` may be
   * called before it resolves: carriers flush queued receipts right after bind_resp.
   */
  bind(request: BindRequest, incoming: (event: Incoming, bind: LinkBind) => void): Promise<LinkBind> {
    const id = this.nextId++;
    return new Promise<LinkBind>((resolve, reject) => {
      this.binds.set(id, { bind: new LinkBind(this, id), bound: resolve, failed: reject, incoming });
      this.send(Op.BIND, id, request);
    });
  }

  /** Ends the thread: every bind closes, every submit still on it gets no answer. */
  async close(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    this.gone(worker, 'carrier link stopped');
    await worker.terminate();
  }

  /** @internal LinkBind's */
  submit(bindId: number, fields: SubmitFields): Promise<SubmitAnswer> {
    const token = this.nextId++;
    return new Promise<SubmitAnswer>((resolve) => {
      this.submits.set(token, resolve);
      pushSubmit(this.commands.open(), bindId, token, fields);
    });
  }

  /** @internal LinkBind's */
  send(...record: Batch): void {
    this.commands.push(...record);
  }

  private spawn(): Worker {
    const worker = new Worker(workerScript(import.meta.url, 'link-thread.js'));
    // The sessions do not keep the process alive; `relais start` has its HTTP server for that.
    worker.unref();
    worker.on('message', (batch: Batch) => this.receive(batch));
    worker.on('error', (err) => this.gone(worker, `carrier link thread failed: ${err.message}`));
    worker.on('exit', (code) => this.gone(worker, `carrier link thread exited (${code})`));
    this.worker = worker;
    return worker;
  }

  private gone(worker: Worker, reason: string): void {
    if (this.worker !== worker) return;
    this.worker = null;
    this.commands.clear();
    const binds = [...this.binds.entries()];
    const submits = [...this.submits.values()];
    this.binds.clear();
    this.submits.clear();
    for (const answer of submits) answer({ status: null, reason });
    for (const [, entry] of binds) {
      entry.bind.markClosed(reason);
      entry.failed?.(new Error(reason));
    }
  }

  private receive(batch: Batch): void {
    for (let at = 0; at < batch.length; at += 1 + EV_LENGTH[batch[at] as number]!) {
      const v = (i: number) => batch[at + 1 + i];
      switch (batch[at]) {
        case Ev.ANSWER: {
          const status = v(1) as number;
          this.answer(v(0) as number, { status, messageId: v(2) as string | null });
          break;
        }
        case Ev.NO_ANSWER:
          this.answer(v(0) as number, { status: null, reason: v(1) as string });
          break;
        case Ev.RECEIPT: {
          const date = (ms: unknown) => (ms === null ? null : new Date(ms as number));
          this.deliver(v(0) as number, {
            kind: 'receipt',
            sequence: v(1) as number,
            receipt: {
              carrierId: v(2) as string,
              state: v(3) as ReceiptState,
              errorCode: v(4) as string | null,
              submitDate: date(v(5)),
              doneDate: date(v(6)),
            },
          });
          break;
        }
        case Ev.INBOUND:
          this.deliver(v(0) as number, {
            kind: 'inbound',
            sequence: v(1) as number,
            message: {
              from: v(2) as string,
              to: v(3) as string,
              dataCoding: v(4) as number,
              esmClass: v(5) as number,
              shortMessage: Buffer.from(v(6) as string, 'latin1'),
            },
          });
          break;
        case Ev.BOUND: {
          const entry = this.binds.get(v(0) as number);
          entry?.bound?.(entry.bind);
          if (entry) entry.bound = entry.failed = null;
          break;
        }
        case Ev.BIND_FAILED:
        case Ev.CLOSED: {
          const entry = this.binds.get(v(0) as number);
          this.binds.delete(v(0) as number);
          entry?.bind.markClosed(v(1) as string);
          entry?.failed?.(new Error(v(1) as string));
          break;
        }
        default:
          throw new Error(`carrier link: unknown event ${String(batch[at])}`);
      }
    }
  }

  private deliver(bindId: number, event: Incoming): void {
    const entry = this.binds.get(bindId);
    entry?.incoming(event, entry.bind);
  }

  private answer(token: number, answer: SubmitAnswer): void {
    const resolve = this.submits.get(token);
    if (!resolve) return; // the thread was replaced meanwhile; answered as lost already
    this.submits.delete(token);
    resolve(answer);
  }
}

/**
 * deliver_sm windows up to this size are committed as soon as they fill (LinkBind.received). At 32
 * unanswered, the receipts' quiet time (5 ms) still lets a carrier send thousands a second.
 */
const SMALL_DELIVER_WINDOW = 32;

/** One bound SMPP session on the carrier link thread. */
export class LinkBind {
  /** Set once the session is gone (the carrier, a timeout, unbind, or the thread). */
  closedReason: string | null = null;
  /** submit_sm sent on this session and not answered yet: the window in use. */
  outstanding = 0;
  /** deliver_sm received on this session and not answered yet. */
  private unanswered = 0;
  /** The most deliver_sm ever unanswered at once here: the carrier's window, once it has filled it. */
  private widestUnanswered = 0;
  /** Resolves with the reason once the session is gone. */
  readonly closed: Promise<string>;
  private resolveClosed: (reason: string) => void = () => {};

  constructor(
    private readonly link: CarrierLink,
    readonly id: number,
  ) {
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
  }

  async submit(fields: SubmitFields): Promise<SubmitAnswer> {
    if (this.closedReason !== null)
      return { status: null, reason: `SMPP session closed: ${this.closedReason}` };
    this.outstanding++;
    try {
      return await this.link.submit(this.id, fields);
    } finally {
      this.outstanding--;
    }
  }

  /**
   * Counts a deliver_sm received, until its ack. True when the carrier may now be waiting for an
   * answer before it sends more: as many are unanswered as ever were, and that is a small window.
   *
   * Why: receipts are recorded in batches that gather for a while (carrier-service.ts), and a
   * deliver_sm is answered once its batch is on disk. A carrier that keeps one deliver_sm
   * outstanding at a time got about 90 answers a second per bind, each receipt waiting out the
   * batch's 5 ms quiet time; with a window of 10, 540–650 (docs/benchmarks.md). Committed as soon
   * as the window is full, they go at the speed of a commit. Past SMALL_DELIVER_WINDOW this never
   * answers true: such windows are no limit to the quiet-time rule, and keep their larger batches.
   */
  received(): boolean {
    this.unanswered++;
    if (this.unanswered > this.widestUnanswered) this.widestUnanswered = this.unanswered;
    return this.unanswered >= this.widestUnanswered && this.widestUnanswered <= SMALL_DELIVER_WINDOW;
  }

  /** Answers an incoming deliver_sm (deliver_sm_resp with `status`). */
  ack(sequence: number, status: number): void {
    if (this.unanswered > 0) this.unanswered--;
    if (this.closedReason === null) this.link.send(Op.ACK, this.id, sequence, status);
  }

  /** Sends unbind, waits up to `timeoutMs` for its answer, and resolves once the session is closed. */
  async unbind(timeoutMs: number): Promise<void> {
    if (this.closedReason === null) this.link.send(Op.UNBIND, this.id, timeoutMs);
    await this.closed;
  }

  /** @internal CarrierLink's */
  markClosed(reason: string): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    this.resolveClosed(reason);
  }
}
