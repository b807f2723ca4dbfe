// Where receipts and MO go: deliver_sm to the receiver/transceiver binds of the right system_id, round
// robin, at most `deliver_window` unanswered per session. With no bind able to take one, items wait in a
// bounded FIFO per system_id and leave as soon as a receiver binds or answers. An error status is
// retried later, up to max_delivery_attempts; a deliver_sm cut off by a closed session is sent again
// on another (or the next) bind without counting as an attempt.

import { CommandStatus } from '../smpp/constants.js';
import { type Outgoing, ResponseTimeoutError, type SmppSession } from '../smpp/session.js';
import { Fifo } from './fifo.js';
import type { SimulatorOptions } from './options.js';
import type { Scheduler } from './scheduler.js';
import type { SimulatorStats } from './stats.js';

/** A session that can take deliver_sm (bound as receiver or transceiver). */
export interface Receiver {
  id: number;
  systemId: string;
  session: SmppSession;
  /** deliver_sm sent and not yet answered. */
  inFlight: number;
}

export interface DeliveryItem {
  kind: 'receipt' | 'mo';
  /** The system_id whose binds may take it; null for any. */
  systemId: string | null;
  body: Outgoing<'deliver_sm'>;
  attempts: number;
  /** MO: told the first deliver_sm_resp status, or why it can never be sent. */
  settle?: (status: number) => void;
  fail?: (err: Error) => void;
}

interface Group {
  list: Receiver[];
  next: number;
}

export interface DeliveryContext {
  options(): SimulatorOptions;
  stats: SimulatorStats;
  scheduler: Scheduler;
  now(): number;
  /** True while the carrier is stalled: nothing leaves. */
  held(): boolean;
}

const ANY = '\0any';

export class DeliveryRouter {
  private readonly groups = new Map<string, Group>();
  private readonly queues = new Map<string, Fifo<DeliveryItem>>();
  private total = 0;
  private stopped = false;

  constructor(private readonly ctx: DeliveryContext) {}

  get queued(): number {
    return this.total;
  }

  addReceiver(receiver: Receiver): void {
    let group = this.groups.get(receiver.systemId);
    if (!group) {
      group = { list: [], next: 0 };
      this.groups.set(receiver.systemId, group);
    }
    group.list.push(receiver);
    this.pump(receiver.systemId);
  }

  removeReceiver(receiver: Receiver): void {
    const group = this.groups.get(receiver.systemId);
    if (!group) return;
    group.list = group.list.filter((r) => r !== receiver);
    if (group.list.length === 0) this.groups.delete(receiver.systemId);
    else group.next %= group.list.length;
  }

  /** Queues an item for the next free receiver of its system_id. */
  enqueue(item: DeliveryItem, front = false): void {
    if (this.stopped) {
      item.fail?.(new Error('simulator stopped'));
      return;
    }
    if (!front && this.total >= this.ctx.options().queue_limit) {
      this.ctx.stats.queueDropped++;
      item.fail?.(new Error('delivery queue full (queue_limit)'));
      return;
    }
    const key = item.systemId ?? ANY;
    let queue = this.queues.get(key);
    if (!queue) {
      queue = new Fifo();
      this.queues.set(key, queue);
    }
    if (front) queue.unshift(item);
    else queue.push(item);
    this.total++;
    this.pump(item.systemId);
  }

  /** Sends on this session now, whatever its window (receipt_before_response, MO to a chosen session). */
  sendOn(receiver: Receiver, item: DeliveryItem): void {
    if (this.stopped) {
      item.fail?.(new Error('simulator stopped'));
      return;
    }
    if (receiver.session.closed) {
      this.enqueue(item);
      return;
    }
    if (this.ctx.held()) {
      // Due at 0: the first thing to run when the stall ends.
      this.ctx.scheduler.at(0, (r: Receiver) => this.sendOn(r, item), receiver);
      return;
    }
    this.send(receiver, item);
  }

