/**
 * Items grouped by a key, each group in the order its items came, groups in the order of their first
 * item. `Map.groupBy` does this from Node.js 21; Relais still runs on 20.
 */
export function groupBy<T>(items: Iterable<T>, keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}
