import { describe, expect, it } from 'vitest';
import { groupBy } from '../src/shared/group-by.js';

describe('groupBy', () => {
  const items = [
    { k: 'a', n: 1 },
    { k: 'a', n: 2 },
    { k: 'b', n: 3 },
    { k: 'a', n: 4 },
    { k: 'c', n: 5 },
    { k: 'c', n: 6 },
    { k: 'b', n: 7 },
  ];
  const expected = new Map([
    ['a', [items[0], items[1], items[3]]],
    ['b', [items[2], items[6]]],
    ['c', [items[4], items[5]]],
  ]);

  it('groups by key, groups in the order of their first item, items in their order', () => {
    const groups = groupBy(items, (i) => i.k);
    expect([...groups.keys()]).toEqual(['a', 'b', 'c']);
    expect(groups).toEqual(expected);
  });

  it('gives the same groups with a same-as-previous test, building keys only where a run breaks', () => {
    const keyed: number[] = [];
    const groups = groupBy(
      items,
      (i) => {
        keyed.push(i.n);
        return i.k;
      },
      (a, b) => a.k === b.k,
    );
    expect(groups).toEqual(expected);
    expect([...groups.keys()]).toEqual(['a', 'b', 'c']);
    // The second of each run joins its group without a key.
    expect(keyed).toEqual([1, 3, 4, 5, 7]);
  });

  it('a test that never matches changes nothing', () => {
    expect(
      groupBy(
        items,
        (i) => i.k,
        () => false,
      ),
    ).toEqual(expected);
    expect(
      groupBy(
        [],
        (i: { k: string }) => i.k,
        () => true,
      ),
    ).toEqual(new Map());
  });
});
