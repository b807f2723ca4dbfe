import type { Kysely } from 'kysely';
import { inList } from '../store/insert-rows.js';
import type { Database } from '../store/schema.js';

type Db = Kysely<Database>;

/**
 * The numbers among `phones` (E.164) that opted out of this tenant's `bulk` messages. One indexed
 * query per 500 numbers: campaigns and batch intake check whole pages at once.
 */
export async function optedOutAmong(
  db: Db,
  tenantId: string,
  phones: readonly string[],
): Promise<Set<string>> {
  const out = new Set<string>();
  const unique = [...new Set(phones)];
  for (let i = 0; i < unique.length; i += 500) {
    const rows = await db
      .selectFrom('optouts')
      .select('phone')
      .where('tenant_id', '=', tenantId)
      .where(inList(db, 'phone', unique.slice(i, i + 500)))
      .execute();
    for (const r of rows) out.add(r.phone);
  }
  return out;
}

/**
 * A `bulk` text with the tenant's opt-out mention (French rule: "STOP au 36111") appended on its own
 * line, unless the text already ends with it. The mention counts in the segments like any text.
 */
export function withOptoutMention(text: string, mention: string | null): string {
  if (!mention) return text;
  const trimmed = text.trimEnd();
  if (trimmed.endsWith(mention)) return text;
  return `${trimmed}\n${mention}`;
}
