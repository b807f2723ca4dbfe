/**
 * Items grouped by a key, each group in the order its items came, groups in the order of their first
 * item. `Map.groupBy` does this from Node.js 21; Relais still runs on 20.
 *
 * `sameAsPrevious(previous, item)`: an optional cheap test that `item` has the key of the item before
 * it (it must never say so of items whose keys differ). A run of such items joins the group without
 * its key being built: the carrier path's batches are mostly one group (a status change's new
 * state, a webhook request's outcome), and building and hashing a text key per item was 2% of the
 * main thread in the end-to-end benchmark (perf).
 */
export function groupBy<T>(
  items: Iterable<T>,
  keyOf: (item: T) => string,
  sameAsPrevious?: (previous: T, item: T) => boolean,
): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  let previous: T | undefined;
  let previousGroup: T[] | undefined;
  for (const item of items) {
    if (previousGroup !== undefined && sameAsPrevious?.(previous as T, item)) {
      previousGroup.push(item);
    } else {
      const key = keyOf(item);
      let group = groups.get(key);
      if (group) group.push(item);
      else {
        group = [item];
        groups.set(key, group);
      }
      previousGroup = group;
    }
    previous = item;
  }
  return groups;
}
