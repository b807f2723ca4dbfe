import { sql } from 'kysely';
import type { Config } from '../config/schema.js';
import { normaliseDestination } from '../messages/phone.js';
import { prepareMessage } from '../messages/prepare.js';
import type { MessageService } from '../messages/service.js';
import type { SubmitInput } from '../messages/types.js';
import type { Clock } from '../shared/clock.js';
import { RelaisError } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import type { Logger } from '../shared/logger.js';
import type { VerificationStatus, VerificationTable } from '../store/schema.js';
import type { Store, Trx } from '../store/store.js';
import { codeMatches, generateCode, hashCode, newSalt } from './codes.js';
import { writeVerificationEvents } from './events.js';
import { VELOCITY_WINDOW_MS, VerifyInsights } from './insights.js';
import { type Counter, enforceAll, type Hits, type LimitCheck, RetryLaterError } from './rate-limits.js';
import { registerSealer, type Sealer } from './sealing.js';
import { VerifySettingsStore } from './settings.js';
import { checkTemplate, DEFAULT_TEMPLATES, type Locale, renderTemplate } from './templates.js';
import { VerifyUpkeep } from './upkeep.js';

export const DEFAULT_CODE_LENGTH = 6;
export const DEFAULT_TTL_SECONDS = 300;
export const CODE_LENGTH = { min: 4, max: 10 } as const;
export const TTL_SECONDS = { min: 30, max: 3600 } as const;

export interface StartVerificationInput {
  to: string;
  country?: string | undefined;
  from?: string | undefined;
  code_length?: number | undefined;
  ttl_seconds?: number | undefined;
  template?: string | undefined;
  locale?: Locale | undefined;
}

/** Who asks: rate limits count per tenant and per API key. */
export interface Caller {
  tenantId: string;
  apiKeyId: string | null;
}

/** What customers see of a verification: never the code, nor its hash. */
export interface VerificationView {
  id: string;
  status: VerificationStatus;
  to: string;
  country: string | null;
  locale: string;
  code_length: number;
  attempts: number;
  max_attempts: number;
  attempts_remaining: number;
  resends: number;
  max_resends: number;
  message_id: string | null;
  expires_at: string;
  created_at: string;
  updated_at: string;
}

export interface CheckResult extends VerificationView {
  /** Whether this code was the right one. */
  valid: boolean;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * The Verify use cases: start a verification (one SMS on the `otp` lane, through MessageService like
 * every other message), check a code, resend, the anti-fraud rules (rate limits, allowed countries,
 * velocity alarm), statistics and upkeep. Status changes and their webhook events share a transaction.
 */
export class VerifyService {
  private readonly listeners = new Set<() => void>();
  readonly settings: VerifySettingsStore;
  readonly insights: VerifyInsights;
  readonly upkeep: VerifyUpkeep;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly config: Config,
    private readonly messages: MessageService,
    private readonly sealer: Sealer,
    private readonly log: Logger,
  ) {
    this.settings = new VerifySettingsStore(store, clock, config);
    this.insights = new VerifyInsights(store, clock, config);
    this.upkeep = new VerifyUpkeep(store, clock, config, () => this.notify());
    // The dispatcher opens sealed texts through this registry (WorkQueue.claim → unsealText).
    registerSealer(sealer, (messageId, reason) =>
      log.error({ message_id: messageId, reason }, 'could not unseal a verification SMS: sent masked'),
    );
  }

