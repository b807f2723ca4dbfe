import type { Kysely } from 'kysely';

/**
 * CSV imports: the `phone_column` the customer named (null: found by its header name), kept so that
 * an import interrupted by a crash resumes reading the same column.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('imports').addColumn('phone_column', 'text').execute();
}
