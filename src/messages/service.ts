import type { Config } from '../config/schema.js';
import type { Metrics } from '../observability/metrics.js';
import { optedOutAmong } from '../optouts/optouts.js';
import type { Clock } from '../shared/clock.js';
import { type ErrorBody, errorBody, RelaisError } from '../shared/errors.js';
import { GroupCommitter } from '../store/group-commit.js';
import type { MessageTable } from '../store/schema.js';
import type { Store } from '../store/store.js';
import type { PhoneOutcome } from './phone.js';
import { PhonePool } from './phone-pool.js';
import { type PreparedMessage, prepareMessage } from './prepare.js';
import type { AcceptedMessage, SubmitInput } from './types.js';
import {
  fitsOneStatement,
  type IdempotencyRecord,
  type IntakeLease,
  isUrgentNow,
  type SubmitUnit,
  type UnitOutcome,
  writeSubmitUnits,
  writeSubmitUnitsAsOneStatement,
} from './writer.js';

/**
 * Takes urgent messages straight from intake (the dispatcher): `lease()` says, just before a commit,
 * whether it can take them now; the messages committed under that lease are then handed to `take()`.
 */
export interface UrgentTaker {
  lease(): IntakeLease | null;
  take(rows: MessageTable[]): void;
}

export type BatchItemResult = { accepted: AcceptedMessage } | { error: ErrorBody };

/** Builds the stored answer for an idempotent request once the messages are prepared. */
export type IdempotentAnswer = (results: BatchItemResult[]) => Omit<IdempotencyRecord, 'key' | 'requestHash'>;

export interface IdempotencyRequest {
  key: string;
  requestHash: string;
  answer: IdempotentAnswer;
}

export type SubmitOutcome =
  | { kind: 'committed'; results: BatchItemResult[] }
  /** Another request with the same Idempotency-Key won a race across processes: replay its answer. */
  | { kind: 'duplicate' };

/**
 * The one submit use case. The HTTP API, the Kannel endpoint, the SMPP server, campaigns and Verify
 * all come through here: validate and encode each message, then persist it (history + queue) through
 * group commit, and only then report it accepted.
 */
