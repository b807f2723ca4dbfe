import type { Generated } from 'kysely';

/**
 * Table shapes as Kysely sees them. Times are integer milliseconds since the epoch in both databases
 * (BIGINT on PostgreSQL, parsed back to number), so the two dialects share every query.
 */
export interface Database {
  tenants: TenantTable;
  api_keys: ApiKeyTable;
  messages: MessageTable;
  message_parts: MessagePartTable;
  message_events: MessageEventTable;
  queue: QueueTable;
  webhook_events: WebhookEventTable;
  webhook_handovers: WebhookHandoverTable;
  webhook_deliveries: WebhookDeliveryTable;
  webhook_attempts: WebhookAttemptTable;
  idempotency_keys: IdempotencyKeyTable;
  verifications: VerificationTable;
  rate_limits: RateLimitTable;
  verify_settings: VerifySettingsTable;
  contacts: ContactTable;
  lists: ListTable;
  list_members: ListMemberTable;
  imports: ImportTable;
  import_errors: ImportErrorTable;
  optouts: OptoutTable;
  numbers: NumberTable;
  inbound_messages: InboundMessageTable;
  inbound_parts: InboundPartTable;
  campaigns: CampaignTable;
  stats_hourly: StatsHourlyTable;
}

export interface TenantTable {
  id: string;
  name: string;
  status: 'active' | 'suspended';
  webhook_url: string | null;
  webhook_secret: string;
  /** 0: one event per request; N > 1: up to N events of one endpoint per request. */
  webhook_batch_size: number;
  /** Appended to `bulk` messages (French rule: "STOP au 36111"); null: none. */
  optout_mention: string | null;
  /** History retention for this tenant in days; null: the platform's `retention` settings. */
  retention_days: number | null;
  created_at: number;
}

export interface ApiKeyTable {
  id: string;
  tenant_id: string;
  /** Public, indexed part of the key used to find the row; the rest is only stored hashed. */
  prefix: string;
  secret_hash: string;
  name: string | null;
  created_at: number;
  revoked_at: number | null;
}

export type Lane = 'otp' | 'transactional' | 'bulk';
export type MessageStatus =
  | 'accepted'
  | 'scheduled'
  | 'submitted'
  | 'delivered'
  | 'undelivered'
  | 'expired'
  | 'rejected'
  | 'failed';

/**
 * The statuses a message list can filter on through an index of their own on PostgreSQL (see
 * `exception_status`): rare ones, which the carrier path's updates never set.
 */
export const EXCEPTION_STATUSES: ReadonlySet<MessageStatus> = new Set([
  'scheduled',
  'undelivered',
  'expired',
  'rejected',
  'failed',
]);

/** `exception_status` for a message in `status`. */
export function exceptionStatus(status: MessageStatus): MessageStatus | null {
  return EXCEPTION_STATUSES.has(status) ? status : null;
}

/**
 * PostgreSQL: room left in each page of `messages` and `message_parts` for the new row versions of
 * the carrier path's updates (a message's status changes, a part's receipt), so they stay on the page
 * as heap-only updates (migration 011). At 50, 97% of the message updates were, and the heap ended
 * smaller than with full pages (70 and 80 measured too: docs/architecture.md).
 */
export const HOT_UPDATE_FILLFACTOR = 50;

/** The history: one row per message, append-mostly. */
export interface MessageTable {
  id: string;
  tenant_id: string;
  to_number: string;
  country: string | null;
  sender: string;
  body: string;
  lane: Lane;
  encoding: 'GSM-7' | 'UCS-2';
  segments: number;
  status: MessageStatus;
  /**
   * The status when it is one of EXCEPTION_STATUSES, else null: indexed on PostgreSQL in place of the
   * status itself, which changes twice per message on the carrier path (migration 011).
   */
  exception_status: MessageStatus | null;
  client_ref: string | null;
  callback_url: string | null;
  send_at: number | null;
  expires_at: number;
  error_code: string | null;
  error_reason: string | null;
  connector: string | null;
  created_at: number;
  updated_at: number;
  /**
   * Verify codes: the real text sealed with AES-256-GCM (src/verify/sealing.ts) while `body` holds it
   * masked; the dispatcher unseals it. Null for every other message.
   */
  sealed_body: string | null;
  /** The campaign that sent it, or null. */
  campaign_id: string | null;
  /** When retention blanked `body` (retention.redact_bodies_after_days); null while it is kept. */
  redacted_at?: number | null;
}

