import { DB, n0 } from './e2e-report.js';
import type { ThroughputResult } from './e2e-throughput.js';

/**
 * Repeated throughput runs (`--runs N`) and baseline comparisons (`--baseline DIR`). On a shared
 * machine one run of the same code varied from 2,533 to 3,595 msg/s (2026-11-26), so a change is
 * judged on medians, against a baseline measured in the same session, interleaved with it.
 */

/** The median run by end-to-end rate (the lower of the two middle ones for an even count), with every run's rate. */
export function medianRun(results: ThroughputResult[]): ThroughputResult | null {
  if (results.length === 0) return null;
  const sorted = [...results].sort((a, b) => a.rate - b.rate);
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return results.length === 1 ? median : { ...median, rates: results.map((r) => r.rate) };
}

export interface Comparison {
  kind: 'sqlite' | 'postgres';
  mode: string;
  baseline: ThroughputResult;
  mine: ThroughputResult;
}

const runsOf = (r: ThroughputResult) => (r.rates ?? [r.rate]).map(n0).join(', ');

/** Baseline against this checkout: median msg/s, each run's rate, CPU per message, and the change. */
export function comparisonTable(comparisons: Comparison[]): string {
  const rows = [
    '| Database | webhooks | baseline msg/s (median) | runs | this checkout msg/s (median) | runs | change | Relais CPU per msg, baseline → this |',
    '| --- | --- | ---: | --- | ---: | --- | ---: | ---: |',
  ];
  for (const c of comparisons) {
    const change = (c.mine.rate / c.baseline.rate - 1) * 100;
    rows.push(
      `| ${DB[c.kind]} | ${c.mode} | ${n0(c.baseline.rate)} | ${runsOf(c.baseline)} | ` +
        `${n0(c.mine.rate)} | ${runsOf(c.mine)} | ${change >= 0 ? '+' : ''}${change.toFixed(1)}% | ` +
        `${n0(c.baseline.cpu.relaisUsPerMsg)} → ${n0(c.mine.cpu.relaisUsPerMsg)} µs |`,
    );
  }
  return rows.join('\n');
}
