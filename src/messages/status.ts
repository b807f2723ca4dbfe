import { groupBy } from '../shared/group-by.js';
import { newId } from '../shared/ids.js';
import { RollupBatch } from '../stats/rollups.js';
import { inList, insertRows, upsertRows } from '../store/insert-rows.js';
import { returningRows } from '../store/json-rows.js';
import {
  exceptionStatus,
  type Lane,
  type MessagePartTable,
  type MessageStatus,
  type WebhookEventTable,
} from '../store/schema.js';
import type { Trx } from '../store/store.js';
import { pendingEventRow } from '../webhooks/event-rows.js';
import { type HandedOverEvent, writeHandover } from '../webhooks/handovers.js';
import type { DueEvent } from '../webhooks/outbox.js';

/** Statuses after which nothing more happens to a message. */
export const FINAL_STATUSES: ReadonlySet<MessageStatus> = new Set([
  'delivered',
  'undelivered',
  'expired',
  'rejected',
  'failed',
]);

export interface PartUpdate {
  partNo: number;
  connector?: string | null;
  carrierId?: string | null;
  /** carrierId normalised for receipt matching. */
  carrierKey?: string | null;
  status: MessageStatus;
  errorCode?: string | null;
}

/** A change of a message's status, from the dispatcher, a receipt, or housekeeping (expiry). */
export interface StatusChange {
  messageId: string;
  status: MessageStatus;
  errorCode?: string | null;
  errorReason?: string | null;
  connector?: string | null;
  parts?: PartUpdate[];
  /** Free text kept in the status history (never a secret). */
  detail?: string | null;
}

/**
 * A message as a status change leaves it: the columns the UPDATE applying the change returns
 * (updateReturning), with its tenant's webhook settings.
 */
export interface ChangedMessage {
  id: string;
  tenant_id: string;
  to_number: string;
  client_ref: string | null;
  callback_url: string | null;
  segments: number;
  lane: Lane;
  campaign_id: string | null;
  status: MessageStatus;
  error_code: string | null;
  error_reason: string | null;
  connector: string | null;
}

/** The webhook settings of a tenant, read once per batch for the tenants it touches. */
interface TenantHooks {
  webhook_url: string | null;
  webhook_secret: string;
  webhook_batch_size: number;
}

/**
 * Webhook events taken by the in-process sender straight from the committing transaction, collected
 * in `events` to be handed over after commit (no claim statement, no read back). They get no
 * webhook_events row yet: the transaction writes one webhook_handovers row listing them, leased to
 * the sender until `leasedUntil`, and each event's row is written after its first attempt
 * (src/webhooks/handovers.ts). A crash leaves the handover row; its events come due when the lease
 * runs out.
 */
export interface WebhookHandover {
  leasedUntil: number;
  events: DueEvent[];
}

export interface StatusWriteOptions {
  /** Webhook events go to the in-process sender from this transaction (see WebhookHandover). */
  handover?: WebhookHandover | undefined;
  /**
   * Only messages of one part take the changes (receipts: a one-part message's status is its part's,
   * so the receipt path need not read the message first); the others are left as they are.
   */
  singlePartOnly?: boolean;
  /**
   * Statistics folded here for the caller to write last in its transaction (RollupBatch.write: on
   * PostgreSQL the upsert locks the hour's rows until commit); written here when absent.
   */
  rollups?: RollupBatch;
}

/** A message_parts row, as upserted. */
export type PartRow = MessagePartTable;

// Keeps every statement under SQLite's 32,766 bound-variable limit with room to spare.
const CHUNK = 500;

/**
 * Applies status changes in the caller's transaction: the message rows, their status history, their
 * parts, and — in the same transaction, so a change is never recorded without its notification — one
 * webhook event per change for messages with a callback URL or a tenant default URL.
 *
 * Built for batches (receipts arrive by thousands per second): a handful of multi-row statements
 * whatever the batch size. Changes to a message already in a final state are ignored (a late receipt
 * cannot resurrect it). Returns the number of webhook events created.
 */
export async function applyStatusChanges(
  trx: Trx,
  changes: StatusChange[],
  now: number,
  options: StatusWriteOptions = {},
): Promise<number> {
  return (await writeStatusChanges(trx, changes, now, options)).events;
}

