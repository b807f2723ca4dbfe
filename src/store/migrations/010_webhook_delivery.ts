import type { Kysely } from 'kysely';

/**
 * The attempt that delivers a webhook event is kept on the event itself (its HTTP status and
 * duration beside delivered_at) instead of a webhook_attempts row: that row was one more insert per
 * event on the carrier path, where nearly every event is delivered at its first attempt. Failed
 * attempts keep their rows. Events delivered before this migration keep their delivering row too.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('webhook_events').addColumn('delivered_status_code', 'integer').execute();
  await db.schema.alterTable('webhook_events').addColumn('delivered_duration_ms', 'integer').execute();
}
