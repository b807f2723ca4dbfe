// A stalled carrier reads nothing, answers nothing and sends nothing for a while: its sockets are
// paused (so even enquire_link goes unanswered) and the scheduler is held; everything due meanwhile
// goes out, in order, when the stall ends.

import type { Socket } from 'node:net';
import type { Scheduler } from './scheduler.js';

export class Stall {
  /** Every open connection, bound or not. */
  readonly sockets = new Set<Socket>();
  private stalledUntil = 0;

  constructor(
    private readonly scheduler: Scheduler,
    /** Called when a stall ends, after the sockets resume. */
    private readonly onEnd: () => void,
  ) {}

  /** When the current stall ends (0 or a past time when not stalled). */
  get until(): number {
    return this.stalledUntil;
  }

  active(now: number): boolean {
    return this.stalledUntil > now;
  }

  track(socket: Socket, now: number): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    if (this.active(now)) socket.pause();
  }

  /** Stalls until now + ms; returns false when an ongoing stall already lasts longer. */
  start(now: number, ms: number): boolean {
    const until = now + ms;
    if (until <= this.stalledUntil) return false;
    this.stalledUntil = until;
    for (const socket of this.sockets) socket.pause();
    this.scheduler.hold(until);
    this.scheduler.at(until, this.end, until);
    return true;
  }

  private readonly end = (until: number): void => {
    if (until !== this.stalledUntil) return; // extended by a later stall, which will end it
    this.stalledUntil = 0;
    for (const socket of this.sockets) socket.resume();
    this.onEnd();
  };
}