/** applyStatusChanges, also telling which messages took a change. */
export async function writeStatusChanges(
  trx: Trx,
  changes: StatusChange[],
  now: number,
  options: StatusWriteOptions = {},
): Promise<{ events: number; applied: Set<string> }> {
  const applied = new Set<string>();
  if (changes.length === 0) return { events: 0, applied };
  const { handover } = options;
  const after = await updateInRounds(trx, changes, now, options.singlePartOnly === true);
  const tenants = await tenantHooks(trx, after);
  const parts = new Map<string, PartRow>();
  const events: {
    message_id: string;
    status: MessageStatus;
    at: number;
    error_code: string | null;
    detail: string | null;
    webhook_event_id: string | null;
  }[] = [];
  const webhooks: WebhookEventTable[] = [];
  const handedOver: HandedOverEvent[] = [];
  // The handover row's id: its first event's.
  let handoverId: string | undefined;
  const rollups = options.rollups ?? new RollupBatch();
  const nowIso = new Date(now).toISOString();

  // In the order of the changes, each with the message as that change left it.
  for (let i = 0; i < changes.length; i++) {
    const m = after[i];
    if (m === undefined) continue;
    const change = changes[i]!;
    applied.add(m.id);
    for (const p of change.parts ?? []) {
      const key = `${m.id}#${p.partNo}`;
      const prev = parts.get(key);
      parts.set(key, {
        message_id: m.id,
        part_no: p.partNo,
        connector: p.connector ?? prev?.connector ?? null,
        carrier_id: p.carrierId ?? prev?.carrier_id ?? null,
        carrier_key: p.carrierKey ?? prev?.carrier_key ?? null,
        status: p.status,
        error_code: p.errorCode ?? null,
        updated_at: now,
      });
    }
    const history = {
      message_id: m.id,
      status: m.status,
      at: now,
      error_code: m.error_code,
      detail: change.detail ?? null,
      webhook_event_id: null as string | null,
    };
    events.push(history);
    rollups.add({
      at: now,
      tenantId: m.tenant_id,
      lane: m.lane,
      connector: m.connector,
      campaignId: m.campaign_id,
      status: m.status,
      segments: m.segments,
    });
    const tenant = tenants.get(m.tenant_id)!;
    const url = m.callback_url ?? tenant.webhook_url;
    if (!url) continue;
    const id = newId('evt', now);
    history.webhook_event_id = id;
    if (handover) {
      handoverId ??= id;
      const listed: HandedOverEvent = [id, m.id, m.status, m.error_code, m.error_reason];
      handedOver.push(listed);
      handover.events.push({
        id,
        tenant_id: m.tenant_id,
        url,
        payload: statusPayload(id, m, nowIso),
        attempts: 0,
        created_at: now,
        webhook_secret: tenant.webhook_secret,
        webhook_batch_size: tenant.webhook_batch_size,
        unwritten: { handoverId, listed },
      });
    } else {
      webhooks.push(statusEvent(id, m, url, now, nowIso));
    }
  }

  await upsertParts(trx, [...parts.values()]);
  for (let i = 0; i < events.length; i += CHUNK)
    await insertRows(trx, 'message_events', events.slice(i, i + CHUNK));
  for (let i = 0; i < webhooks.length; i += CHUNK)
    await insertRows(trx, 'webhook_events', webhooks.slice(i, i + CHUNK));
  if (handover && handoverId !== undefined)
    await writeHandover(trx, handoverId, handover.leasedUntil, now, handedOver);
  if (!options.rollups) await rollups.write(trx);
  return { events: webhooks.length + handedOver.length, applied };
}

/** The columns updateReturning reads back: what events, webhooks and statistics need. */
const RETURNED = [
  'id',
  'tenant_id',
  'to_number',
  'client_ref',
  'callback_url',
  'segments',
  'lane',
  'campaign_id',
  'status',
  'error_code',
  'error_reason',
  'connector',
] as const;

/**
 * Writes the changes to the message rows, and returns, for each change, the message as that change
 * left it — or undefined where the message is missing or was already final, so the change is ignored.
 *
 * Each message's row is updated and read back by one UPDATE … RETURNING, with the final-status check
 * in its WHERE: a SELECT of the rows before their UPDATE found every row twice (profiled: the
 * SELECT was the costliest statement of the carrier path on SQLite). One UPDATE per distinct new
 * state (status, error, connector) and 500 messages, not one per message. A message with several
 * changes in the batch (rare) takes them in rounds, its first change in the first: each round sees
 * what the last one left, as applying them one by one would.
 */
async function updateInRounds(
  trx: Trx,
  changes: StatusChange[],
  now: number,
  singlePartOnly: boolean,
): Promise<(ChangedMessage | undefined)[]> {
  const after: (ChangedMessage | undefined)[] = new Array(changes.length);
  const done = new Set<string>();
  let pending = changes.map((_, i) => i);
  while (pending.length > 0) {
    const round: number[] = [];
    const later: number[] = [];
    const inRound = new Set<string>();
    for (const i of pending) {
      const id = changes[i]!.messageId;
      if (done.has(id)) continue;
      if (inRound.has(id)) later.push(i);
      else {
        inRound.add(id);
        round.push(i);
      }
    }
    const rows = await updateReturning(
      trx,
      round.map((i) => changes[i]!),
      now,
      singlePartOnly,
    );
    for (const i of round) {
      const id = changes[i]!.messageId;
      const row = rows.get(id);
      after[i] = row;
      if (row === undefined || FINAL_STATUSES.has(row.status)) done.add(id);
    }
    pending = later;
  }
  return after;
}

