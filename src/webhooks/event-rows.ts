import { newId } from '../shared/ids.js';
import type { WebhookEventTable } from '../store/schema.js';

/** A new webhook_events row: pending, no attempt yet, due at its creation. */
export function pendingEventRow(
  id: string,
  tenantId: string,
  messageId: string | null,
  type: string,
  url: string,
  payload: string,
  createdAt: number,
): WebhookEventTable {
  return {
    id,
    tenant_id: tenantId,
    message_id: messageId,
    type,
    url,
    payload,
    status: 'pending',
    attempts: 0,
    next_attempt_at: createdAt,
    last_error: null,
    created_at: createdAt,
    delivered_at: null,
    delivered_status_code: null,
    delivered_duration_ms: null,
  };
}

/**
 * A new event about a tenant's own data (no message), its payload the envelope every event has:
 * `{id, type, created_at, data}`.
 */
export function tenantEventRow(
  tenantId: string,
  type: string,
  url: string,
  data: object,
  createdAt: number,
  createdIso: string,
): WebhookEventTable {
  const id = newId('evt', createdAt);
  const payload = JSON.stringify({ id, type, created_at: createdIso, data });
  return pendingEventRow(id, tenantId, null, type, url, payload, createdAt);
}
