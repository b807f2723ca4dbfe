import { describe, expect, it } from 'vitest';
import { comparisonTable, medianRun } from '../src/bench/e2e-median.js';
import type { ThroughputResult } from '../src/bench/e2e-throughput.js';

// Only the fields the median and the comparison read; the rest of a run does not matter here.
const run = (rate: number, usPerMsg = 300) =>
  ({ rate, cpu: { relaisUsPerMsg: usPerMsg } }) as unknown as ThroughputResult;

describe('repeated benchmark runs', () => {
  it('reports the median run with every rate in run order', () => {
    const r = medianRun([run(3000, 1), run(2500, 2), run(3600, 3)]);
    expect(r?.rate).toBe(3000);
    expect(r?.cpu.relaisUsPerMsg).toBe(1); // the median run's own figures, not a mix
    expect(r?.rates).toEqual([3000, 2500, 3600]);
  });

  it('takes the lower middle of an even count, and a single run as it is', () => {
    expect(medianRun([run(4000), run(2000), run(3000), run(5000)])?.rate).toBe(3000);
    const single = medianRun([run(1234)]);
    expect(single?.rate).toBe(1234);
    expect(single?.rates).toBeUndefined();
    expect(medianRun([])).toBeNull();
  });

  it('compares a baseline with this checkout on medians', () => {
    const table = comparisonTable([
      {
        kind: 'sqlite',
        mode: 'batched (100 per request)',
        baseline: medianRun([run(2000, 400), run(2200, 380)])!,
        mine: medianRun([run(2400, 350), run(2500, 340)])!,
      },
    ]);
    expect(table).toContain(
      '| SQLite | batched (100 per request) | 2,000 | 2,000, 2,200 | 2,400 | 2,400, 2,500 | +20.0% | 400 → 350 µs |',
    );
  });
});
