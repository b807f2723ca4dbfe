import type { Clock } from '../shared/clock.js';
import { RelaisError } from '../shared/errors.js';
import type { Store } from '../store/store.js';
import { canonicalInboundNumber } from './addresses.js';

export interface NumberView {
  number: string;
  tenant_id: string;
  created_at: string;
}

/**
 * Inbound numbers and short codes, assigned to tenants by the operator (CLI and /admin API). A short
 * code may be shared: each (number, tenant) is one assignment.
 */
export class NumberService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /** Idempotent: assigning a number twice to the same tenant keeps the first assignment. */
  async add(rawNumber: string, tenantId: string): Promise<{ created: boolean; number: NumberView }> {
    const number = canonicalInboundNumber(rawNumber);
    const now = this.clock.now();
    return this.store.write(async (trx) => {
      const tenant = await trx
        .selectFrom('tenants')
        .select('id')
        .where('id', '=', tenantId)
        .executeTakeFirst();
      if (!tenant) throw new RelaisError('not_found', `no tenant ${tenantId}`, 'tenant_id');
      const inserted = await trx
        .insertInto('numbers')
        .values({ number, tenant_id: tenantId, created_at: now })
        .onConflict((oc) => oc.columns(['number', 'tenant_id']).doNothing())
        .returningAll()
        .executeTakeFirst();
      const row =
        inserted ??
        (await trx
          .selectFrom('numbers')
          .selectAll()
          .where('number', '=', number)
          .where('tenant_id', '=', tenantId)
          .executeTakeFirstOrThrow());
      return { created: inserted !== undefined, number: numberView(row) };
    });
  }

  async list(tenantId?: string): Promise<NumberView[]> {
    let q = this.store.db.selectFrom('numbers').selectAll();
    if (tenantId !== undefined) q = q.where('tenant_id', '=', tenantId);
    const rows = await q.orderBy('number').orderBy('tenant_id').execute();
    return rows.map(numberView);
  }

  /** Throws not_found when the number is not assigned to that tenant. */
  async remove(rawNumber: string, tenantId: string): Promise<void> {
    const number = canonicalInboundNumber(rawNumber);
    const removed = await this.store.write((trx) =>
      trx
        .deleteFrom('numbers')
        .where('number', '=', number)
        .where('tenant_id', '=', tenantId)
        .executeTakeFirst(),
    );
    if (Number(removed.numDeletedRows) === 0) {
      throw new RelaisError('not_found', `${number} is not assigned to tenant ${tenantId}`, 'number');
    }
  }
}

function numberView(row: { number: string; tenant_id: string; created_at: number }): NumberView {
  return { number: row.number, tenant_id: row.tenant_id, created_at: new Date(row.created_at).toISOString() };
}
