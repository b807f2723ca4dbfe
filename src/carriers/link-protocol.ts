import type { ConnectionOptions } from 'node:tls';
import type { BindMode } from '../smpp/client.js';
import type { SessionOptions } from '../smpp/session.js';

/**
 * What the main thread and the carrier link thread (link-thread.ts) say to each other.
 *
 * Each side sends one batch per event-loop turn: a flat array of records, each an opcode followed by
 * a fixed number of values for that opcode. Flat, not an array of objects: structured cloning copies
 * every property name of every object, and an object per submit cost 0.6 µs to post against 0.24
 * for the same values flat (measured with 100 submits per message). The hot records (submits, their
 * answers, receipts, acknowledgements) are all strings and numbers for that reason; message bodies
 * travel as latin1 strings, because a pooled Buffer would be cloned with its whole 8 KiB pool.
 */

/** Main → thread. */
export const Op = {
  /** [BIND, bindId, BindRequest] */
  BIND: 1,
  /** [SUBMIT, bindId, token, ...SUBMIT_FIELDS] */
  SUBMIT: 2,
  /** [ACK, bindId, sequence, status]: the deliver_sm_resp of an incoming deliver_sm. */
  ACK: 3,
  /** [UNBIND, bindId, timeoutMs] */
  UNBIND: 4,
} as const;

/** Values after the opcode, per opcode. */
export const OP_LENGTH: Record<number, number> = {
  [Op.BIND]: 2,
  [Op.SUBMIT]: 14,
  [Op.ACK]: 3,
  [Op.UNBIND]: 2,
};

/** Thread → main. */
export const Ev = {
  /** [BOUND, bindId] */
  BOUND: 1,
  /** [BIND_FAILED, bindId, message] */
  BIND_FAILED: 2,
  /** [CLOSED, bindId, reason] */
  CLOSED: 3,
  /** [ANSWER, token, command_status, message_id]: message_id null for a generic_nack. */
  ANSWER: 4,
  /** [NO_ANSWER, token, reason]: timeout or connection lost; the carrier may or may not have it. */
  NO_ANSWER: 5,
  /** [RECEIPT, bindId, sequence, carrierId, state, errorCode, submitDate ms, doneDate ms] */
  RECEIPT: 6,
  /** [INBOUND, bindId, sequence, from, to, dataCoding, esmClass, shortMessage latin1] */
  INBOUND: 7,
} as const;

export const EV_LENGTH: Record<number, number> = {
  [Ev.BOUND]: 1,
  [Ev.BIND_FAILED]: 2,
  [Ev.CLOSED]: 2,
  [Ev.ANSWER]: 3,
  [Ev.NO_ANSWER]: 2,
  [Ev.RECEIPT]: 7,
  [Ev.INBOUND]: 7,
};

export type Batch = (string | number | null | BindRequest)[];

/**
 * The records one side sends in this turn of the event loop, handed to `deliver` as one batch once
 * the turn's synchronous work is done (a dispatcher pump submits dozens in one go).
 */
export class RecordBatcher {
  private out: Batch = [];

  constructor(private readonly deliver: (batch: Batch) => void) {}

  /** This turn's batch, to append one whole record to. */
  open(): Batch {
    if (this.out.length === 0) process.nextTick(() => this.flush());
    return this.out;
  }

  push(...record: Batch): void {
    const batch = this.open();
    for (const v of record) batch.push(v);
  }

  /** Drops what has not been delivered yet. */
  clear(): void {
    this.out = [];
  }

  private flush(): void {
    const batch = this.out;
    this.out = [];
    if (batch.length > 0) this.deliver(batch);
  }
}

/** A bind to open on the thread: bindToSmsc's options, without the request handler. */
export interface BindRequest {
  host: string;
  port: number;
  tls: boolean | ConnectionOptions;
  mode: BindMode;
  systemId: string;
  password: string;
  systemType: string;
  connectTimeoutMs: number;
  session: SessionOptions;
}

/** The submit_sm fields a connector sets, in the order SUBMIT carries them. */
export interface SubmitFields {
  serviceType: string;
  sourceAddrTon: number;
  sourceAddrNpi: number;
  sourceAddr: string;
  destAddrTon: number;
  destAddrNpi: number;
  destinationAddr: string;
  esmClass: number;
  registeredDelivery: number;
  validityPeriod: string;
  dataCoding: number;
  shortMessage: Buffer;
}

export function pushSubmit(batch: Batch, bindId: number, token: number, f: SubmitFields): void {
  batch.push(
    Op.SUBMIT,
    bindId,
    token,
    f.serviceType,
    f.sourceAddrTon,
    f.sourceAddrNpi,
    f.sourceAddr,
    f.destAddrTon,
    f.destAddrNpi,
    f.destinationAddr,
    f.esmClass,
    f.registeredDelivery,
    f.validityPeriod,
    f.dataCoding,
    f.shortMessage.toString('latin1'),
  );
}

/** The fields of the SUBMIT record whose opcode is at `at`. */
export function readSubmit(batch: Batch, at: number): SubmitFields {
  const v = (i: number) => batch[at + 3 + i];
  return {
    serviceType: v(0) as string,
    sourceAddrTon: v(1) as number,
    sourceAddrNpi: v(2) as number,
    sourceAddr: v(3) as string,
    destAddrTon: v(4) as number,
    destAddrNpi: v(5) as number,
    destinationAddr: v(6) as string,
    esmClass: v(7) as number,
    registeredDelivery: v(8) as number,
    validityPeriod: v(9) as string,
    dataCoding: v(10) as number,
    shortMessage: Buffer.from(v(11) as string, 'latin1'),
  };
}
