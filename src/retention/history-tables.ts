import { decodeTime } from 'ulid';
import { type IdPrefix, idFloor } from '../shared/ids.js';
import { HOT_UPDATE_FILLFACTOR } from '../store/schema.js';

/**
 * The history: the tables that grow with traffic and are kept for `retention.messages_days`.
 * Each is keyed by a time-ordered prefixed ULID — its own id, or its parent's — so a time range is an
 * id range: PostgreSQL partitions them by RANGE on that key, SQLite prunes them by key order.
 */
export type HistoryTableName =
  | 'messages'
  | 'message_parts'
  | 'message_events'
  | 'webhook_events'
  | 'webhook_attempts'
  | 'webhook_deliveries'
  | 'inbound_messages';

export interface HistoryTable {
  name: HistoryTableName;
  /** Partition key: the id column, or the parent's id for child rows (same partition bounds). */
  key: string;
  /** Id prefix of the key (`msg`, `evt`, …). */
  prefix: string;
  /** Primary key of the partitioned table (PostgreSQL requires it to contain the key). */
  primaryKey: string[];
  /** PostgreSQL: the fillfactor of its partitions, when not the default (100). */
  fillfactor?: number;
}

/** Tables with a tenant_id and their own id; children go with them. */
export interface RootTable {
  name: 'messages' | 'webhook_events' | 'webhook_deliveries' | 'inbound_messages';
  prefix: string;
  children: { name: 'message_parts' | 'message_events' | 'webhook_attempts'; key: string }[];
}

/** Inbound (MO) message ids: `mo_` + ULID. Rows with another prefix are never pruned (see docs/retention.md). */
export const INBOUND_PREFIX = 'mo';

export const HISTORY_TABLES: readonly HistoryTable[] = [
  { name: 'messages', key: 'id', prefix: 'msg', primaryKey: ['id'], fillfactor: HOT_UPDATE_FILLFACTOR },
  {
    name: 'message_parts',
    key: 'message_id',
    prefix: 'msg',
    primaryKey: ['message_id', 'part_no'],
    fillfactor: HOT_UPDATE_FILLFACTOR,
  },
  { name: 'message_events', key: 'message_id', prefix: 'msg', primaryKey: ['message_id', 'id'] },
  { name: 'webhook_events', key: 'id', prefix: 'evt', primaryKey: ['id'] },
  { name: 'webhook_attempts', key: 'event_id', prefix: 'evt', primaryKey: ['event_id', 'id'] },
  // Keyed by the first event id it lists (src/webhooks/deliveries.ts): the same slices as webhook_events.
  { name: 'webhook_deliveries', key: 'id', prefix: 'evt', primaryKey: ['id'] },
  { name: 'inbound_messages', key: 'id', prefix: INBOUND_PREFIX, primaryKey: ['id'] },
];

export const ROOT_TABLES: readonly RootTable[] = [
  {
    name: 'messages',
    prefix: 'msg',
    children: [
      { name: 'message_parts', key: 'message_id' },
      { name: 'message_events', key: 'message_id' },
    ],
  },
  { name: 'webhook_events', prefix: 'evt', children: [{ name: 'webhook_attempts', key: 'event_id' }] },
  { name: 'webhook_deliveries', prefix: 'evt', children: [] },
  { name: 'inbound_messages', prefix: INBOUND_PREFIX, children: [] },
];

/** The smallest id of `prefix` created at or after `timeMs` (idFloor for any prefix, `mo` included). */
export function idBound(prefix: string, timeMs: number): string {
  return idFloor(prefix as IdPrefix, timeMs);
}

/** The creation time encoded in a prefixed ULID (or in a bound made by idBound). */
export function idTime(prefix: string, id: string): number {
  return decodeTime(`${id.slice(prefix.length + 1, prefix.length + 11)}0000000000000000`);
}
