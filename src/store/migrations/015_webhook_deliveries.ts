import { type Kysely, sql } from 'kysely';
import { HISTORY_TABLES } from '../../retention/history-tables.js';
import { createDefaultPartition } from '../../retention/partitions.js';

/**
 * `webhook_deliveries`: handed-over webhook events that their first attempt delivered get no
 * webhook_events row. The request that delivered them writes one row here, listing them compactly
 * (src/webhooks/deliveries.ts): one row per request of up to `webhook_batch_size` events, where each
 * event was a row with its payload in four B-trees. The API lists both tables.
 *
 * Keyed by the smallest event id it lists, so it is history like webhook_events: partitioned by that
 * id on PostgreSQL (the time slices come from src/retention/ as for the other tables), pruned by it on
 * SQLite. `last_event_id` bounds the ids it lists from above; the index on it with the tenant finds
 * the rows holding an event id, and pages through a tenant's events newest first.
 *
 * message_events gets the id of the webhook event of each status change, so the events of a message
 * are found through its history.
 */
export async function up(db: Kysely<unknown>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  await db.schema.alterTable('message_events').addColumn('webhook_event_id', 'text').execute();
  const table = HISTORY_TABLES.find((t) => t.name === 'webhook_deliveries')!;
  const builder = db.schema
    .createTable('webhook_deliveries')
    .addColumn('id', dialect === 'postgres' ? sql`text collate "C"` : 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('last_event_id', dialect === 'postgres' ? sql`text collate "C"` : 'text', (c) => c.notNull())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('attempted_at', 'bigint', (c) => c.notNull())
    .addColumn('status_code', 'integer', (c) => c.notNull())
    .addColumn('duration_ms', 'integer', (c) => c.notNull())
    .addColumn('events', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('webhook_deliveries_pkey', ['id']);
  if (dialect === 'postgres') {
    await builder.modifyEnd(sql`partition by range (id)`).execute();
    await createDefaultPartition(db, table);
  } else {
    await builder.execute();
  }
  await db.schema
    .createIndex('webhook_deliveries_tenant')
    .on('webhook_deliveries')
    .columns(['tenant_id', 'last_event_id', 'id'])
    .execute();
}
