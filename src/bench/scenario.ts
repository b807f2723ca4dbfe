import { performance } from 'node:perf_hooks';
import { checkBatch, checkSingle, runLoad } from './load.js';
import { messages } from './payloads.js';
import {
  cpuByCommand,
  cpuDelta,
  cpuSeconds,
  machineBusySeconds,
  peakRssBytes,
  resetPeakRss,
  waitForQuiet,
} from './proc.js';
import { max, median, min, quantile } from './stats.js';

/** One way of submitting: its endpoint, request shape and load, repeated and measured. */
export interface ScenarioSpec {
  name: 'single' | 'batch';
  title: string;
  path: string;
  itemsPerRequest: number;
  /** Requests per measured repeat… */
  requests: number;
  /** …or fewer, when this many seconds have passed (keeps the run short if Relais is slow). */
  maxSeconds: number;
  concurrency: number;
  /** Requests sent before measuring (JIT, caches, connection pools), accepted but not timed. */
  warmupRequests: number;
  repeats: number;
  /**
   * Extra repeats allowed when other work disturbed the machine (other CPU above {@link DISTURBED_PCT});
   * the `repeats` least disturbed attempts are reported.
   */
  spareRepeats: number;
  /** Distinct request bodies, used in turn. */
  distinctBodies: number;
}

/** Other work above this (in % of one core) during a repeat makes it "disturbed". */
export const DISTURBED_PCT = 20;

export interface RepeatResult {
  accepted: number;
  seconds: number;
  rate: number;
  p50Ms: number;
  p99Ms: number;
  /** Relais CPU, % of one core. */
  serverCpuPct: number;
  /** Relais CPU per accepted message, in µs: what a message costs, whatever else runs on the machine. */
  serverCpuUsPerMsg: number;
  /** PostgreSQL server processes' CPU, % of one core (PostgreSQL only). */
  databaseCpuPct: number | null;
  /** The benchmark process's own CPU, % of one core. */
  clientCpuPct: number;
  /** Everything else the machine ran meanwhile (other users' work skews the numbers), % of one core. */
  otherCpuPct: number;
  peakRssBytes: number;
}

export interface ScenarioResult {
  spec: ScenarioSpec;
  /** The reported repeats: the least disturbed ones. */
  repeats: RepeatResult[];
  /** Repeats run, including those set aside because the machine was busy. */
  attempts: number;
  /** Accepted messages including the warm-up: what the database must hold. */
  acceptedTotal: number;
  summary: {
    rateMedian: number;
    rateMin: number;
    rateMax: number;
    p50Ms: number;
    p99Ms: number;
    serverCpuPct: number;
    serverCpuUsPerMsg: number;
    databaseCpuPct: number | null;
    clientCpuPct: number;
    otherCpuPct: number;
    peakRssBytes: number;
    peakRssResettable: boolean;
  };
}

export interface Quiet {
  /** Milliseconds still allowed for waiting until the machine is idle, shared by the whole run. */
  budgetMs: number;
}

export interface Target {
  baseUrl: string;
  apiKey: string;
  pid: number;
  /** Also account the CPU of the local PostgreSQL server. */
  postgres: boolean;
}

export function buildBodies(spec: ScenarioSpec, seed: number): Buffer[] {
  if (spec.itemsPerRequest === 1) {
    return messages(seed, spec.distinctBodies).map((m) => Buffer.from(JSON.stringify(m)));
  }
  const all = messages(seed, spec.distinctBodies * spec.itemsPerRequest);
  return Array.from({ length: spec.distinctBodies }, (_, i) =>
    Buffer.from(
      JSON.stringify({ messages: all.slice(i * spec.itemsPerRequest, (i + 1) * spec.itemsPerRequest) }),
    ),
  );
}

