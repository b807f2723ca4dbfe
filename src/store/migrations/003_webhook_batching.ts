import type { Kysely } from 'kysely';

/** Tenants may opt in to receive webhook events in batches per endpoint (0 = one event per request). */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('tenants')
    .addColumn('webhook_batch_size', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}