/** Changes of distinct messages: one UPDATE … RETURNING per distinct new state and 500 messages. */
async function updateReturning(
  trx: Trx,
  changes: StatusChange[],
  now: number,
  singlePartOnly: boolean,
): Promise<Map<string, ChangedMessage>> {
  // A change without a connector keeps the message's own.
  const groups = groupBy(
    changes,
    (c) =>
      JSON.stringify([
        c.status,
        c.errorCode ?? null,
        c.errorReason ?? null,
        c.connector === undefined ? KEEP : c.connector,
      ]),
    (a, b) =>
      a.status === b.status &&
      (a.errorCode ?? null) === (b.errorCode ?? null) &&
      (a.errorReason ?? null) === (b.errorReason ?? null) &&
      a.connector === b.connector,
  );
  const out = new Map<string, ChangedMessage>();
  for (const group of groups.values()) {
    const { status, errorCode, errorReason, connector } = group[0]!;
    for (let i = 0; i < group.length; i += CHUNK) {
      const ids = group.slice(i, i + CHUNK).map((c) => c.messageId);
      let update = trx
        .updateTable('messages')
        .set({
          status,
          exception_status: exceptionStatus(status),
          error_code: errorCode ?? null,
          error_reason: errorReason ?? null,
          updated_at: now,
        })
        .where(inList(trx, 'id', ids))
        .where('status', 'not in', FINAL_LIST);
      if (connector !== undefined) update = update.set({ connector });
      if (singlePartOnly) update = update.where('segments', '=', 1);
      for (const row of await returningRows<ChangedMessage>(trx, update, RETURNED)) out.set(row.id, row);
    }
  }
  return out;
}

const KEEP = '\u0000keep';
const FINAL_LIST = [...FINAL_STATUSES];

/** The webhook settings of the tenants of the changed messages. */
async function tenantHooks(
  trx: Trx,
  changed: readonly (ChangedMessage | undefined)[],
): Promise<Map<string, TenantHooks>> {
  const ids = new Set<string>();
  for (const m of changed) if (m !== undefined) ids.add(m.tenant_id);
  if (ids.size === 0) return new Map();
  const rows = await trx
    .selectFrom('tenants')
    .select(['id', 'webhook_url', 'webhook_secret', 'webhook_batch_size'])
    .where(inList(trx, 'id', [...ids]))
    .execute();
  return new Map(rows.map((r) => [r.id, r]));
}

// A part sent again (a retry after a crash) gets its new carrier id; a change that names none keeps the one recorded.
const PARTS_ON_CONFLICT = `on conflict ("message_id", "part_no") do update set
  "connector" = coalesce(excluded."connector", "message_parts"."connector"),
  "carrier_id" = coalesce(excluded."carrier_id", "message_parts"."carrier_id"),
  "carrier_key" = coalesce(excluded."carrier_key", "message_parts"."carrier_key"),
  "status" = excluded."status",
  "error_code" = excluded."error_code",
  "updated_at" = excluded."updated_at"`;

async function upsertParts(trx: Trx, rows: PartRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += CHUNK)
    await upsertRows(trx, 'message_parts', rows.slice(i, i + CHUNK), PARTS_ON_CONFLICT);
}

/** The fields of a message a status event shows (statusPayload), with its tenant. */
export type StatusEventMessage = Pick<
  ChangedMessage,
  'id' | 'tenant_id' | 'status' | 'to_number' | 'client_ref' | 'segments' | 'error_code' | 'error_reason'
>;

/**
 * A message.status event's webhook_events row, pending and due at its creation. Also used to write
 * again the events of a crashed sender's handover (src/webhooks/handovers.ts).
 */
export function statusEvent(
  id: string,
  m: StatusEventMessage,
  url: string,
  createdAt: number,
  createdIso: string,
): WebhookEventTable {
  // Serialised once: the stored text is exactly what is signed and sent, on every attempt.
  return pendingEventRow(
    id,
    m.tenant_id,
    m.id,
    'message.status',
    url,
    statusPayload(id, m, createdIso),
    createdAt,
  );
}

const str = JSON.stringify;

/**
 * The JSON of a message.status event, written as a template: JSON.stringify of the nested object
 * took 2.1 µs an event, this 0.6 (measured apart), and there are two events per message. Ids,
 * statuses and times are our own and need no escaping; every other text goes through
 * JSON.stringify. The same text as JSON.stringify({ id, type, created_at, data: {…} }) would give
 * (test/status-changes.test.ts checks it).
 */
export function statusPayload(
  id: string,
  m: Pick<
    ChangedMessage,
    'id' | 'status' | 'to_number' | 'client_ref' | 'segments' | 'error_code' | 'error_reason'
  >,
  nowIso: string,
): string {
  return `{"id":"${id}","type":"message.status","created_at":"${nowIso}","data":{"id":"${m.id}","status":"${m.status}","status_at":"${nowIso}","to":${str(m.to_number)},"client_ref":${str(m.client_ref)},"segments":${m.segments},"error_code":${str(m.error_code)},"error_reason":${str(m.error_reason)}}}`;
}