  /** Called after webhook events were committed, so the sender wakes at once. */
  onWebhookEvents(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async start(caller: Caller, input: StartVerificationInput): Promise<VerificationView> {
    const now = this.clock.now();
    const cfg = this.config.verify;
    const codeLength = checkRange(input.code_length ?? DEFAULT_CODE_LENGTH, CODE_LENGTH, 'code_length');
    const ttl = checkRange(input.ttl_seconds ?? DEFAULT_TTL_SECONDS, TTL_SECONDS, 'ttl_seconds');
    const destination = normaliseDestination(input.to, input.country);
    const settings = await this.settings.get(caller.tenantId);
    const allowed = settings.allowed_countries;
    if (allowed && (destination.country === null || !allowed.includes(destination.country))) {
      throw new RelaisError(
        'country_not_allowed',
        `verifications to ${destination.country ?? 'this destination'} are not allowed for your account ` +
          `(allowed: ${allowed.join(', ')}; see GET /v1/verify/settings)`,
        'to',
      );
    }
    if (input.template !== undefined) checkTemplate(input.template);
    const locale = input.locale ?? settings.default_locale;
    const id = newId('ver', now);
    const code = generateCode(codeLength);
    const salt = newSalt();
    const row: VerificationTable = {
      id,
      tenant_id: caller.tenantId,
      api_key_id: caller.apiKeyId,
      to_number: destination.e164,
      country: destination.country,
      sender: input.from ?? cfg.default_from,
      locale,
      template: input.template ?? null,
      code_length: codeLength,
      code_salt: salt,
      code_hash: hashCode(this.sealer.codeKey, salt, id, code),
      status: 'pending',
      attempts: 0,
      max_attempts: cfg.max_attempts,
      resends: 0,
      max_resends: cfg.max_resends,
      ttl_seconds: ttl,
      message_id: null,
      last_sent_at: now,
      expires_at: now + ttl * 1000,
      status_at: null,
      created_at: now,
      updated_at: now,
    };
    const sms = this.smsFor(row, code);
    // The SMS is checked exactly as the submit will check it (sender, length) before anything is
    // counted or written: a refused request leaves no verification behind.
    try {
      prepareMessage(caller.tenantId, sms, now, this.config.messages, this.config.webhooks);
    } catch (err) {
      throw asTemplateError(err);
    }

    const prefix = destination.e164.slice(1, 1 + cfg.velocity.prefix_digits);
    // Every Verify write is small and on a code's way to the phone: through the urgent door, never
    // queued behind campaign or bulk writes.
    const velocity = await this.store.writeUrgent(async (trx) => {
      const [counted] = await this.enforceSendLimits(trx, caller, destination.e164, now, [
        {
          scope: `verify_prefix:${caller.tenantId}`,
          key: prefix,
          windowMs: VELOCITY_WINDOW_MS,
          retainMs: 2 * VELOCITY_WINDOW_MS,
        },
      ]);
      await trx.insertInto('verifications').values(row).execute();
      return counted!;
    });
    if (velocity.hits === cfg.velocity.threshold_per_minute + 1) {
      this.log.warn(
        {
          tenant_id: caller.tenantId,
          prefix,
          count: velocity.hits,
          window_start: iso(velocity.windowStart),
          threshold_per_minute: cfg.velocity.threshold_per_minute,
        },
        'verify velocity alarm: many verifications to one number prefix',
      );
    }

    let messageId: string;
    try {
      messageId = await this.submit(caller.tenantId, sms);
    } catch (err) {
      // Nothing was sent: the verification goes too (the rate-limit hits stay counted).
      await this.store.writeUrgent((trx) => trx.deleteFrom('verifications').where('id', '=', id).execute());
      throw asTemplateError(err);
    }
    await this.store.writeUrgent((trx) =>
      trx.updateTable('verifications').set({ message_id: messageId }).where('id', '=', id).execute(),
    );
    return this.view({ ...row, message_id: messageId }, now);
  }

  async get(tenantId: string, id: string): Promise<VerificationView | undefined> {
    const row = await this.load(this.store.db, tenantId, id);
    return row && this.view(row, this.clock.now());
  }

  /**
   * Checks a code. The decision is a conditional UPDATE (`… WHERE status = 'pending' AND attempts <
   * max_attempts AND expires_at > now`) in a write transaction, and only the statement that changed
   * the row counts: of concurrent checks with the right code exactly one approves; a wrong code counts
   * an attempt, and the last allowed one fails the verification. Checks of a verification that is no
   * longer pending are refused (409/410) and change nothing.
   */
  async check(tenantId: string, id: string, code: string): Promise<CheckResult> {
    const now = this.clock.now();
    const outcome = await this.store.writeUrgent(async (trx): Promise<Outcome> => {
      const row = await this.load(trx, tenantId, id);
      if (!row) return { kind: 'not_found' };
      if (row.status !== 'pending') return { kind: 'refused', row, events: 0 };
      if (row.expires_at <= now) return this.expire(trx, row, now);
      const valid = codeMatches(this.sealer.codeKey, row.code_salt, row.id, code, row.code_hash);
      const update = trx
        .updateTable('verifications')
        .where('id', '=', row.id)
        .where('status', '=', 'pending')
        .where(sql<boolean>`attempts < max_attempts`)
        .where('expires_at', '>', now);
      const result = await (valid
        ? update.set((eb) => ({
            status: 'approved',
            attempts: eb('attempts', '+', 1),
            status_at: now,
            updated_at: now,
          }))
        : update.set((eb) => ({
            attempts: eb('attempts', '+', 1),
            // SET expressions read the row as it was: attempts + 1 is the count after this one.
            status: sql<VerificationStatus>`case when attempts + 1 >= max_attempts then 'failed' else 'pending' end`,
            status_at: sql<
              number | null
            >`case when attempts + 1 >= max_attempts then cast(${now} as bigint) else null end`,
            updated_at: now,
          }))
      ).executeTakeFirst();
      const after = (await this.load(trx, tenantId, id))!;
      // Another check changed it first: answer from its state, as if this one came after.
      if (Number(result.numUpdatedRows) === 0) return { kind: 'refused', row: after, events: 0 };
      const events = after.status === 'pending' ? 0 : await writeVerificationEvents(trx, [after], now);
      return { kind: 'done', row: after, events, valid };
    });
    if (outcome.kind !== 'not_found' && outcome.events > 0) this.notify();
    if (outcome.kind === 'not_found') throw notFound(id);
    if (outcome.kind === 'refused') throw this.refusal(outcome.row, now);
    return { ...this.view(outcome.row, now), valid: outcome.valid };
  }

  /**
   * A new code for the same verification, by a new SMS: after the cooldown, at most `max_resends`
   * times, counted by the same rate limits as a start. The previous code stops working, the expiry
   * restarts from now, and the attempts already made still count (a resend buys no extra guesses).
   */
  async resend(caller: Caller, id: string): Promise<VerificationView> {
    const now = this.clock.now();
    const cfg = this.config.verify;
    const code = { value: '' };
    const outcome = await this.store.writeUrgent(async (trx): Promise<Outcome> => {
      const row = await this.load(trx, caller.tenantId, id);
      if (!row) return { kind: 'not_found' };
      if (row.status !== 'pending') return { kind: 'refused', row, events: 0 };
      if (row.expires_at <= now) return this.expire(trx, row, now);
      if (row.resends >= row.max_resends) {
        throw new RelaisError(
          'resend_limit_reached',
          `verification ${id} was already resent ${row.resends} times, the most allowed; start a new one`,
        );
      }
      const wait = row.last_sent_at + cfg.resend_cooldown_seconds * 1000 - now;
      if (wait > 0) {
        throw new RetryLaterError(
          'resend_cooldown',
          `a code can be resent ${cfg.resend_cooldown_seconds} s after the previous one`,
          Math.ceil(wait / 1000),
        );
      }
      await this.enforceSendLimits(trx, caller, row.to_number, now);
      code.value = generateCode(row.code_length);
      const salt = newSalt();
      const changes = {
        code_salt: salt,
        code_hash: hashCode(this.sealer.codeKey, salt, row.id, code.value),
        resends: row.resends + 1,
        last_sent_at: now,
        expires_at: now + row.ttl_seconds * 1000,
        updated_at: now,
      };
      // Optimistic: a concurrent resend of the same verification changed `resends` first.
      const result = await trx
        .updateTable('verifications')
        .set(changes)
        .where('id', '=', row.id)
        .where('status', '=', 'pending')
        .where('resends', '=', row.resends)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) {
        throw new RetryLaterError(
          'resend_cooldown',
          'another resend of this verification just happened',
          Math.max(1, cfg.resend_cooldown_seconds),
        );
      }
      return { kind: 'done', row: { ...row, ...changes }, events: 0, valid: false };
    });
    if (outcome.kind !== 'not_found' && outcome.events > 0) this.notify();
    if (outcome.kind === 'not_found') throw notFound(id);
    if (outcome.kind === 'refused') throw this.refusal(outcome.row, now);
    const messageId = await this.submit(caller.tenantId, this.smsFor(outcome.row, code.value));
    await this.store.writeUrgent((trx) =>
      trx.updateTable('verifications').set({ message_id: messageId }).where('id', '=', id).execute(),
    );
    return this.view({ ...outcome.row, message_id: messageId }, now);
  }