export class MessageService {
  /** Bulk (and mixed) units: large transactions of up to 1,000 messages. */
  private readonly committer: GroupCommitter<SubmitUnit, UnitOutcome>;
  /**
   * Units of only otp/transactional messages commit apart, in small transactions: an OTP never waits
   * for a 1,000-message bulk batch to be written before it (on PostgreSQL that wait was most of the
   * urgent-lane p99 under a bulk flood).
   */
  private readonly urgentCommitter: GroupCommitter<SubmitUnit, UnitOutcome>;
  private readonly listeners = new Set<(urgent: boolean) => void>();
  private bulkRefused: () => boolean = () => false;
  private taker: UrgentTaker | null = null;
  /** Units whose urgent messages were committed leased to the taker and handed to it. */
  private readonly handedOver = new WeakSet<SubmitUnit>();
  /** Normalises the destinations of large batches off the main thread. */
  private readonly phones = new PhonePool();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly config: Config,
    private readonly metrics?: Metrics,
  ) {
    const writeBatch = (units: SubmitUnit[]) => this.writeUnits(units, false);
    const writeUrgentBatch = (units: SubmitUnit[]) => this.writeUnits(units, true);
    const weight = (unit: SubmitUnit) => Math.max(1, unit.rows.length);
    const concurrency = store.dialect === 'sqlite' ? 1 : 4;
    this.committer = new GroupCommitter({ writeBatch, weight, concurrency, maxBatch: 1000 });
    // SQLite has one writer, and the priority gate in the store already lets urgent transactions
    // pass queued ones: a second stream of commits there only meant more fsyncs (measured: single-
    // message intake fell by a third). PostgreSQL commits in parallel: urgent units go apart.
    this.urgentCommitter =
      store.dialect === 'sqlite'
        ? this.committer
        : new GroupCommitter({ writeBatch: writeUrgentBatch, weight, concurrency: 2, maxBatch: 100 });
  }

  /** Stops the thread that normalises numbers (batches still on it finish inline). */
  close(): Promise<void> {
    return this.phones.close();
  }

  /** Called after new work is committed: the dispatcher wakes at once instead of polling. */
  onQueued(listener: (urgent: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Urgent messages committed from now on may go straight to `taker` (see UrgentTaker). */
  handUrgentTo(taker: UrgentTaker): void {
    this.taker = taker;
  }

  /** `fromUrgentCommitter`: the units come from PostgreSQL's urgent committer (its own pool). */
  private async writeUnits(units: SubmitUnit[], fromUrgentCommitter: boolean): Promise<UnitOutcome[]> {
    const holdsUrgent = units.some((u) => u.rows.some(isUrgentNow));
    // Where urgent and bulk units share one committer (SQLite), a batch holding an urgent message
    // passes the ordinary writes queued at the store's priority gate (receipts, webhooks, bulk).
    const urgent = fromUrgentCommitter || (holdsUrgent && this.urgentCommitter === this.committer);
    const lease = holdsUrgent ? (this.taker?.lease() ?? null) : null;
    let outcomes: UnitOutcome[];
    let durable: Promise<void> = Promise.resolve();
    if (fitsOneStatement(this.store.dialect, units)) {
      outcomes = await this.store.writeStatement(urgent, (db) =>
        writeSubmitUnitsAsOneStatement(db, units, lease),
      );
    } else {
      ({ result: outcomes, durable } = await this.store.writeCommitted(urgent, (trx) =>
        writeSubmitUnits(trx, units, lease),
      ));
    }
    // Urgent messages go to the dispatcher at commit, while SQLite's log is synced (Store.writeCommitted;
    // under a bulk flood that sync took 2.5 ms at the median and 14 ms at p99): the callers are still
    // answered only once it is durable. What a power cut can cost: docs/architecture.md, "Urgent before bulk".
    if (lease) {
      const taken: MessageTable[] = [];
      units.forEach((unit, i) => {
        if (outcomes[i] !== 'committed') return;
        this.handedOver.add(unit);
        for (const row of unit.rows) if (isUrgentNow(row)) taken.push(row);
      });
      if (taken.length > 0) this.taker!.take(taken);
    }
    await durable;
    return outcomes;
  }

  /** One message: an invalid one throws its RelaisError, naming the field. */
  async submit(
    tenantId: string,
    input: SubmitInput,
    idempotency?: IdempotencyRequest,
  ): Promise<SubmitOutcome> {
    const mention = await this.mentionFor(tenantId, [input]);
    const prepared = this.prepare(tenantId, input, mention);
    if (prepared.row.lane === 'bulk') {
      const optedOut = await optedOutAmong(this.store.db, tenantId, [prepared.row.to_number]);
      if (optedOut.size > 0) throw optedOutError(prepared.row.to_number);
    }
    return this.commit(tenantId, [prepared], [{ accepted: prepared.accepted }], idempotency);
  }

  /**
   * Each item is accepted or rejected on its own; the accepted ones are committed together. Errors of
   * item i name their field as `messages/i/<field>`.
   */
  async submitBatch(
    tenantId: string,
    inputs: SubmitInput[],
    idempotency?: IdempotencyRequest,
  ): Promise<SubmitOutcome> {
    if (inputs.length === 0) throw new RelaisError('batch_empty', 'the batch holds no messages', 'messages');
    const max = this.config.messages.batch_max_items;
    if (inputs.length > max) {
      throw new RelaisError(
        'batch_too_large',
        `a batch holds at most ${max} messages, not ${inputs.length}`,
        'messages',
      );
    }
    const mention = await this.mentionFor(tenantId, inputs);
    const numbers = await this.phones.normalise(inputs.map((input) => [input.to, input.country]));
    const outcomes: ({ prepared: PreparedMessage } | { error: RelaisError })[] = inputs.map((input, i) => {
      try {
        return { prepared: this.prepare(tenantId, input, mention, numbers[i]) };
      } catch (err) {
        if (!(err instanceof RelaisError)) throw err;
        return { error: err };
      }
    });
    // One opt-out query for the whole batch, and none when it holds no bulk message.
    const bulkNumbers = outcomes.flatMap((o) =>
      'prepared' in o && o.prepared.row.lane === 'bulk' ? [o.prepared.row.to_number] : [],
    );
    const optedOut =
      bulkNumbers.length > 0 ? await optedOutAmong(this.store.db, tenantId, bulkNumbers) : new Set<string>();
    const results: BatchItemResult[] = [];
    const prepared: PreparedMessage[] = [];
    outcomes.forEach((o, index) => {
      let err = 'error' in o ? o.error : null;
      if ('prepared' in o && o.prepared.row.lane === 'bulk' && optedOut.has(o.prepared.row.to_number)) {
        err = optedOutError(o.prepared.row.to_number);
      }
      if (err) {
        const field = err.field === undefined ? undefined : `messages/${index}/${err.field}`;
        results.push({ error: errorBody(new RelaisError(err.code, err.message, field)) });
      } else if ('prepared' in o) {
        prepared.push(o.prepared);
        results.push({ accepted: o.prepared.accepted });
      }
    });
    return this.commit(tenantId, prepared, results, idempotency);
  }

  /**
   * While `refused()` is true, bulk messages are refused with `insufficient_storage` (507); otp and
   * transactional ones still go. The disk guard sets this: bulk is what fills a disk.
   */
  refuseBulkWhile(refused: () => boolean): void {
    this.bulkRefused = refused;
  }

  private prepare(
    tenantId: string,
    input: SubmitInput,
    mention: string | null,
    normalised: PhoneOutcome | null = null,
  ): PreparedMessage {
    const prepared = prepareMessage(
      tenantId,
      input,
      this.clock.now(),
      this.config.messages,
      this.config.webhooks,
      mention,
      normalised,
    );
    if (prepared.row.lane === 'bulk' && this.bulkRefused()) {
      throw new RelaisError(
        'insufficient_storage',
        'storage is nearly full: bulk messages are refused until space is freed; otp and transactional messages are still accepted',
        'lane',
      );
    }
    return prepared;
  }

  /** The tenant's opt-out mention, read only when the request holds a bulk message. */
  private async mentionFor(tenantId: string, inputs: readonly SubmitInput[]): Promise<string | null> {
    if (!inputs.some((i) => i.lane === 'bulk')) return null;
    const row = await this.store.db
      .selectFrom('tenants')
      .select('optout_mention')
      .where('id', '=', tenantId)
      .executeTakeFirst();
    return row?.optout_mention ?? null;
  }

  private async commit(
    tenantId: string,
    prepared: PreparedMessage[],
    results: BatchItemResult[],
    idempotency: IdempotencyRequest | undefined,
  ): Promise<SubmitOutcome> {
    const unit: SubmitUnit = {
      tenantId,
      createdAt: this.clock.now(),
      rows: prepared.map((p) => p.row),
      idempotency: idempotency && {
        key: idempotency.key,
        requestHash: idempotency.requestHash,
        ...idempotency.answer(results),
      },
    };
    if (unit.rows.length === 0 && !unit.idempotency) return { kind: 'committed', results };
    const urgentOnly = unit.rows.length > 0 && unit.rows.every(isUrgentNow);
    const outcome = await (urgentOnly ? this.urgentCommitter : this.committer).submit(unit);
    if (outcome === 'duplicate') return { kind: 'duplicate' };
    if (unit.rows.length > 0) {
      for (const row of unit.rows) this.metrics?.accepted.inc({ lane: row.lane });
      // `urgent`: an otp or transactional message is waiting, to be claimed ahead of any bulk backlog.
      // Urgent messages handed over at commit need no claim; with nothing else, nobody need wake.
      const handedOver = this.handedOver.has(unit);
      const urgent = !handedOver && unit.rows.some(isUrgentNow);
      if (!(handedOver && urgentOnly)) for (const listener of this.listeners) listener(urgent);
    }
    return { kind: 'committed', results };
  }
}

function optedOutError(phone: string): RelaisError {
  return new RelaisError(
    'recipient_opted_out',
    `${phone} opted out of your bulk messages (STOP); otp and transactional messages still reach it`,
    'to',
  );
}
