import { describe, expect, it } from 'vitest';
import { GroupCommitter } from '../src/store/group-commit.js';

describe('GroupCommitter', () => {
  it('commits units arriving together in one batch, and answers each only after its batch is written', async () => {
    const batches: number[][] = [];
    const written = new Set<number>();
    const committer = new GroupCommitter<number, string>({
      async writeBatch(units) {
        await new Promise((r) => setTimeout(r, 5));
        batches.push(units);
        for (const u of units) written.add(u);
        return units.map((u) => `ok-${u}`);
      },
      maxBatch: 100,
      concurrency: 1,
    });
    const answers = await Promise.all(
      Array.from({ length: 250 }, (_, i) =>
        committer.submit(i).then((r) => {
          expect(written.has(i)).toBe(true);
          return r;
        }),
      ),
    );
    expect(answers).toEqual(Array.from({ length: 250 }, (_, i) => `ok-${i}`));
    expect(batches.map((b) => b.length)).toEqual([100, 100, 50]);
  });

  it('lingers for a unit reaching an idle committer, not for units that waited during a commit', async () => {
    const started: number[] = [];
    const t0 = performance.now();
    const committer = new GroupCommitter<number, number>({
      async writeBatch(units) {
        started.push(performance.now() - t0);
        await new Promise((r) => setTimeout(r, 50));
        return units;
      },
      maxBatch: 10,
      concurrency: 1,
      lingerMs: 300,
    });
    const first = committer.submit(1);
    await new Promise((r) => setTimeout(r, 320)); // the first commit is running
    const second = committer.submit(2);
    await Promise.all([first, second]);
    expect(started[0]).toBeGreaterThanOrEqual(290);
    // The second unit waited for the first commit (50 ms): it goes next, without another 300 ms.
    expect(started[1]! - started[0]!).toBeLessThan(250);
  });

  it('isolates a failing unit: its neighbours commit, only it sees the error', async () => {
    const committer = new GroupCommitter<number, number>({
      async writeBatch(units) {
        if (units.includes(3)) throw new Error('constraint violated by 3');
        return units;
      },
      maxBatch: 10,
      concurrency: 1,
    });
    const results = await Promise.allSettled([1, 2, 3, 4].map((u) => committer.submit(u)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect((results[2] as PromiseRejectedResult).reason.message).toBe('constraint violated by 3');
  });

  it('keeps committing what arrives while a batch is being written', async () => {
    const batches: number[][] = [];
    const committer = new GroupCommitter<number, number>({
      async writeBatch(units) {
        batches.push(units);
        await new Promise((r) => setTimeout(r, 20));
        return units;
      },
      maxBatch: 1000,
      concurrency: 1,
    });
    const first = committer.submit(1);
    await new Promise((r) => setTimeout(r, 5)); // the first batch is now being written
    const later = Promise.all([2, 3, 4].map((u) => committer.submit(u)));
    await Promise.all([first, later]);
    expect(batches).toEqual([[1], [2, 3, 4]]);
  });

  it('caps a transaction by weight, taking at least one unit however heavy', async () => {
    const batches: number[][] = [];
    const committer = new GroupCommitter<number, number>({
      async writeBatch(units) {
        batches.push(units);
        return units;
      },
      maxBatch: 1000,
      weight: (u) => u,
      concurrency: 1,
    });
    await Promise.all([600, 300, 200, 5000, 1].map((u) => committer.submit(u)));
    expect(batches).toEqual([[600, 300], [200], [5000], [1]]);
  });
});
