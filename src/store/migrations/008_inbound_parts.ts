import type { Kysely } from 'kysely';

/**
 * Parts of long mobile-originated messages waiting for their siblings. Each part is acknowledged to
 * the carrier only once stored here, so a crash between two parts loses nothing; the last part turns
 * the group into one inbound_messages row and deletes it, in one transaction.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('inbound_parts')
    .addColumn('connector', 'text', (c) => c.notNull())
    .addColumn('from_number', 'text', (c) => c.notNull())
    .addColumn('to_number', 'text', (c) => c.notNull())
    .addColumn('reference', 'integer', (c) => c.notNull())
    .addColumn('total', 'integer', (c) => c.notNull())
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('text', 'text', (c) => c.notNull())
    .addColumn('received_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('inbound_parts_pk', [
      'connector',
      'from_number',
      'to_number',
      'reference',
      'total',
      'seq',
    ])
    .execute();
  // Groups whose last part never came are purged by age.
  await db.schema.createIndex('inbound_parts_received').on('inbound_parts').column('received_at').execute();
}
