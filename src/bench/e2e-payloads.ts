import { analyzeText } from '../messages/encoding.js';
import { message, rng } from './payloads.js';

/**
 * Bulk messages for the carrier-path benchmark: real mobile numbers of several countries (from the
 * intake benchmark's generator) with a one-part GSM-7 marketing text, so that one message is one
 * submit_sm, one receipt and two webhook events, and messages per second read directly as carrier
 * submits per second.
 */

const BRANDS = ['ShopCo', 'Pizzeria', 'CityCab', 'Parcel24', 'MyBank'];
const DAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

export interface BulkItem {
  to: string;
  country?: string;
  from: string;
  text: string;
  lane: 'bulk';
}

export function bulkItems(seed: number, count: number): BulkItem[] {
  const r = rng(seed);
  const out: BulkItem[] = [];
  for (let i = 0; i < count; i++) {
    const base = message(r, i);
    const brand = BRANDS[Math.floor(r() * BRANDS.length)]!;
    const text =
      `${brand}: weekend sale, up to ${20 + Math.floor(r() * 50)}% off in store and online with code ` +
      `SUN${String(Math.floor(r() * 10_000)).padStart(4, '0')} until ${DAYS[Math.floor(r() * DAYS.length)]}. ` +
      'Reply STOP to opt out.';
    const item: BulkItem = { to: base.to, from: brand, text, lane: 'bulk' };
    if (base.country) item.country = base.country;
    out.push(item);
  }
  const a = analyzeText(out[0]!.text);
  if (a.encoding !== 'GSM-7' || a.segments !== 1) throw new Error('bench: bulk text must be one GSM-7 part');
  return out;
}

/** `distinct` request bodies of `perRequest` bulk messages each, for POST /v1/messages/batch, used in turn. */
export function bulkBatchBodies(seed: number, distinct: number, perRequest: number): Buffer[] {
  const items = bulkItems(seed, distinct * perRequest);
  return Array.from({ length: distinct }, (_, i) =>
    Buffer.from(JSON.stringify({ messages: items.slice(i * perRequest, (i + 1) * perRequest) })),
  );
}
