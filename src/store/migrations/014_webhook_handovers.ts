import type { Kysely } from 'kysely';

/**
 * `webhook_handovers`: the carrier path's webhook events that went straight to the in-process sender
 * get no webhook_events row until their first attempt (src/webhooks/handovers.ts). The transaction
 * that creates them writes one row here instead, listing them compactly, leased to the sender; the
 * row goes when all its events have their row. A row whose lease ran out (a crash) is turned back
 * into pending events by whoever runs then.
 *
 * No index but the key: the table only ever holds the events of the last few seconds.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('webhook_handovers')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('leased_until', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('events', 'text', (c) => c.notNull())
    .execute();
}
