import type { Kysely } from 'kysely';

/**
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
}
