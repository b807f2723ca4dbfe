import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { decodePdu, encodePdu, errorResponse } from './codec.js';
import { CommandStatus } from './constants.js';
import { PduFramer } from './framing.js';
import { createPdu, type Pdu, type PduOf, RESPONSE_OF, type RequestCommand, zeroPdu } from './pdu.js';

export type ResponseOf<C extends RequestCommand> = PduOf<(typeof RESPONSE_OF)[C]> | PduOf<'generic_nack'>;

/** A request's fields; the session fills in the sequence, anything omitted is zero or empty. */
export type Outgoing<C extends RequestCommand> = Partial<Omit<PduOf<C>, 'command' | 'sequence'>>;

export class SessionClosedError extends Error {
  constructor(reason: string) {
    super(`SMPP session closed: ${reason}`);
    this.name = 'SessionClosedError';
  }
}

export class ResponseTimeoutError extends Error {
  constructor(command: string, sequence: number, timeoutMs: number) {
    super(`no ${command} response for sequence ${sequence} within ${timeoutMs} ms`);
    this.name = 'ResponseTimeoutError';
  }
}

export interface SessionOptions {
  /** How long a request waits for its response. */
  responseTimeoutMs: number;
  /** enquire_link period; 0 disables. An unanswered enquire_link closes the session. */
  enquireLinkIntervalMs: number;
  maxCommandLength?: number;
}

interface Pending {
  command: string;
  sentAt: number;
  resolve(pdu: Pdu): void;
  reject(err: Error): void;
}

/** What a session hands to its owner for every incoming request (submit_sm, deliver_sm, bind_*…). */
export type RequestHandler = (pdu: Pdu, session: SmppSession) => void;

/**
 * One SMPP connection, either side: framing, decoding, sequence numbers, request/response matching
 * with timeouts, enquire_link keep-alive, and answers to garbage (generic_nack or the request's
 * *_resp with an error status; a stream that cannot be re-framed is closed).
 * Events: 'close' (reason: string), 'error' is never emitted: failures close the session.
 */
export class SmppSession extends EventEmitter {
  private readonly framer: PduFramer;
  private readonly pending = new Map<number, Pending>();
  private nextSequence = 1;
  private closedReason: string | null = null;
  private readonly sweepTimer: NodeJS.Timeout;
  private enquireTimer: NodeJS.Timeout | null = null;
  private corked = false;
  /** Set by the owner to receive incoming requests; unanswered requests get ESME_RINVCMDID. */
  onRequest: RequestHandler = (pdu, session) => session.rejectRequest(pdu, CommandStatus.ESME_RINVCMDID);

  constructor(
    readonly socket: Socket,
    private readonly options: SessionOptions,
  ) {
    super();
    this.framer = new PduFramer({ maxCommandLength: options.maxCommandLength });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.close(`socket error: ${err.message}`));
    socket.on('close', () => this.close('connection closed by peer'));
    // One sweep for every pending request instead of a timer each: sequences are sent in order.
    this.sweepTimer = setInterval(() => this.sweepTimeouts(), Math.min(250, options.responseTimeoutMs));
    this.sweepTimer.unref();
    if (options.enquireLinkIntervalMs > 0) this.scheduleEnquireLink();
  }

  get closed(): boolean {
    return this.closedReason !== null;
  }

  /** Sends a request and resolves with its response (or generic_nack); rejects on timeout or close. */
  request<C extends RequestCommand>(command: C, body: Outgoing<C>): Promise<ResponseOf<C>> {
    if (this.closedReason !== null) return Promise.reject(new SessionClosedError(this.closedReason));
    const sequence = this.takeSequence();
    // Not createPdu(command, { ...body, sequence }): a spread copy per request showed in profiles.
    const pdu: Pdu = Object.assign(zeroPdu(command, sequence), body);
    pdu.sequence = sequence; // the session's, whatever the body holds
    return new Promise<ResponseOf<C>>((resolve, reject) => {
      this.pending.set(sequence, {
        command,
        sentAt: Date.now(),
        resolve: resolve as (pdu: Pdu) => void,
        reject,
      });
      this.write(pdu);
    });
  }

  /** Answers a request. */
  respond(pdu: Pdu): void {
    if (this.closedReason === null) this.write(pdu);
  }

  /** Answers a request with an error status and an empty body. */
  rejectRequest(request: Pdu, status: number): void {
    const name = request.command as RequestCommand;
    const command = RESPONSE_OF[name] ?? 'generic_nack';
    this.respond(createPdu(command, { sequence: request.sequence, status }) as Pdu);
  }

  /** Sends unbind and waits briefly for its answer, then closes. */
  async unbind(timeoutMs = 2000): Promise<void> {
    if (this.closed) return;
    const answered = this.request('unbind', {}).catch(() => undefined);
    await Promise.race([answered, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    this.close('unbound');
  }

  close(reason: string): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    clearInterval(this.sweepTimer);
    if (this.enquireTimer) clearTimeout(this.enquireTimer);
    const err = new SessionClosedError(reason);
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.socket.end();
    this.socket.destroySoon?.();
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.emit('close', reason);
  }

  private takeSequence(): number {
    const s = this.nextSequence;
    this.nextSequence = s >= 0x7fffffff ? 1 : s + 1;
    return s;
  }

  // Writes issued in one turn of the event loop leave in one TCP segment where possible.
  private write(pdu: Pdu): void {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(encodePdu(pdu));
  }

  private onData(chunk: Buffer): void {
    this.framer.push(chunk);
    for (const frame of this.framer) {
      const decoded = decodePdu(frame, { maxCommandLength: this.options.maxCommandLength });
      if (!decoded.ok) {
        const answer = errorResponse(decoded);
        if (answer) this.respond(answer);
        continue;
      }
      this.dispatch(decoded.pdu);
      if (this.closed) return;
    }
    if (this.framer.error) {
      // The stream cannot be re-synchronised after a bad command_length: nack and hang up.
      const { status, sequence } = this.framer.error;
      this.respond(createPdu('generic_nack', { sequence: sequence ?? 0, status }));
      this.close(`framing error: ${this.framer.error.message}`);
    }
  }

  private dispatch(pdu: Pdu): void {
    if (pdu.command.endsWith('_resp') || pdu.command === 'generic_nack') {
      const pending = this.pending.get(pdu.sequence);
      if (pending) {
        this.pending.delete(pdu.sequence);
        pending.resolve(pdu);
      }
      // An unmatched response (late, after a timeout) is dropped: its request was already settled.
      return;
    }
    switch (pdu.command) {
      case 'enquire_link':
        this.respond(createPdu('enquire_link_resp', { sequence: pdu.sequence }));
        return;
      case 'unbind':
        this.respond(createPdu('unbind_resp', { sequence: pdu.sequence }));
        this.close('unbound by peer');
        return;
      default:
        this.onRequest(pdu, this);
    }
  }

  private sweepTimeouts(): void {
    const limit = Date.now() - this.options.responseTimeoutMs;
    for (const [sequence, p] of this.pending) {
      if (p.sentAt > limit) break; // Map keeps insertion order: the rest are younger
      this.pending.delete(sequence);
      p.reject(new ResponseTimeoutError(p.command, sequence, this.options.responseTimeoutMs));
    }
  }

  private scheduleEnquireLink(): void {
    this.enquireTimer = setTimeout(() => {
      this.request('enquire_link', {}).then(
        () => this.scheduleEnquireLink(),
        (err: Error) => this.close(`keep-alive failed: ${err.message}`),
      );
    }, this.options.enquireLinkIntervalMs);
    this.enquireTimer.unref();
  }
}
