import { clockOffset, wallNow } from './e2e-child.js';
import { CpuMeter, type CpuUsage } from './e2e-cpu.js';
import type { Outcome } from './e2e-db.js';
import {
  type HookCount,
  hookCount,
  type ScenarioOptions,
  simStats,
  startScenarioStack,
  waitBound,
} from './e2e-stack.js';
import { checkBatch, runLoad } from './load.js';

/**
 * End-to-end throughput: N bulk messages through `POST /v1/messages/batch`, timed from the first request
 * until every message is `delivered` in the database and every webhook event (submitted + delivered, two
 * per message) has been answered by the receiver. Stopped at a time budget if it would take longer: the
 * rate reached is reported, marked capped.
 */

export interface ThroughputSpec {
  messages: number;
  perRequest: number;
  concurrency: number;
  /** Tenant's webhook_batch_size: 0 = one event per request. */
  webhookBatch: number;
  budgetSeconds: number;
  receiptDelayMs: number;
  connector: { binds: number; window: number; tps: number };
}

export interface ThroughputResult {
  kind: 'sqlite' | 'postgres';
  spec: ThroughputSpec;
  accepted: number;
  intakeSeconds: number;
  /** From the first request; null when not reached within the budget. */
  submittedSeconds: number | null;
  deliveredSeconds: number | null;
  webhooksSeconds: number | null;
  /** All delivered and all webhooks answered; null when capped. */
  endSeconds: number | null;
  capped: boolean;
  /** Messages per second end to end; when capped, webhook events answered per second / 2 over the budget. */
  rate: number;
  /** When capped: what was done at the budget. */
  atCap: { seconds: number; webhookEvents: number; delivered: number } | null;
  receiver: HookCount;
  outcome: Outcome;
  /** Every check of the run, e.g. "200,000 delivered in messages": ok or not. */
  checks: { what: string; ok: boolean }[];
  cpu: CpuUsage;
  /** The storage, as databases.ts describes it. */
  where: string;
  simulator: { submitsAccepted: number; submitsThrottled: number; maxTpsObserved: number; receipts: number };
  profileDir: string | null;
  statementsDir: string | null;
  clockErrorMs: number;
  /** With --runs N: the end-to-end rate of every run, in order; this result is the median one. */
  rates?: number[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const n0 = (v: number) => Math.round(v).toLocaleString('en-US');

export async function runThroughput(
  kind: 'sqlite' | 'postgres',
  spec: ThroughputSpec,
  bodies: readonly Buffer[],
  options: ScenarioOptions,
): Promise<ThroughputResult> {
  const { log } = options;
  const stack = await startScenarioStack(kind, spec, options);
  try {
    await waitBound(stack, spec.connector.binds);
    const hookClock = await clockOffset(`${stack.hookUrl}/clock`);
    const N = spec.messages;
    const requests = Math.ceil(N / spec.perRequest);
    if (requests * spec.perRequest !== N) throw new Error('messages must be a multiple of perRequest');

    const meter = new CpuMeter({
      relais: stack.relais.pid,
      simulator: stack.sim.pid,
      receiver: stack.hook.pid,
      postgres: kind === 'postgres',
    });
    const t0 = wallNow();
    const dateOffset = Date.now() - t0; // Relais writes Date.now() into the database
    const since = (wall: number) => (wall - t0) / 1000;

    let intakeDone = false;
    const intake = runLoad({
      baseUrl: stack.relais.baseUrl,
      apiKey: stack.apiKey,
      path: '/v1/messages/batch',
      bodies,
      requests,
      concurrency: spec.concurrency,
      check: checkBatch(spec.perRequest),
    }).finally(() => {
      intakeDone = true;
    });
    let intakeEnd = 0;
    void intake.then(() => {
      intakeEnd = wallNow();
    });

    // Progress until every receipt is stored (the simulator counts acknowledged receipts, which Relais
    // acknowledges only once committed) and every webhook event is answered, or the budget runs out.
    let lastProgress = { at: wallNow(), value: -1 };
    let lastLog = 0;
    let capped = false;
    let sim = await simStats(stack);
    let hook = await hookCount(stack);
    for (;;) {
      await sleep(250);
      [sim, hook] = await Promise.all([simStats(stack), hookCount(stack)]);
      const now = wallNow();
      const progress = sim.submitsAccepted + sim.receiptsAcknowledged + hook.unique;
      if (progress !== lastProgress.value) lastProgress = { at: now, value: progress };
      if (now - lastLog >= 5000) {
        lastLog = now;
        log(
          `    ${since(now).toFixed(0).padStart(4)} s: intake ${intakeDone ? 'done' : 'running'}, carrier ` +
            `${n0(sim.submitsAccepted)} submits / ${n0(sim.receiptsAcknowledged)} receipts stored, ` +
            `webhooks ${n0(hook.unique)} of ${n0(2 * N)} events in ${n0(hook.requests)} requests ` +
            `over ${n0(hook.connections)} connections`,
        );
      }
      if (intakeDone && sim.receiptsAcknowledged >= N && hook.unique >= 2 * N) break;
      if (since(now) >= spec.budgetSeconds) {
        capped = true;
        break;
      }
      if (now - lastProgress.at > 60_000) {
        throw new Error(`no progress for 60 s\n--- relais output ---\n${stack.relais.output()}`);
      }
    }
    const stoppedAt = wallNow();
    const cpu = meter.read(N);
    const where = await stack.db.settings();
    const loadResult = await intake; // rethrows a failed intake
    const delivered = capped ? await stack.reader.delivered(stack.tenantId) : N;
    // The sender records attempts every 20 ms after the answers: give the last ones a moment to land.
    let outcome = await stack.reader.outcome();
    for (let i = 0; i < 20 && !capped && (outcome.webhookEvents.delivered ?? 0) < 2 * N; i++) {
      await sleep(100);
      outcome = await stack.reader.outcome();
    }
    if (!capped) hook = await hookCount(stack);

    const allSubmitted = (outcome.messages.accepted ?? 0) === 0 && (outcome.messages.queued ?? 0) === 0;
    const allDelivered = (outcome.messages.delivered ?? 0) === N;
    const fromDb = (t: number | null) => (t === null ? null : since(t - dateOffset));
    const submittedSeconds = allSubmitted ? fromDb(outcome.lastSubmittedAt) : null;
    const deliveredSeconds = allDelivered ? fromDb(outcome.lastDeliveredAt) : null;
    const webhooksSeconds =
      hook.unique >= 2 * N && hook.lastUniqueAt !== null
        ? since(hook.lastUniqueAt - hookClock.offsetMs)
        : null;
    const endSeconds =
      !capped && deliveredSeconds !== null && webhooksSeconds !== null
        ? Math.max(deliveredSeconds, webhooksSeconds)
        : null;
    const budget = since(stoppedAt);
    const rate = endSeconds !== null ? N / endSeconds : hook.unique / 2 / budget;

    const checks = [
      { what: `${n0(N)} accepted (202)`, ok: loadResult.accepted === N },
      capped
        ? { what: `capped at ${budget.toFixed(0)} s`, ok: true }
        : { what: `${n0(N)} delivered in messages`, ok: allDelivered },
      capped
        ? { what: `receiver counted ${n0(hook.unique)} events by then`, ok: true }
        : {
            what: `${n0(2 * N)} webhook events delivered`,
            ok: (outcome.webhookEvents.delivered ?? 0) === 2 * N,
          },
      capped
        ? { what: 'no event refused', ok: (outcome.webhookEvents.failed ?? 0) === 0 }
        : {
            what: `receiver: ${n0(N)} submitted + ${n0(N)} delivered events`,
            ok: hook.byStatus.submitted === N && hook.byStatus.delivered === N && hook.malformed === 0,
          },
    ];
    return {
      kind,
      spec,
      accepted: loadResult.accepted,
      intakeSeconds: since(intakeEnd || stoppedAt),
      submittedSeconds,
      deliveredSeconds,
      webhooksSeconds,
      endSeconds,
      capped,
      rate,
      atCap: capped ? { seconds: budget, webhookEvents: hook.unique, delivered } : null,
      receiver: hook,
      outcome,
      checks,
      cpu,
      where,
      simulator: {
        submitsAccepted: sim.submitsAccepted,
        submitsThrottled: sim.submitsThrottled,
        maxTpsObserved: sim.maxTpsObserved,
        receipts: sim.receiptsAcknowledged,
      },
      profileDir: options.profileDir,
      statementsDir: options.statementsDir ?? null,
      clockErrorMs: hookClock.errorMs,
    };
  } finally {
    await stack.teardown();
  }
}
