import type { Config } from '../config/schema.js';
import { withOptoutMention } from '../optouts/optouts.js';
import { RelaisError } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import { exceptionStatus, type MessageTable } from '../store/schema.js';
import { CallbackUrlError, checkCallbackUrl } from '../webhooks/targets.js';
import { analyzeText } from './encoding.js';
import { normaliseDestination, type PhoneOutcome, unwrapPhoneOutcome } from './phone.js';
import { validateSender } from './sender.js';
import type { AcceptedMessage, SubmitInput } from './types.js';

const MAX_SCHEDULE_AHEAD_MS = 30 * 24 * 3600_000;
const LANES = new Set(['otp', 'transactional', 'bulk']);

export interface PreparedMessage {
  row: MessageTable;
  accepted: AcceptedMessage;
}

/**
 * Turns one send request into the row to persist and the answer to give, or throws a RelaisError that
 * names the offending field. Pure apart from the clock value and the id it is given: nothing is written.
 */
export function prepareMessage(
  tenantId: string,
  input: SubmitInput,
  now: number,
  limits: Config['messages'],
  webhooks: Config['webhooks'],
  /** The tenant's opt-out mention, appended to `bulk` texts before they are counted in segments. */
  optoutMention: string | null = null,
  /** The destination already normalised (phone-pool.ts), or null to normalise it here. */
  normalised: PhoneOutcome | null = null,
): PreparedMessage {
  const lane = input.lane ?? 'transactional';
  if (!LANES.has(lane)) {
    throw new RelaisError('invalid_lane', `lane must be otp, transactional or bulk, not "${lane}"`, 'lane');
  }
  const destination = normalised
    ? unwrapPhoneOutcome(normalised)
    : normaliseDestination(input.to, input.country);
  const { sender } = validateSender(input.from);

  if (input.text.length === 0 || input.text.trim().length === 0) {
    throw new RelaisError('empty_text', 'the text is empty', 'text');
  }
  const text = lane === 'bulk' ? withOptoutMention(input.text, optoutMention) : input.text;
  const analysis = analyzeText(text);
  if (analysis.segments > limits.max_segments) {
    throw new RelaisError(
      'text_too_long',
      `the text needs ${analysis.segments} ${analysis.encoding} segments; at most ${limits.max_segments} are allowed`,
      'text',
    );
  }

  let sendAt: number | null = null;
  if (input.send_at !== undefined) {
    sendAt = parseSendAt(input.send_at, now);
  }
  const validity = input.validity_minutes ?? limits.default_validity_minutes;
  if (!Number.isInteger(validity) || validity < 1 || validity > limits.max_validity_minutes) {
    throw new RelaisError(
      'invalid_validity',
      `validity_minutes must be a whole number from 1 to ${limits.max_validity_minutes}`,
      'validity_minutes',
    );
  }

  let callbackUrl: string | null = null;
  if (input.callback_url !== undefined) {
    try {
      callbackUrl = checkCallbackUrl(input.callback_url, {
        allowPrivateTargets: webhooks.allow_private_targets,
      }).toString();
    } catch (err) {
      if (err instanceof CallbackUrlError) throw new RelaisError(err.code, err.message, 'callback_url');
      throw err;
    }
  }

  const id = newId('msg', now);
  const startAt = sendAt ?? now;
  const expiresAt = startAt + validity * 60_000;
  const status = sendAt !== null ? 'scheduled' : 'accepted';
  const row: MessageTable = {
    id,
    tenant_id: tenantId,
    to_number: destination.e164,
    country: destination.country,
    sender,
    body: text,
    lane,
    encoding: analysis.encoding,
    segments: analysis.segments,
    status,
    exception_status: exceptionStatus(status),
    client_ref: input.client_ref ?? null,
    callback_url: callbackUrl,
    send_at: sendAt,
    expires_at: expiresAt,
    error_code: null,
    error_reason: null,
    connector: null,
    created_at: now,
    updated_at: now,
    sealed_body: input.sealedText ?? null,
    campaign_id: input.campaignId ?? null,
  };
  return {
    row,
    accepted: {
      id,
      status,
      to: destination.e164,
      from: sender,
      lane,
      encoding: analysis.encoding,
      segments: analysis.segments,
      parts: analysis.parts.length,
      client_ref: row.client_ref,
      send_at: sendAt === null ? null : new Date(sendAt).toISOString(),
      expires_at: new Date(expiresAt).toISOString(),
      created_at: new Date(now).toISOString(),
    },
  };
}

// RFC 3339 with an explicit offset: a bare local time would be read in the server's zone, silently.
const ISO_WITH_ZONE =
  /^(\d{4})-(\d{2})-(\d{2})T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?(Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$/;

/** Date.parse rolls impossible dates over (2026-02-31 is read as March 3rd): refuse them instead. */
function isCalendarDate(year: number, month: number, day: number): boolean {
  const d = new Date(Date.UTC(year, month - 1, day));
  return d.getUTCFullYear() === year && d.getUTCMonth() === month - 1 && d.getUTCDate() === day;
}

export function parseSendAt(value: string, now: number): number | null {
  const m = ISO_WITH_ZONE.exec(value);
  const t = m && isCalendarDate(Number(m[1]), Number(m[2]), Number(m[3])) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(t)) {
    throw new RelaisError(
      'invalid_send_at',
      `send_at must be an ISO 8601 time with a zone, like 2026-12-24T18:00:00+01:00 (got "${value}")`,
      'send_at',
    );
  }
  if (t - now > MAX_SCHEDULE_AHEAD_MS) {
    throw new RelaisError('invalid_send_at', 'send_at may be at most 30 days ahead', 'send_at');
  }
  // A time already past is simply "now": clocks drift, and the customer wants it sent.
  return t > now ? t : null;
}
