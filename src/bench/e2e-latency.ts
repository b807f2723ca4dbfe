import { Agent } from 'node:http';
import { clockOffset, httpJson, wallNow } from './e2e-child.js';
import { CpuMeter, type CpuUsage } from './e2e-cpu.js';
import { type ScenarioOptions, simStats, startScenarioStack, waitBound } from './e2e-stack.js';
import { checkBatch, runLoad } from './load.js';
import { postJson as post } from './server.js';
import { quantile } from './stats.js';

/**
 * Urgent-lane latency under a saturated connector: the connector throttled to `tps`, a bulk backlog
 * queued first, then `otp` messages sent one by one over HTTP. Latency = wall-clock arrival of the
 * submit_sm at the simulator − the moment the HTTP request was started.
 */

export interface LatencySpec {
  backlog: number;
  otp: number;
  gapMs: number;
  receiptDelayMs: number;
  webhookBatch: number;
  connector: { binds: number; window: number; tps: number };
}

export interface LatencyResult {
  kind: 'sqlite' | 'postgres';
  spec: LatencySpec;
  sent: number;
  arrived: number;
  latenciesMs: number[];
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /** Time to the 202 answer of POST /v1/messages. */
  http202p50: number;
  http202p99: number;
  /** Bulk submits per second at the simulator over the full seconds of the measurement. */
  bulkPerSecond: { mean: number; min: number; max: number; seconds: number };
  /** Bulk messages still queued when the measurement ended: the backlog outlasted it. */
  backlogLeft: number;
  backlogIntakeSeconds: number;
  throttledBySimulator: number;
  cpu: CpuUsage;
  /** The storage, as databases.ts describes it. */
  where: string;
  clockErrorMs: number;
  measureSeconds: number;
  profileDir: string | null;
  statementsDir: string | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PREFIX = 'E2E-OTP ';

export async function runLatency(
  kind: 'sqlite' | 'postgres',
  spec: LatencySpec,
  bodies: readonly Buffer[],
  options: ScenarioOptions,
): Promise<LatencyResult> {
  const { log } = options;
  const stack = await startScenarioStack(kind, spec, options);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    await waitBound(stack, spec.connector.binds);
    const perRequest = 1000;
    const started = wallNow();
    const backlog = await runLoad({
      baseUrl: stack.relais.baseUrl,
      apiKey: stack.apiKey,
      path: '/v1/messages/batch',
      bodies,
      requests: Math.ceil(spec.backlog / perRequest),
      concurrency: 4,
      check: checkBatch(perRequest),
    });
    const backlogIntakeSeconds = (wallNow() - started) / 1000;
    await sleep(2000); // the connector at its pace, the backlog claimed: steady state
    const before = await simStats(stack);
    log(
      `    backlog of ${backlog.accepted.toLocaleString('en-US')} bulk queued in ${backlogIntakeSeconds.toFixed(1)} s; ` +
        `simulator has ${before.submitsAccepted.toLocaleString('en-US')} submits so far`,
    );

    const simClock = await clockOffset(`${stack.simUrl}/clock`);
    await httpJson(`${stack.simUrl}/track`, { body: { prefix: PREFIX } });
    const meter = new CpuMeter({
      relais: stack.relais.pid,
      simulator: stack.sim.pid,
      receiver: stack.hook.pid,
      postgres: kind === 'postgres',
    });
    const measureStart = wallNow();
    const startedAt: number[] = [];
    const http202: number[] = [];
    for (let i = 0; i < spec.otp; i++) {
      const code = String((i * 7919 + 123_457) % 1_000_000).padStart(6, '0');
      const body = Buffer.from(
        JSON.stringify({
          to: `+336${String(10_000_000 + i).slice(-8)}`,
          from: 'Relais',
          text: `${PREFIX}${i} Your Relais code is ${code}. It expires in 10 minutes.`,
          lane: 'otp',
        }),
      );
      const t = wallNow();
      startedAt.push(t);
      const status = await post(agent, `${stack.relais.baseUrl}/v1/messages`, stack.apiKey, body);
      if (status !== 202) throw new Error(`POST /v1/messages answered ${status} for otp #${i}`);
      http202.push(wallNow() - t);
      await sleep(spec.gapMs);
    }
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const { body } = await httpJson<{ arrivals: number }>(`${stack.simUrl}/track`);
      if (body.arrivals >= spec.otp) break;
      await sleep(50);
    }
    const measureEnd = wallNow();
    const { body: tracked } = await httpJson<{
      startedAt: number;
      arrivals: [string, number][];
      perSecond: { tracked: number; others: number }[];
    }>(`${stack.simUrl}/untrack`, { method: 'POST', body: {} });
    const after = await simStats(stack);
    const totalSubmits = tracked.perSecond.reduce((s, p) => s + p.tracked + p.others, 0);
    const cpu = meter.read(totalSubmits);
    const outcome = await stack.reader.outcome();
    const where = await stack.db.settings();

    const latenciesMs: number[] = [];
    for (const [text, at] of tracked.arrivals) {
      const i = Number(text.slice(PREFIX.length).split(' ', 1)[0]);
      const t = startedAt[i];
      if (t !== undefined) latenciesMs.push(at - simClock.offsetMs - t);
    }
    // Full seconds only: the first and the last are partly outside the measurement.
    const full = tracked.perSecond.slice(1, -1).map((p) => p.others);
    const measured = full.length > 0 ? full : tracked.perSecond.map((p) => p.others);
    return {
      kind,
      spec,
      sent: spec.otp,
      arrived: latenciesMs.length,
      latenciesMs,
      p50: quantile(latenciesMs, 0.5),
      p95: quantile(latenciesMs, 0.95),
      p99: quantile(latenciesMs, 0.99),
      max: latenciesMs.reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY),
      http202p50: quantile(http202, 0.5),
      http202p99: quantile(http202, 0.99),
      bulkPerSecond: {
        mean: measured.reduce((a, b) => a + b, 0) / measured.length,
        min: Math.min(...measured),
        max: Math.max(...measured),
        seconds: measured.length,
      },
      backlogLeft: (outcome.messages.accepted ?? 0) + (outcome.messages.queued ?? 0),
      backlogIntakeSeconds,
      throttledBySimulator: after.submitsThrottled - before.submitsThrottled,
      cpu,
      where,
      clockErrorMs: simClock.errorMs,
      measureSeconds: (measureEnd - measureStart) / 1000,
      profileDir: options.profileDir,
      statementsDir: options.statementsDir ?? null,
    };
  } finally {
    agent.destroy();
    await stack.teardown();
  }
}
