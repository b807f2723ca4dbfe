import type { CampaignTable } from '../store/schema.js';
import type { Db } from '../store/store.js';

export interface CampaignStats {
  /** Recipients handled so far: queued + skipped_optout + skipped_invalid. */
  targeted: number;
  skipped_optout: number;
  skipped_invalid: number;
  /** Messages created. */
  queued: number;
  /** Messages the carrier accepted (submit_sm_resp OK), whatever happened after. */
  sent: number;
  delivered: number;
  /** undelivered + expired + rejected + failed (including campaign_cancelled). */
  failed: number;
  /** Created and not yet in a final status: queued − delivered − failed. */
  pending: number;
  segments: number;
  replies: number;
  optouts: number;
}

/**
 * Live statistics without reading the history: the campaign row's counters (kept by the runner, the
 * inbound path) plus the hourly rollups of this campaign, which count messages *entering* each status
 * (written in the same transaction as the change). A campaign has a few rows per hour and status.
 */
export async function campaignStats(db: Db, campaign: CampaignTable): Promise<CampaignStats> {
  const rows = await db
    .selectFrom('stats_hourly')
    .select([
      'status',
      (eb) => eb.fn.sum<number>('messages').as('n'),
      (eb) => eb.fn.sum<number>('segments').as('s'),
    ])
    .where('campaign_id', '=', campaign.id)
    .where('tenant_id', '=', campaign.tenant_id)
    .groupBy('status')
    .execute();
  const entered: Record<string, number> = {};
  let segments = 0;
  for (const r of rows) {
    entered[r.status] = Number(r.n);
    if (r.status === 'accepted') segments = Number(r.s);
  }
  const delivered = entered.delivered ?? 0;
  const failed =
    (entered.undelivered ?? 0) + (entered.expired ?? 0) + (entered.rejected ?? 0) + (entered.failed ?? 0);
  return {
    targeted: campaign.targeted,
    skipped_optout: campaign.skipped_optout,
    skipped_invalid: campaign.skipped_invalid,
    queued: campaign.queued,
    sent: entered.submitted ?? 0,
    delivered,
    failed,
    pending: Math.max(0, campaign.queued - delivered - failed),
    segments,
    replies: campaign.replies,
    optouts: campaign.optouts,
  };
}
