import type { VerificationStatus, VerificationTable, WebhookEventTable } from '../store/schema.js';
import type { Trx } from '../store/store.js';
import { tenantEventRow } from '../webhooks/event-rows.js';

export type VerificationEventRow = Pick<
  VerificationTable,
  'id' | 'tenant_id' | 'to_number' | 'country' | 'attempts' | 'resends'
> & { status: VerificationStatus };

/**
 * `verification.approved|failed|expired` events for the tenants' webhook URLs, written in the
 * caller's transaction — the one that changed the status — so a change is never recorded without its
 * notification. Shaped like message events; they never hold a code. Returns the number written.
 */
export async function writeVerificationEvents(
  trx: Trx,
  rows: VerificationEventRow[],
  now: number,
): Promise<number> {
  if (rows.length === 0) return 0;
  const tenants = await trx
    .selectFrom('tenants')
    .select(['id', 'webhook_url'])
    .where('id', 'in', [...new Set(rows.map((r) => r.tenant_id))])
    .execute();
  const urls = new Map(tenants.map((t) => [t.id, t.webhook_url]));
  const nowIso = new Date(now).toISOString();
  const events: WebhookEventTable[] = [];
  for (const v of rows) {
    const url = urls.get(v.tenant_id);
    if (!url) continue;
    events.push(
      tenantEventRow(
        v.tenant_id,
        `verification.${v.status}`,
        url,
        {
          id: v.id,
          status: v.status,
          status_at: nowIso,
          to: v.to_number,
          country: v.country,
          attempts: v.attempts,
          resends: v.resends,
        },
        now,
        nowIso,
      ),
    );
  }
  for (let i = 0; i < events.length; i += 500) {
    await trx
      .insertInto('webhook_events')
      .values(events.slice(i, i + 500))
      .execute();
  }
  return events.length;
}
