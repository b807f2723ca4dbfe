import type { Kysely, Migration, MigrationProvider } from 'kysely';
import * as m001 from './001_initial.js';
import * as m002 from './002_carrier_keys.js';
import * as m003 from './003_webhook_batching.js';
import * as m004 from './004_verifications.js';
import * as m005 from './005_audiences_campaigns.js';
import * as m006 from './006_partitioned_history.js';
import * as m007 from './007_import_options.js';
import * as m008 from './008_inbound_parts.js';
import * as m009 from './009_queue_fillfactor.js';
import * as m010 from './010_webhook_delivery.js';
import * as m011 from './011_heap_only_status.js';
import * as m012 from './012_number_index.js';
import * as m013 from './013_sqlite_exception_index.js';
import * as m014 from './014_webhook_handovers.js';
import * as m015 from './015_webhook_deliveries.js';

export type DialectName = 'sqlite' | 'postgres';

interface VersionedMigration {
  up(db: Kysely<unknown>, dialect: DialectName): Promise<void>;
}

/** Versioned migrations, applied in name order. Append new ones; never edit a released one. */
const MIGRATIONS: Record<string, VersionedMigration> = {
  '001_initial': m001,
  '002_carrier_keys': m002,
  '003_webhook_batching': m003,
  '004_verifications': m004,
  '005_audiences_campaigns': m005,
  '006_partitioned_history': m006,
  '007_import_options': m007,
  '008_inbound_parts': m008,
  '009_queue_fillfactor': m009,
  '010_webhook_delivery': m010,
  '011_heap_only_status': m011,
  '012_number_index': m012,
  '013_sqlite_exception_index': m013,
  '014_webhook_handovers': m014,
  '015_webhook_deliveries': m015,
};

export function migrationProvider(dialect: DialectName): MigrationProvider {
  return {
    async getMigrations() {
      const out: Record<string, Migration> = {};
      for (const [name, migration] of Object.entries(MIGRATIONS)) {
        out[name] = { up: (db) => migration.up(db, dialect) };
      }
      return out;
    },
  };
}

export const LATEST_MIGRATION = Object.keys(MIGRATIONS).sort().at(-1)!;
