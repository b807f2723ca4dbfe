import { type Kysely, sql } from 'kysely';

/**
 * Verify (src/verify/): verifications, the rate-limit counters shared by every node, per-tenant
 * settings, and the sealed text of verification SMS on `messages`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // The real text of a verification SMS, sealed (AES-256-GCM); `body` keeps it with the code masked.
  await db.schema.alterTable('messages').addColumn('sealed_body', 'text').execute();
  // Housekeeping wipes sealed texts once sent: the partial index holds only the few in flight.
  await db.schema
    .createIndex('messages_sealed')
    .on('messages')
    .column('id')
    .where(sql.ref('sealed_body'), 'is not', null)
    .execute();

  await db.schema
    .createTable('verifications')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('api_key_id', 'text')
    .addColumn('to_number', 'text', (c) => c.notNull())
    .addColumn('country', 'text')
    .addColumn('sender', 'text', (c) => c.notNull())
    .addColumn('locale', 'text', (c) => c.notNull())
    .addColumn('template', 'text')
    .addColumn('code_length', 'integer', (c) => c.notNull())
    .addColumn('code_salt', 'text', (c) => c.notNull())
    .addColumn('code_hash', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('max_attempts', 'integer', (c) => c.notNull())
    .addColumn('resends', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('max_resends', 'integer', (c) => c.notNull())
    .addColumn('ttl_seconds', 'integer', (c) => c.notNull())
    .addColumn('message_id', 'text')
    .addColumn('last_sent_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('status_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  // Statistics: a tenant's verifications by creation time.
  await db.schema
    .createIndex('verifications_tenant_created')
    .on('verifications')
    .columns(['tenant_id', 'created_at'])
    .execute();
  // Housekeeping: pending ones coming to their expiry, and every one past the purge grace period.
  await db.schema
    .createIndex('verifications_pending_expiry')
    .on('verifications')
    .column('expires_at')
    .where(sql.ref('status'), '=', 'pending')
    .execute();
  await db.schema.createIndex('verifications_expires').on('verifications').column('expires_at').execute();

  await db.schema
    .createTable('rate_limits')
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('window_start', 'bigint', (c) => c.notNull())
    .addColumn('hits', 'integer', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('rate_limits_pk', ['scope', 'key', 'window_start'])
    .execute();
  await db.schema.createIndex('rate_limits_expires').on('rate_limits').column('expires_at').execute();

  await db.schema
    .createTable('verify_settings')
    .addColumn('tenant_id', 'text', (c) => c.primaryKey())
    .addColumn('allowed_countries', 'text')
    .addColumn('default_locale', 'text')
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
}
