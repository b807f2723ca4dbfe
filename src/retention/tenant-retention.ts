import { RelaisError } from '../shared/errors.js';
import type { Store } from '../store/store.js';

/**
 * A tenant's retention override, in days (fractions allowed), or null for the platform's
 * `retention.messages_days`. A longer override than the default keeps every tenant's partitions
 * longer on PostgreSQL, the others then losing their rows one by one (docs/retention.md).
 */
export async function setTenantRetention(store: Store, tenantId: string, days: number | null): Promise<void> {
  if (days !== null && !(Number.isFinite(days) && days >= 1 / 1440 && days <= 36_500)) {
    throw new RelaisError(
      'invalid_field',
      'retention days must be a number from 0.0007 (one minute) to 36500, or "default"',
      'retention_days',
    );
  }
  const result = await store.write((trx) =>
    trx.updateTable('tenants').set({ retention_days: days }).where('id', '=', tenantId).executeTakeFirst(),
  );
  if (Number(result.numUpdatedRows) === 0)
    throw new RelaisError('not_found', `no tenant ${tenantId}`, 'tenant');
}

/** Parses the CLI's `--retention-days` value: a number of days, or `default` to remove the override. */
export function parseRetentionDays(value: string): number | null {
  if (value === 'default') return null;
  const days = Number(value);
  if (value.trim() === '' || !Number.isFinite(days)) {
    throw new RelaisError(
      'invalid_field',
      `--retention-days takes a number of days or "default" (got "${value}")`,
    );
  }
  return days;
}
