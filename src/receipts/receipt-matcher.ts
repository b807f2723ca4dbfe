import type { Recordable } from '../dispatch/status-recorder.js';
import type { Metrics } from '../observability/metrics.js';
import type { Logger } from '../shared/logger.js';
import type { DeliveryReceipt } from '../smpp/receipt.js';
import { inList } from '../store/insert-rows.js';
import type { Db } from '../store/store.js';
import { type ReceiptIdFormat, receiptKeys } from './carrier-keys.js';
import { partStatusOf } from './receipt-updates.js';

export interface PartRef {
  messageId: string;
  partNo: number;
  /** Settles once the message's `submitted` change is committed: its receipts are recorded after. */
  after?: Promise<void>;
}

interface Parked {
  connector: string;
  receipt: DeliveryReceipt;
  keys: string[];
  /** The carrier may be waiting for its answer (handle's `carrierWaiting`). */
  carrierWaiting: boolean;
  expiresAt: number;
  done: () => void;
}

export interface MatcherOptions {
  /** Parts kept in memory for fast matching; older ones are found through the database index. */
  maxRecent: number;
  /** How long a receipt that matches nothing yet waits for its submit_sm_resp to be recorded. */
  parkMs: number;
  metrics?: Metrics | undefined;
}

/**
 * Matches delivery receipts to the parts they report on, by carrier id: first in memory (parts
 * submitted recently by this process), then through the (connector, carrier_key) index. A receipt
 * can overtake its own submit_sm_resp (some SMSCs send it first, and across binds there is no
 * ordering): such a receipt is parked until the id is registered, then recorded; one that still
 * matches nothing after `parkMs` is counted, logged and acknowledged, never a crash.
 */
export class ReceiptMatcher {
  private readonly recent = new Map<string, PartRef>();
  private readonly parked = new Map<string, Parked>();
  private readonly sweeper: NodeJS.Timeout;
  unmatched = 0;
  matched = 0;

  constructor(
    private readonly db: Db,
    private readonly record: (unit: Recordable, now: boolean) => Promise<void>,
    private readonly log: Logger,
    private readonly options: MatcherOptions,
  ) {
    this.sweeper = setInterval(() => this.sweep(), 1000);
    this.sweeper.unref();
  }

  stop(): void {
    clearInterval(this.sweeper);
    for (const p of this.parked.values()) p.done();
    this.parked.clear();
  }

  /** Called when a part's submit_sm_resp gives its carrier id. */
  register(connector: string, key: string, ref: PartRef): void {
    const slot = `${connector}\u0000${key}`;
    this.recent.set(slot, ref);
    if (this.recent.size > this.options.maxRecent) {
      // Maps iterate in insertion order: drop the oldest; the database still knows it.
      this.recent.delete(this.recent.keys().next().value!);
    }
    const parked = this.parked.get(slot);
    if (parked) {
      this.unpark(parked);
      void this.persist(ref, parked.receipt, connector, parked.keys, parked.carrierWaiting).then(
        parked.done,
        parked.done,
      );
    }
  }

  /**
   * Resolves once the receipt is recorded (or given up on): only then is the deliver_sm acknowledged.
   * `carrierWaiting`: the carrier may send nothing more until this one is answered, so its record is
   * committed at once rather than gathered with later receipts.
   */
  async handle(
    connector: string,
    receipt: DeliveryReceipt,
    format: ReceiptIdFormat,
    carrierWaiting = false,
  ): Promise<void> {
    const keys = receiptKeys(receipt.carrierId, format);
    // Memory is checked again after the database: the submit_sm_resp may have been read in the same
    // TCP segment as this receipt and registered while the lookup ran.
    const ref =
      this.fromMemory(connector, keys) ??
      (await this.fromDatabase(connector, keys)) ??
      this.fromMemory(connector, keys);
    if (ref) return this.persist(ref, receipt, connector, keys, carrierWaiting);
    await new Promise<void>((resolve) => {
      const entry: Parked = {
        connector,
        receipt,
        keys,
        carrierWaiting,
        expiresAt: Date.now() + this.options.parkMs,
        done: resolve,
      };
      for (const key of keys) this.parked.set(`${connector}\u0000${key}`, entry);
    });
  }

  private async persist(
    ref: PartRef,
    receipt: DeliveryReceipt,
    connector: string,
    keys: string[],
    carrierWaiting: boolean,
  ): Promise<void> {
    this.matched++;
    this.options.metrics?.receipts.inc({ connector, state: receipt.state });
    // A final receipt ends the part's story: it no longer needs a place in memory.
    if (partStatusOf(receipt.state) !== null)
      for (const key of keys) this.recent.delete(`${connector}\u0000${key}`);
    await ref.after; // never ahead of the part's own `submitted` change
    await this.record(
      {
        receipts: [
          {
            messageId: ref.messageId,
            partNo: ref.partNo,
            state: receipt.state,
            errorCode: receipt.errorCode,
          },
        ],
      },
      carrierWaiting,
    );
  }

  private unpark(entry: Parked): void {
    for (const key of entry.keys) this.parked.delete(`${entry.connector}\u0000${key}`);
  }

  private fromMemory(connector: string, keys: string[]): PartRef | undefined {
    for (const key of keys) {
      const ref = this.recent.get(`${connector}\u0000${key}`);
      if (ref) return ref;
    }
    return undefined;
  }

  private async fromDatabase(connector: string, keys: string[]): Promise<PartRef | undefined> {
    const row = await this.db
      .selectFrom('message_parts')
      .select(['message_id', 'part_no'])
      .where('connector', '=', connector)
      .where(inList(this.db, 'carrier_key', keys))
      .executeTakeFirst();
    return row ? { messageId: row.message_id, partNo: row.part_no } : undefined;
  }

  private sweep(): void {
    const now = Date.now();
    for (const entry of new Set(this.parked.values())) {
      if (entry.expiresAt > now) continue;
      this.unpark(entry);
      // Last chance: another process may have recorded the part meanwhile.
      void this.fromDatabase(entry.connector, entry.keys).then(async (ref) => {
        if (ref) await this.persist(ref, entry.receipt, entry.connector, entry.keys, entry.carrierWaiting);
        else {
          this.unmatched++;
          this.log.warn(
            { connector: entry.connector, carrier_id: entry.receipt.carrierId, state: entry.receipt.state },
            'delivery receipt matches no message',
          );
        }
        entry.done();
      }, entry.done);
    }
  }
}
