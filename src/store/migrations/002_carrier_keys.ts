import type { Kysely } from 'kysely';

/**
 * Dispatch and receipts.
 *
 * The bulk lane is claimed tenant by tenant (fair share): `queue_bulk_tenant` lets the claim find the
 * tenants with work by a loose index scan and take each one's oldest messages.
 *
 * Receipts name a part by the carrier's message id, written hex or decimal depending on the carrier:
 * `carrier_key` holds the normalised form (see receipts/carrier-keys.ts) and is indexed per connector
 * so a receipt finds its part even after a restart.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('message_parts').addColumn('carrier_key', 'text').execute();
  await db.schema
    .createIndex('message_parts_carrier_key')
    .on('message_parts')
    .columns(['connector', 'carrier_key'])
    .execute();
  await db.schema
    .createIndex('queue_bulk_tenant')
    .on('queue')
    .columns(['lane_rank', 'tenant_id', 'message_id'])
    .execute();
}