  private smsFor(row: VerificationTable, code: string): SubmitInput {
    const template = row.template ?? DEFAULT_TEMPLATES[row.locale as Locale] ?? DEFAULT_TEMPLATES.en;
    const { text, masked } = renderTemplate(template, code, row.ttl_seconds);
    return {
      to: row.to_number,
      from: row.sender,
      text: masked,
      sealedText: this.sealer.seal(text, row.tenant_id),
      lane: 'otp',
      client_ref: row.id,
      // Not worth sending once the code has expired.
      validity_minutes: Math.ceil(row.ttl_seconds / 60),
    };
  }

  private async submit(tenantId: string, sms: SubmitInput): Promise<string> {
    const outcome = await this.messages.submit(tenantId, sms);
    const first = outcome.kind === 'committed' ? outcome.results[0] : undefined;
    if (!first || !('accepted' in first)) throw new Error('the verification SMS was not accepted');
    return first.accepted.id;
  }

  /** Every SMS of Verify (starts and resends) counts per destination number, tenant and API key. */
  /** The send limits (per number, tenant, API key), and `alsoCount`, in one statement. */
  private enforceSendLimits(
    trx: Trx,
    caller: Caller,
    e164: string,
    now: number,
    alsoCount: Counter[] = [],
  ): Promise<Hits[]> {
    const limits = this.config.verify.rate_limits;
    const checks: LimitCheck[] = [
      {
        scope: 'verify_number',
        key: `${caller.tenantId}:${e164}`,
        limit: limits.per_number,
        what: `to ${e164}`,
      },
      { scope: 'verify_tenant', key: caller.tenantId, limit: limits.per_tenant, what: 'for your account' },
    ];
    if (caller.apiKeyId !== null) {
      checks.push({
        scope: 'verify_api_key',
        key: caller.apiKeyId,
        limit: limits.per_api_key,
        what: 'with this API key',
      });
    }
    return enforceAll(trx, checks, now, alsoCount);
  }