/** One row per SMS part once it has been submitted to a carrier. */
export interface MessagePartTable {
  message_id: string;
  part_no: number;
  connector: string | null;
  carrier_id: string | null;
  /** carrier_id normalised for matching receipts (hex/decimal agnostic). */
  carrier_key: string | null;
  status: MessageStatus;
  error_code: string | null;
  updated_at: number;
}

/** Status history of a message. */
export interface MessageEventTable {
  id: Generated<number>;
  message_id: string;
  status: MessageStatus;
  at: number;
  error_code: string | null;
  detail: string | null;
  /** The webhook event of this status change, if one was made (migration 015). */
  webhook_event_id?: string | null;
}

/** Pending work only: a row leaves when the carrier has answered, so this table stays small. */
export interface QueueTable {
  message_id: string;
  tenant_id: string;
  lane: Lane;
  /** 0 = otp, 1 = transactional, 2 = bulk: the dispatcher serves lower ranks strictly first. */
  lane_rank: number;
  not_before: number;
  expires_at: number;
  attempts: number;
  claimed_by: string | null;
  claimed_until: number | null;
  campaign_id: string | null;
}

/**
 * Webhook events handed to the in-process sender and not yet written to webhook_events, one row per
 * transaction that created them (src/webhooks/handovers.ts).
 */
export interface WebhookHandoverTable {
  /** The id of its first event. */
  id: string;
  /** Past this, the events are turned into pending webhook_events rows by whoever runs (a crash). */
  leased_until: number;
  created_at: number;
  /** JSON: one HandedOverEvent tuple per event. */
  events: string;
}

/**
 * One request that delivered handed-over events at their first attempt: they have no webhook_events
 * row (src/webhooks/deliveries.ts).
 */
export interface WebhookDeliveryTable {
  /** The smallest id of the events it lists. */
  id: string;
  tenant_id: string;
  /** The largest id of the events it lists: never more than a minute after `id`. */
  last_event_id: string;
  url: string;
  attempted_at: number;
  status_code: number;
  duration_ms: number;
  /** JSON: one DeliveredEvent tuple per event. */
  events: string;
}

export interface WebhookEventTable {
  id: string;
  tenant_id: string;
  message_id: string | null;
  type: string;
  url: string;
  /** The exact JSON body that is signed and sent, serialised once. */
  payload: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  created_at: number;
  delivered_at: number | null;
  /**
   * The attempt that delivered the event: its HTTP status and duration (its time is delivered_at).
   * Only the attempts that failed have a row in webhook_attempts; the API's attempt log adds this one.
   */
  delivered_status_code: number | null;
  delivered_duration_ms: number | null;
}

export interface WebhookAttemptTable {
  id: Generated<number>;
  event_id: string;
  attempted_at: number;
  duration_ms: number;
  status_code: number | null;
  error: string | null;
}

export interface IdempotencyKeyTable {
  tenant_id: string;
  key: string;
  /** SHA-256 of method, path and body: the same key with another request is refused. */
  request_hash: string;
  status_code: number;
  response_body: string;
  created_at: number;
}

export type VerificationStatus = 'pending' | 'approved' | 'failed' | 'expired';

/** Verify (src/verify/): one row per verification. The code is only ever stored as a keyed hash. */
export interface VerificationTable {
  id: string;
  tenant_id: string;
  api_key_id: string | null;
  to_number: string;
  country: string | null;
  sender: string;
  locale: string;
  /** The customer's template (never holds a code), or null for the locale's default. */
  template: string | null;
  code_length: number;
  /** Hex: a random salt per code, and HMAC-SHA256 of salt, id and code (see src/verify/codes.ts). */
  code_salt: string;
  code_hash: string;
  status: VerificationStatus;
  attempts: number;
  max_attempts: number;
  resends: number;
  max_resends: number;
  ttl_seconds: number;
  /** The latest SMS sent for it. */
  message_id: string | null;
  last_sent_at: number;
  expires_at: number;
  /** When it left `pending`. */
  status_at: number | null;
  created_at: number;
  updated_at: number;
}

/** Fixed-window counters shared by every node (Verify rate limits and velocity alarms). */
export interface RateLimitTable {
  scope: string;
  key: string;
  window_start: number;
  hits: number;
  /** End of the window: the row can be deleted after it. */
  expires_at: number;
}

