import type { Trx } from '../store/store.js';
import { tenantEventRow } from '../webhooks/event-rows.js';

export interface TenantEvent {
  type: string;
  data: object;
}

/**
 * Webhook events about a tenant's own data (`message.inbound`, `optout.created`, `optout.deleted`),
 * written in the caller's transaction — the one that made the change — so a change is never recorded
 * without its notification. Nothing is written when the tenant has no webhook URL. Returns the count.
 */
export async function writeTenantEvents(
  trx: Trx,
  tenantId: string,
  events: readonly TenantEvent[],
  now: number,
): Promise<number> {
  if (events.length === 0) return 0;
  const tenant = await trx
    .selectFrom('tenants')
    .select('webhook_url')
    .where('id', '=', tenantId)
    .executeTakeFirst();
  const url = tenant?.webhook_url;
  if (!url) return 0;
  const createdAt = new Date(now).toISOString();
  const rows = events.map((e) => tenantEventRow(tenantId, e.type, url, e.data, now, createdAt));
  await trx.insertInto('webhook_events').values(rows).execute();
  return rows.length;
}