  /** Delivers the parts of an MO; resolves with the first non-zero deliver_sm_resp status, or 0. */
  async deliverMo(
    parts: Outgoing<'deliver_sm'>[],
    systemId: string | null,
    target: Receiver | null,
  ): Promise<number> {
    const statuses = await Promise.all(
      parts.map(
        (body) =>
          new Promise<number>((settle, fail) => {
            const item: DeliveryItem = { kind: 'mo', systemId, body, attempts: 0, settle, fail };
            if (target) this.sendOn(target, item);
            else this.enqueue(item);
          }),
      ),
    );
    return statuses.find((s) => s !== CommandStatus.ESME_ROK) ?? CommandStatus.ESME_ROK;
  }

  /** Sends what the receivers of this system_id (and items for any system_id) have room for. */
  pump(systemId: string | null): void {
    if (this.stopped || this.ctx.held()) return;
    if (systemId !== null) {
      const group = this.groups.get(systemId);
      const queue = this.queues.get(systemId);
      if (group && queue) this.drain(queue, group);
    }
    const any = this.queues.get(ANY);
    if (any && any.length > 0) for (const group of this.groups.values()) this.drain(any, group);
  }

  pumpAll(): void {
    for (const key of this.queues.keys()) if (key !== ANY) this.pump(key);
    this.pump(null);
  }

  /** Fails every queued MO; nothing is sent any more. */
  stop(): void {
    this.stopped = true;
    const err = new Error('simulator stopped');
    for (const queue of this.queues.values()) for (const item of queue.drain()) item.fail?.(err);
    this.queues.clear();
    this.groups.clear();
    this.total = 0;
  }

  private drain(queue: Fifo<DeliveryItem>, group: Group): void {
    while (queue.length > 0) {
      const receiver = this.pick(group);
      if (!receiver) return;
      this.total--;
      this.send(receiver, queue.shift()!);
    }
  }

  /** The next receiver in round-robin order with window room, or null. */
  private pick(group: Group): Receiver | null {
    const window = this.ctx.options().deliver_window;
    const n = group.list.length;
    for (let k = 0; k < n; k++) {
      const i = (group.next + k) % n;
      const receiver = group.list[i]!;
      if (receiver.inFlight < window && !receiver.session.closed) {
        group.next = (i + 1) % n;
        return receiver;
      }
    }
    return null;
  }

  private send(receiver: Receiver, item: DeliveryItem): void {
    const stats = this.ctx.stats;
    receiver.inFlight++;
    item.attempts++;
    if (item.kind === 'receipt') stats.receiptsSent++;
    else stats.moSent++;
    receiver.session.request('deliver_sm', item.body).then(
      (resp) => {
        receiver.inFlight--;
        this.answered(item, resp.status);
        this.pump(receiver.systemId);
      },
      (err: Error) => {
        receiver.inFlight--;
        this.interrupted(item, err);
        this.pump(receiver.systemId);
      },
    );
  }

  private answered(item: DeliveryItem, status: number): void {
    const stats = this.ctx.stats;
    const ok = status === CommandStatus.ESME_ROK;
    if (item.kind === 'receipt') {
      if (ok) stats.receiptsAcknowledged++;
      else stats.receiptsRefused++;
    } else if (ok) stats.moAcknowledged++;
    else stats.moRefused++;
    const settle = item.settle;
    item.settle = undefined;
    item.fail = undefined;
    settle?.(status);
    if (!ok) this.retry(item);
  }

  private interrupted(item: DeliveryItem, err: Error): void {
    if (this.stopped) {
      item.fail?.(err);
      return;
    }
    if (err instanceof ResponseTimeoutError) {
      this.retry(item);
      return;
    }
    // The session closed under it: that attempt does not count, and it keeps its place in line.
    item.attempts--;
    this.enqueue(item, true);
  }

  private retry(item: DeliveryItem): void {
    const options = this.ctx.options();
    if (item.attempts >= options.max_delivery_attempts) {
      this.ctx.stats.deliveriesAbandoned++;
      item.fail?.(new Error(`deliver_sm not acknowledged after ${item.attempts} attempts`));
      return;
    }
    this.ctx.stats.redeliveries++;
    this.ctx.scheduler.at(
      this.ctx.now() + options.redelivery_delay_ms,
      (again: DeliveryItem) => this.enqueue(again),
      item,
    );
  }
}