export async function runScenario(
  spec: ScenarioSpec,
  target: Target,
  bodies: readonly Buffer[],
  quiet: Quiet,
  log: (line: string) => void,
): Promise<ScenarioResult> {
  const check = spec.itemsPerRequest === 1 ? checkSingle : checkBatch(spec.itemsPerRequest);
  const load = (requests: number, maxSeconds?: number) =>
    runLoad({
      baseUrl: target.baseUrl,
      apiKey: target.apiKey,
      path: spec.path,
      bodies,
      requests,
      concurrency: spec.concurrency,
      maxSeconds,
      check,
    });

  let acceptedTotal = 0;
  if (spec.warmupRequests > 0) acceptedTotal += (await load(spec.warmupRequests, spec.maxSeconds)).accepted;

  const attempts: { r: RepeatResult; latenciesMs: number[] }[] = [];
  let resettable = true;
  const undisturbed = () => attempts.filter((a) => a.r.otherCpuPct < DISTURBED_PCT).length;
  for (let i = 0; i < spec.repeats + spec.spareRepeats && undisturbed() < spec.repeats; i++) {
    if (i >= spec.repeats) log(`  (other work disturbed a repeat: running a spare one)`);
    if (quiet.budgetMs > 0) {
      const { waitedMs, busyPct } = await waitForQuiet(quiet.budgetMs);
      quiet.budgetMs -= waitedMs;
      if (busyPct >= 25) log(`  (the machine is busy: ${busyPct.toFixed(0)}% of a core used by other work)`);
    }
    resettable = resetPeakRss(target.pid) && resettable;
    const machineBefore = machineBusySeconds();
    const cpuBefore = cpuSeconds(target.pid);
    const dbBefore = target.postgres ? cpuByCommand('postgres') : null;
    const clientBefore = process.cpuUsage();
    const wallBefore = performance.now();
    const run = await load(spec.requests, spec.maxSeconds);
    const wall = (performance.now() - wallBefore) / 1000;
    const client = process.cpuUsage(clientBefore);
    const serverCpu = cpuSeconds(target.pid) - cpuBefore;
    const dbCpu = dbBefore ? cpuDelta(dbBefore, cpuByCommand('postgres')) : null;
    const machineCpu = machineBusySeconds() - machineBefore;
    const clientCpu = (client.user + client.system) / 1e6;
    acceptedTotal += run.accepted;
    const r: RepeatResult = {
      accepted: run.accepted,
      seconds: run.seconds,
      rate: run.accepted / run.seconds,
      p50Ms: quantile(run.latenciesMs, 0.5),
      p99Ms: quantile(run.latenciesMs, 0.99),
      serverCpuPct: (serverCpu / wall) * 100,
      serverCpuUsPerMsg: (serverCpu / run.accepted) * 1e6,
      databaseCpuPct: dbCpu === null ? null : (dbCpu / wall) * 100,
      clientCpuPct: (clientCpu / wall) * 100,
      otherCpuPct: (Math.max(0, machineCpu - serverCpu - (dbCpu ?? 0) - clientCpu) / wall) * 100,
      peakRssBytes: peakRssBytes(target.pid),
    };
    attempts.push({ r, latenciesMs: run.latenciesMs });
    log(
      `  ${spec.name} #${i + 1}: ${Math.round(r.rate).toLocaleString('en-US')} msg/s ` +
        `(${r.accepted.toLocaleString('en-US')} in ${r.seconds.toFixed(2)} s, p50 ${r.p50Ms.toFixed(1)} ms, ` +
        `p99 ${r.p99Ms.toFixed(1)} ms, relais CPU ${r.serverCpuPct.toFixed(0)}% = ${r.serverCpuUsPerMsg.toFixed(0)} µs/msg` +
        (r.databaseCpuPct === null ? '' : `, postgres CPU ${r.databaseCpuPct.toFixed(0)}%`) +
        `, client CPU ${r.clientCpuPct.toFixed(0)}%, other CPU ${r.otherCpuPct.toFixed(0)}%, peak RSS ${(r.peakRssBytes / 2 ** 20).toFixed(0)} MiB)`,
    );
  }

  const chosen = [...attempts].sort((a, b) => a.r.otherCpuPct - b.r.otherCpuPct).slice(0, spec.repeats);
  const repeats = chosen.map((a) => a.r);
  const latencies = chosen.flatMap((a) => a.latenciesMs);
  const rates = repeats.map((r) => r.rate);
  const dbCpus = repeats.map((r) => r.databaseCpuPct).filter((v): v is number => v !== null);
  return {
    spec,
    repeats,
    attempts: attempts.length,
    acceptedTotal,
    summary: {
      rateMedian: median(rates),
      rateMin: min(rates),
      rateMax: max(rates),
      p50Ms: quantile(latencies, 0.5),
      p99Ms: quantile(latencies, 0.99),
      serverCpuPct: median(repeats.map((r) => r.serverCpuPct)),
      serverCpuUsPerMsg: median(repeats.map((r) => r.serverCpuUsPerMsg)),
      databaseCpuPct: dbCpus.length ? median(dbCpus) : null,
      clientCpuPct: median(repeats.map((r) => r.clientCpuPct)),
      otherCpuPct: max(repeats.map((r) => r.otherCpuPct)),
      peakRssBytes: max(repeats.map((r) => r.peakRssBytes)),
      peakRssResettable: resettable,
    },
  };
}
