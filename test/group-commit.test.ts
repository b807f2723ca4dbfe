import { describe, expect, it } from 'vitest';
import { StatusRecorder } from '../src/dispatch/status-recorder.js';
import { type GroupCommitOptions, GroupCommitter } from '../src/store/group-commit.js';

/**
 * A committer over numbers that records each batch and when it started (ms since creation); each
 * write takes `writeMs`.
 */
function recordingCommitter(options: Omit<GroupCommitOptions<number, number>, 'writeBatch'>, writeMs = 0) {
  const batches: number[][] = [];
  const started: number[] = [];
  const t0 = performance.now();
  const committer = new GroupCommitter<number, number>({
    ...options,
    async writeBatch(units) {
      started.push(performance.now() - t0);
      batches.push(units);
      if (writeMs > 0) await new Promise((r) => setTimeout(r, writeMs));
      return units;
    },
  });
  return { committer, batches, started };
}

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

  it('lingers from the oldest waiting unit: one that waited a whole linger during a commit goes next at once', async () => {
    const { committer, started } = recordingCommitter({ maxBatch: 10, concurrency: 1, lingerMs: 300 }, 350);
    const first = committer.submit(1);
    await new Promise((r) => setTimeout(r, 320)); // the first commit is running (until ~650 ms)
    const second = committer.submit(2);
    await Promise.all([first, second]);
    expect(started[0]).toBeGreaterThanOrEqual(290);
    // The second unit waited 330 ms for the first commit: more than the linger, so no more on top.
    expect(started[1]! - started[0]!).toBeLessThan(500);
  });

  it('gathers a steady trickle for a whole linger, including units that arrive during a commit', async () => {
    const { committer, batches } = recordingCommitter({ maxBatch: 1000, concurrency: 1, lingerMs: 100 }, 30);
    // One unit every 10 ms for 300 ms. Were the units that arrive during a commit sent at once, every
    // commit after the first would hold the three that came while the previous one was written.
    const all: Promise<number>[] = [];
    for (let i = 1; i <= 30; i++) {
      all.push(committer.submit(i));
      await new Promise((r) => setTimeout(r, 10));
    }
    await Promise.all(all);
    expect(batches.flat()).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(batches.length).toBeLessThanOrEqual(5);
  });

  it('ends the linger at once when flushAt weight is waiting', async () => {
    const { committer, started } = recordingCommitter({
      maxBatch: 1000,
      weight: (u) => u,
      concurrency: 1,
      lingerMs: 5000,
      flushAt: 100,
    });
    const small = committer.submit(40);
    await new Promise((r) => setTimeout(r, 50));
    expect(started).toEqual([]); // still gathering
    await Promise.all([small, committer.submit(60)]);
    expect(started).toHaveLength(1);
    expect(started[0]).toBeLessThan(1000);
  });

  it('with quietMs, commits a burst once nothing new has arrived for that long, not after the whole linger', async () => {
    const { committer, started } = recordingCommitter({
      maxBatch: 1000,
      concurrency: 1,
      lingerMs: 5000,
      quietMs: 100,
    });
    // A burst (a carrier filling its deliver_sm window), then silence until it is answered.
    const burst: Promise<number>[] = [];
    for (let i = 0; i < 5; i++) {
      burst.push(committer.submit(i));
      await new Promise((r) => setTimeout(r, 10));
    }
    await Promise.all(burst);
    expect(started).toHaveLength(1);
    // The last unit came at about 40 ms: the batch went about 100 ms later, all five together.
    expect(started[0]).toBeGreaterThanOrEqual(120);
    expect(started[0]).toBeLessThan(1000);
  });

  it('commits at once, with everything waiting, a unit submitted as due now', async () => {
    const { committer, started, batches } = recordingCommitter({
      maxBatch: 1000,
      concurrency: 1,
      lingerMs: 5000,
      quietMs: 2000,
    });
    const gathering = [committer.submit(1), committer.submit(2)];
    await new Promise((r) => setTimeout(r, 50));
    expect(started).toEqual([]); // lingering
    // A carrier whose deliver_sm window this unit fills: it waits for the answer, so nothing lingers.
    await Promise.all([...gathering, committer.submit(3, true)]);
    expect(batches).toEqual([[1, 2, 3]]);
    expect(started[0]).toBeLessThan(1000);
    // The urge went with its batch: the next unit gathers again.
    const later = committer.submit(4);
    await new Promise((r) => setTimeout(r, 200));
    expect(batches).toHaveLength(1);
    await later;
    expect(started[1]! - started[0]!).toBeGreaterThanOrEqual(1900);
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
    const { committer, batches } = recordingCommitter({ maxBatch: 1000, concurrency: 1 }, 20);
    const first = committer.submit(1);
    await new Promise((r) => setTimeout(r, 5)); // the first batch is now being written
    const later = Promise.all([2, 3, 4].map((u) => committer.submit(u)));
    await Promise.all([first, later]);
    expect(batches).toEqual([[1], [2, 3, 4]]);
  });

  it('caps a transaction by weight, taking at least one unit however heavy', async () => {
    const { committer, batches } = recordingCommitter({ maxBatch: 1000, weight: (u) => u, concurrency: 1 });
    await Promise.all([600, 300, 200, 5000, 1].map((u) => committer.submit(u)));
    expect(batches).toEqual([[600, 300], [200], [5000], [1]]);
  });
});

describe('StatusRecorder', () => {
  /** A recorder whose batches commit at once and become durable when the test says. */
  function recorder(resolveWhen: 'committed' | 'durable') {
    const syncs: (() => void)[] = [];
    const batches: number[] = [];
    const r = new StatusRecorder(
      async (units) => {
        batches.push(units.length);
        return { durable: new Promise<void>((resolve) => syncs.push(resolve)) };
      },
      { concurrency: 1, resolveWhen },
    );
    return { r, syncs, batches };
  }
  const unit = (id: string) => ({ changes: [{ messageId: id, status: 'submitted' as const }] });

  it("answers at commit when asked to, and starts the next batch without waiting for the first's sync", async () => {
    const { r, syncs, batches } = recorder('committed');
    await r.record(unit('a'));
    await r.record(unit('b'));
    expect(batches).toEqual([1, 1]);
    expect(syncs).toHaveLength(2); // neither is durable yet
  });

  it('answers only once durable when asked to (a carrier acknowledged on a receipt)', async () => {
    const { r, syncs } = recorder('durable');
    let answered = false;
    const recorded = r.record(unit('a')).then(() => {
      answered = true;
    });
    await expect.poll(() => syncs.length).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(answered).toBe(false);
    syncs[0]!();
    await recorded;
    expect(answered).toBe(true);
  });
});
