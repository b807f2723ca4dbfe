import type { InboundMessage } from '../carriers/smpp-connector.js';
import { decodeUserData } from '../simulator/content.js';
import { EsmClass } from '../smpp/constants.js';
import { type ConcatInfo, parseUdh } from '../smpp/long-message.js';
import type { Store, Trx } from '../store/store.js';

export interface MoContent {
  /** This deliver_sm's text, decoded per data_coding, without its UDH. */
  text: string;
  /** Set when it is one part of a concatenated (long) message. */
  concat: ConcatInfo | null;
}

/** Reads a deliver_sm's text; a malformed UDH is read as plain text rather than refused. */
export function readMo(message: InboundMessage): MoContent {
  let bytes = message.shortMessage;
  let concat: ConcatInfo | null = null;
  if (message.esmClass & EsmClass.UDHI) {
    const udh = parseUdh(bytes);
    if (udh) {
      bytes = udh.payload;
      concat = udh.concat && udh.concat.total > 1 ? udh.concat : null;
    }
  }
  return { text: decodeUserData(bytes, message.dataCoding), concat };
}

export interface PartKey {
  connector: string;
  from: string;
  to: string;
  concat: ConcatInfo;
}

/**
 * Stores one part of a long MO in the caller's transaction and returns the whole text once every
 * part is there (deleting the group), or null while parts are missing. A part delivered twice is
 * stored once.
 */
export async function collectPart(
  store: Store,
  trx: Trx,
  key: PartKey,
  text: string,
  now: number,
): Promise<string | null> {
  // Parts of one message arrive together on several binds: without the lock, two PostgreSQL
  // transactions each stored their part, each saw the other's missing, and nobody assembled it.
  await store.lockKey(trx, `mo-parts:${key.connector}:${key.from}:${key.to}:${key.concat.reference}`);
  const group = {
    connector: key.connector,
    from_number: key.from,
    to_number: key.to,
    reference: key.concat.reference,
    total: key.concat.total,
  };
  await trx
    .insertInto('inbound_parts')
    .values({ ...group, seq: key.concat.seq, text, received_at: now })
    .onConflict((oc) =>
      oc.columns(['connector', 'from_number', 'to_number', 'reference', 'total', 'seq']).doNothing(),
    )
    .execute();
  const parts = await trx
    .selectFrom('inbound_parts')
    .select(['seq', 'text'])
    .where((eb) => eb.and(group))
    .orderBy('seq')
    .execute();
  if (parts.length < group.total) return null;
  await trx
    .deleteFrom('inbound_parts')
    .where((eb) => eb.and(group))
    .execute();
  return parts.map((p) => p.text).join('');
}

/** Drops the parts of long messages whose other parts never came. Returns how many. */
export async function purgeStaleParts(trx: Trx, olderThan: number): Promise<number> {
  const result = await trx
    .deleteFrom('inbound_parts')
    .where('received_at', '<', olderThan)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
