import { newId } from '../shared/ids.js';
import type { MessageStatus } from '../store/schema.js';
import type { Trx } from '../store/store.js';

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
  /** Free text kept in the status history (never shown to other tenants, never a secret). */
  detail?: string | null;
}

interface MessageForEvent {
  id: string;
  tenant_id: string;
  to_number: string;
  client_ref: string | null;
  callback_url: string | null;
  segments: number;
  status: MessageStatus;
  webhook_url: string | null;
}

/**
 * Applies status changes in the caller's transaction: the message row, its status history, its parts,
 * and — in the same transaction, so a change is never recorded without its notification — one webhook
 * event per change for messages that have a callback URL or whose tenant has a default one.
 * Changes to a message already in a final state are ignored (a late receipt cannot resurrect it).
 * Returns the number of webhook events created.
 */
export async function applyStatusChanges(trx: Trx, changes: StatusChange[], now: number): Promise<number> {
  if (changes.length === 0) return 0;
  const ids = [...new Set(changes.map((c) => c.messageId))];
  const messages = new Map<string, MessageForEvent>();
  for (let i = 0; i < ids.length; i += 500) {
    const rows = await trx
      .selectFrom('messages')
      .innerJoin('tenants', 'tenants.id', 'messages.tenant_id')
      .select([
        'messages.id',
        'messages.tenant_id',
        'messages.to_number',
        'messages.client_ref',
        'messages.callback_url',
        'messages.segments',
        'messages.status',
        'tenants.webhook_url',
      ])
      .where('messages.id', 'in', ids.slice(i, i + 500))
      .execute();
    for (const row of rows) messages.set(row.id, row);
  }

  const events: {
    message_id: string;
    status: MessageStatus;
    at: number;
    error_code: string | null;
    detail: string | null;
  }[] = [];
  const webhooks: {
    id: string;
    tenant_id: string;
    message_id: string;
    type: string;
    url: string;
    payload: string;
    status: 'pending';
    attempts: number;
    next_attempt_at: number;
    last_error: null;
    created_at: number;
    delivered_at: null;
  }[] = [];

  for (const change of changes) {
    const message = messages.get(change.messageId);
    if (!message || FINAL_STATUSES.has(message.status)) continue;
    await trx
      .updateTable('messages')
      .set({
        status: change.status,
        error_code: change.errorCode ?? null,
        error_reason: change.errorReason ?? null,
        ...(change.connector !== undefined ? { connector: change.connector } : {}),
        updated_at: now,
      })
      .where('id', '=', change.messageId)
      .execute();
    for (const part of change.parts ?? []) {
      await trx
        .insertInto('message_parts')
        .values({
          message_id: change.messageId,
          part_no: part.partNo,
          connector: part.connector ?? null,
          carrier_id: part.carrierId ?? null,
          status: part.status,
          error_code: part.errorCode ?? null,
          updated_at: now,
        })
        .onConflict((oc) =>
          oc.columns(['message_id', 'part_no']).doUpdateSet((eb) => ({
            connector: eb.fn.coalesce('excluded.connector', 'message_parts.connector'),
            carrier_id: eb.fn.coalesce('excluded.carrier_id', 'message_parts.carrier_id'),
            status: eb.ref('excluded.status'),
            error_code: eb.ref('excluded.error_code'),
            updated_at: eb.ref('excluded.updated_at'),
          })),
        )
        .execute();
    }
    message.status = change.status;
    events.push({
      message_id: change.messageId,
      status: change.status,
      at: now,
      error_code: change.errorCode ?? null,
      detail: change.detail ?? null,
    });
    const url = message.callback_url ?? message.webhook_url;
    if (url) {
      const eventId = newId('evt', now);
      webhooks.push({
        id: eventId,
        tenant_id: message.tenant_id,
        message_id: message.id,
        type: 'message.status',
        url,
        payload: JSON.stringify({
          id: eventId,
          type: 'message.status',
          created_at: new Date(now).toISOString(),
          data: {
            id: message.id,
            status: change.status,
            status_at: new Date(now).toISOString(),
            to: message.to_number,
            client_ref: message.client_ref,
            segments: message.segments,
            error_code: change.errorCode ?? null,
            error_reason: change.errorReason ?? null,
          },
        }),
        status: 'pending',
        attempts: 0,
        next_attempt_at: now,
        last_error: null,
        created_at: now,
        delivered_at: null,
      });
    }
  }
  for (let i = 0; i < events.length; i += 500) {
    await trx
      .insertInto('message_events')
      .values(events.slice(i, i + 500))
      .execute();
  }
  for (let i = 0; i < webhooks.length; i += 500) {
    await trx
      .insertInto('webhook_events')
      .values(webhooks.slice(i, i + 500))
      .execute();
  }
  return webhooks.length;
}
