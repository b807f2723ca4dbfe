import { encodeCursor } from '../shared/cursor.js';

/** Callers fetch `limit + 1` rows: the extra one tells whether a next page exists. */
export function toPage<R extends { id: string }, V>(
  rows: R[],
  limit: number,
  view: (row: R) => V,
): { data: V[]; next_cursor: string | null } {
  const page = rows.slice(0, limit);
  const more = rows.length > limit;
  return { data: page.map(view), next_cursor: more ? encodeCursor(page.at(-1)!.id) : null };
}

export interface PageRequest {
  cursor?: string | undefined;
  limit: number;
}