/** Per-tenant Verify settings; no row means the platform defaults. */
export interface VerifySettingsTable {
  tenant_id: string;
  /** JSON array of ISO 3166 codes, or null for any country. */
  allowed_countries: string | null;
  default_locale: string | null;
  updated_at: number;
}

/** A tenant's address book: one row per phone number (E.164), unique per tenant. */
export interface ContactTable {
  id: string;
  tenant_id: string;
  phone: string;
  country: string | null;
  first_name: string | null;
  last_name: string | null;
  /** JSON object of custom attributes (strings, numbers, booleans). */
  attributes: string;
  /** IANA zone; derived from the number's country unless given. */
  timezone: string | null;
  created_at: number;
  updated_at: number;
}

export interface ListTable {
  id: string;
  tenant_id: string;
  name: string;
  description: string | null;
  /** Kept up to date by every membership change: no COUNT(*) over a million rows. */
  member_count: number;
  created_at: number;
  updated_at: number;
}

export interface ListMemberTable {
  list_id: string;
  contact_id: string;
  added_at: number;
}

export type ImportStatus = 'running' | 'completed' | 'failed';

/** A CSV import into a list, with live counts. */
export interface ImportTable {
  id: string;
  tenant_id: string;
  list_id: string;
  status: ImportStatus;
  default_country: string | null;
  /** The phone column named by the customer (`phone_column=`), or null: found by header name. */
  phone_column: string | null;
  /** Data rows read so far. */
  total: number;
  imported: number;
  invalid: number;
  duplicates: number;
  bytes: number;
  error_code: string | null;
  error: string | null;
  created_at: number;
  updated_at: number;
  completed_at: number | null;
}

/** One rejected CSV row: its line number in the file, the raw phone value, and why. */
export interface ImportErrorTable {
  import_id: string;
  line: number;
  value: string | null;
  reason: string;
}

/** Numbers that must never receive `bulk` messages from this tenant. */
export interface OptoutTable {
  tenant_id: string;
  phone: string;
  /** api | keyword | import | ... */
  source: string;
  detail: string | null;
  created_at: number;
}

/** Inbound numbers and short codes, assigned to tenants by the operator (shared codes: many rows). */
export interface NumberTable {
  number: string;
  tenant_id: string;
  created_at: number;
}

/** A mobile-originated (MO) message. `tenant_id` is null when no tenant owns the number. */
export interface InboundMessageTable {
  id: string;
  tenant_id: string | null;
  /** The number or short code it was sent to. */
  to_number: string;
  from_number: string;
  text: string;
  connector: string | null;
  /** `stop` or `start` when the text was an opt-out keyword. */
  keyword: string | null;
  /** The campaign whose message it answers, when the reply could be attributed. */
  campaign_id: string | null;
  message_id: string | null;
  received_at: number;
  /** When retention blanked `text` (retention.redact_bodies_after_days); null while it is kept. */
  redacted_at?: number | null;
}

/** A part of a long MO waiting for the others (migration 008); the group is keyed by all but `seq`. */
export interface InboundPartTable {
  connector: string;
  from_number: string;
  to_number: string;
  reference: number;
  total: number;
  seq: number;
  /** The part's text, already decoded. */
  text: string;
  received_at: number;
}

export type CampaignStatus = 'draft' | 'scheduled' | 'running' | 'paused' | 'completed' | 'cancelled';

export interface CampaignTable {
  id: string;
  tenant_id: string;
  name: string;
  /** JSON array of list ids. */
  list_ids: string;
  sender: string;
  template: string;
  status: CampaignStatus;
  send_at: number | null;
  /** JSON: the send window in each recipient's time zone, or null for any time. */
  send_window: string | null;
  max_tps: number | null;
  /** The last contact id expanded into messages: the keyset cursor a restart resumes from. */
  cursor: string | null;
  targeted: number;
  skipped_optout: number;
  skipped_invalid: number;
  /** Messages created so far. */
  queued: number;
  replies: number;
  optouts: number;
  error: string | null;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  completed_at: number | null;
}

/** Hourly rollup: messages (and their segments) entering a status. '' stands for "none". */
export interface StatsHourlyTable {
  /** Start of the hour, epoch milliseconds. */
  hour: number;
  tenant_id: string;
  lane: Lane;
  connector: string;
  campaign_id: string;
  status: MessageStatus;
  messages: number;
  segments: number;
}

export const LANE_RANK: Record<Lane, number> = { otp: 0, transactional: 1, bulk: 2 };
export const LANES: readonly Lane[] = ['otp', 'transactional', 'bulk'];