  private async expire(trx: Trx, row: VerificationTable, now: number): Promise<Outcome> {
    const result = await trx
      .updateTable('verifications')
      .set({ status: 'expired', status_at: now, updated_at: now })
      .where('id', '=', row.id)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    const after = (await this.load(trx, row.tenant_id, row.id))!;
    const events = Number(result.numUpdatedRows) === 1 ? await writeVerificationEvents(trx, [after], now) : 0;
    return { kind: 'refused', row: after, events };
  }

  private refusal(row: VerificationTable, now: number): RelaisError {
    const status = row.status === 'pending' && row.expires_at <= now ? 'expired' : row.status;
    switch (status) {
      case 'approved':
        return new RelaisError(
          'verification_already_approved',
          `verification ${row.id} was already approved; a code is accepted only once`,
        );
      case 'expired':
        return new RelaisError('verification_expired', `verification ${row.id} has expired; start a new one`);
      default:
        return new RelaisError(
          'verification_failed',
          `verification ${row.id} failed after ${row.attempts} wrong codes; start a new one`,
        );
    }
  }

  private load(db: Trx, tenantId: string, id: string): Promise<VerificationTable | undefined> {
    return db
      .selectFrom('verifications')
      .selectAll()
      .where('id', '=', id)
      .where('tenant_id', '=', tenantId)
      .executeTakeFirst();
  }

  private view(row: VerificationTable, now: number): VerificationView {
    const status = row.status === 'pending' && row.expires_at <= now ? 'expired' : row.status;
    return {
      id: row.id,
      status,
      to: row.to_number,
      country: row.country,
      locale: row.locale,
      code_length: row.code_length,
      attempts: row.attempts,
      max_attempts: row.max_attempts,
      attempts_remaining: status === 'pending' ? Math.max(0, row.max_attempts - row.attempts) : 0,
      resends: row.resends,
      max_resends: row.max_resends,
      message_id: row.message_id,
      expires_at: iso(row.expires_at),
      created_at: iso(row.created_at),
      updated_at: iso(row.updated_at),
    };
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }
}

type Outcome =
  | { kind: 'not_found' }
  | { kind: 'refused'; row: VerificationTable; events: number }
  | { kind: 'done'; row: VerificationTable; events: number; valid: boolean };

function notFound(id: string): RelaisError {
  return new RelaisError('not_found', `no verification ${id}`, 'id');
}

function checkRange(value: number, range: { min: number; max: number }, field: string): number {
  if (!Number.isInteger(value) || value < range.min || value > range.max) {
    throw new RelaisError(
      'invalid_field',
      `${field} must be a whole number from ${range.min} to ${range.max}`,
      field,
    );
  }
  return value;
}

/** The SMS text is the customer's template: its length errors name the `template` field. */
function asTemplateError(err: unknown): unknown {
  if (err instanceof RelaisError && err.field === 'text') {
    return new RelaisError(err.code, `with the code in it, ${err.message}`, 'template');
  }
  return err;
}
