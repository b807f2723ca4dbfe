import { type Kysely, sql } from 'kysely';

/**
 * Audiences (contacts, lists, CSV imports), opt-outs, inbound numbers and messages, campaigns, and
 * the hourly statistics rollups that campaign statistics and dashboards read instead of the history.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('contacts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('phone', 'text', (c) => c.notNull())
    .addColumn('country', 'text')
    .addColumn('first_name', 'text')
    .addColumn('last_name', 'text')
    .addColumn('attributes', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('timezone', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('contacts_tenant_phone')
    .unique()
    .on('contacts')
    .columns(['tenant_id', 'phone'])
    .execute();
  await db.schema.createIndex('contacts_tenant_id').on('contacts').columns(['tenant_id', 'id']).execute();

  await db.schema
    .createTable('lists')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('member_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('lists_tenant_id').on('lists').columns(['tenant_id', 'id']).execute();

  // Campaigns walk a list in contact id order (a keyset cursor), so the key is (list, contact).
  await db.schema
    .createTable('list_members')
    .addColumn('list_id', 'text', (c) => c.notNull())
    .addColumn('contact_id', 'text', (c) => c.notNull())
    .addColumn('added_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('list_members_pk', ['list_id', 'contact_id'])
    .execute();
  await db.schema.createIndex('list_members_contact').on('list_members').column('contact_id').execute();

  await db.schema
    .createTable('imports')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('list_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('default_country', 'text')
    .addColumn('total', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('imported', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('invalid', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('duplicates', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('bytes', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('error_code', 'text')
    .addColumn('error', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('completed_at', 'bigint')
    .execute();
  await db.schema.createIndex('imports_tenant_id').on('imports').columns(['tenant_id', 'id']).execute();
  await db.schema
    .createTable('import_errors')
    .addColumn('import_id', 'text', (c) => c.notNull())
    .addColumn('line', 'integer', (c) => c.notNull())
    .addColumn('value', 'text')
    .addColumn('reason', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('import_errors_pk', ['import_id', 'line'])
    .execute();

  await db.schema
    .createTable('optouts')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('phone', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('detail', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('optouts_pk', ['tenant_id', 'phone'])
    .execute();

  // A short code may be shared by several tenants: one row per (number, tenant).
  await db.schema
    .createTable('numbers')
    .addColumn('number', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('numbers_pk', ['number', 'tenant_id'])
    .execute();
  await db.schema.createIndex('numbers_tenant').on('numbers').column('tenant_id').execute();

  await db.schema
    .createTable('inbound_messages')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text')
    .addColumn('to_number', 'text', (c) => c.notNull())
    .addColumn('from_number', 'text', (c) => c.notNull())
    .addColumn('text', 'text', (c) => c.notNull())
    .addColumn('connector', 'text')
    .addColumn('keyword', 'text')
    .addColumn('campaign_id', 'text')
    .addColumn('message_id', 'text')
    .addColumn('received_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('inbound_messages_tenant_id')
    .on('inbound_messages')
    .columns(['tenant_id', 'id'])
    .execute();

  await db.schema
    .createTable('campaigns')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('list_ids', 'text', (c) => c.notNull())
    .addColumn('sender', 'text', (c) => c.notNull())
    .addColumn('template', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('send_at', 'bigint')
    .addColumn('send_window', 'text')
    .addColumn('max_tps', 'integer')
    .addColumn('cursor', 'text')
    .addColumn('targeted', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('skipped_optout', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('skipped_invalid', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('queued', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('replies', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('optouts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('error', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('started_at', 'bigint')
    .addColumn('completed_at', 'bigint')
    .execute();
  await db.schema.createIndex('campaigns_tenant_id').on('campaigns').columns(['tenant_id', 'id']).execute();
  await db.schema.createIndex('campaigns_status').on('campaigns').column('status').execute();

  await db.schema.alterTable('messages').addColumn('campaign_id', 'text').execute();
  await db.schema.alterTable('queue').addColumn('campaign_id', 'text').execute();
  // The campaign runner tops up a campaign's share of the bulk lane by counting what is still queued.
  await db.schema
    .createIndex('queue_campaign')
    .on('queue')
    .column('campaign_id')
    .where(sql.ref('campaign_id'), 'is not', null)
    .execute();

  // Tenant settings: the French marketing opt-out mention appended to bulk messages, and a
  // per-tenant history retention override.
  await db.schema.alterTable('tenants').addColumn('optout_mention', 'text').execute();
  await db.schema.alterTable('tenants').addColumn('retention_days', 'real').execute();

  // Hourly rollups, maintained in the transaction that changes a message: one row per hour, tenant,
  // lane, connector, campaign and status ('' for "none" so the key has no NULLs to upsert on).
  await db.schema
    .createTable('stats_hourly')
    .addColumn('hour', 'bigint', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('lane', 'text', (c) => c.notNull())
    .addColumn('connector', 'text', (c) => c.notNull())
    .addColumn('campaign_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('messages', 'bigint', (c) => c.notNull())
    .addColumn('segments', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('stats_hourly_pk', [
      'hour',
      'tenant_id',
      'lane',
      'connector',
      'campaign_id',
      'status',
    ])
    .execute();
  await db.schema
    .createIndex('stats_hourly_tenant')
    .on('stats_hourly')
    .columns(['tenant_id', 'hour'])
    .execute();
  await db.schema
    .createIndex('stats_hourly_campaign')
    .on('stats_hourly')
    .columns(['campaign_id', 'hour'])
    .where(sql.ref('campaign_id'), '!=', '')
    .execute();
}
