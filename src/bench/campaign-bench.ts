import { Agent, request } from 'node:http';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../config/load.js';
import { openStore, type Store } from '../store/store.js';
import { benchArgs, usageError } from './args.js';
import { seedList } from './campaign-seed.js';
import { clockOffset, destroyAgent, httpJson, wallNow } from './e2e-child.js';
import { simStats, startStack, waitBound } from './e2e-stack.js';
import { peakRssBytes } from './proc.js';
import { quantile } from './stats.js';

/**
 * The campaign benchmark: a list of N contacts seeded straight into the database, one campaign to it
 * started against the simulator (its own process) through a connector throttled to `tps`, Relais in
 * its own process. While the campaign runs, otp messages are sent one by one over HTTP.
 *
 * Reports: time from POST …/start to the first submit_sm at the simulator, campaign submits per
 * second at the simulator (should equal the connector's TPS), Relais's peak RSS (VmHWM), the most
 * campaign rows ever in the queue (lazy expansion: a few seconds of TPS, never N), and the urgent
 * lane's latency, from the HTTP call to the submit_sm's arrival at the simulator.
 */

const USAGE = `usage: node dist/bench/campaign-bench.js [options]   (after npm run build)

  --db NAME           sqlite (default) or postgres
  --recipients N      contacts in the list, and so recipients of the campaign (default 1,000,000)
  --seconds N         how long the campaign runs while measured (default 60)
  --tps N             the connector's TPS limit (default 500)
  --otp-gap-ms N      pause between two urgent probes (default 50)
  --urgent KIND       the urgent probe: otp (a message) or verification (a Verify code); default otp
  -h, --help          this help`;

export interface CampaignBenchOptions {
  db: 'sqlite' | 'postgres';
  recipients: number;
  /** Length of the measured window, seconds (the campaign need not finish). */
  seconds: number;
  /** The connector's TPS (all binds together). */
  tps: number;
  /** Gap between two otp messages, ms. */
  otpGapMs: number;
  /**
   * What the urgent probe sends: an `otp` message (POST /v1/messages), or a Verify code
   * (POST /v1/verifications, whose SMS goes on the otp lane).
   */
  urgent?: 'otp' | 'verification';
  log?: (line: string) => void;
}

export interface CampaignBenchResult {
  db: 'sqlite' | 'postgres';
  recipients: number;
  seedSeconds: number;
  connectorTps: number;
  startToFirstSubmitMs: number;
  /** Campaign submits per second at the simulator over the full seconds after a 2 s ramp. */
  sustainedPerSecond: { mean: number; min: number; max: number; seconds: number };
  peakRssMb: number;
  maxCampaignQueueRows: number;
  otp: { sent: number; arrived: number; p50: number; p99: number; max: number };
  campaignStats: Record<string, number>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const OTP = 'BENCH-OTP ';

export async function runCampaignBench(opts: CampaignBenchOptions): Promise<CampaignBenchResult> {
  const log = opts.log ?? (() => {});
  const stack = await startStack({
    kind: opts.db,
    connector: { binds: 1, window: 50, tps: opts.tps },
    webhookBatch: 100, // as the e2e latency benchmark: webhooks batched, 100 events per request
    receiptDelayMs: 200,
    // The Verify probe's own traffic must not meet the per-tenant and per-key rate limits.
    extraYaml:
      'verify:\n  rate_limits:\n    per_tenant: { limit: 1000000 }\n    per_api_key: { limit: 1000000 }\n',
  });
  const agent = new Agent({ keepAlive: true, maxSockets: 2 });
  let store: Store | null = null;
  let stopSampling = false;
  try {
    store = openStore(parseConfig({ data_dir: stack.db.dataDir, database_url: stack.db.databaseUrl }));
    const seedStart = wallNow();
    const { listId } = await seedList(store, { tenantId: stack.tenantId, count: opts.recipients });
    const seedSeconds = (wallNow() - seedStart) / 1000;
    log(`seeded ${opts.recipients.toLocaleString('en-US')} contacts in ${seedSeconds.toFixed(1)} s`);
    await waitBound(stack, 1);

    const base = stack.relais.baseUrl;
    const created = await call(agent, base, stack.apiKey, 'POST', '/v1/campaigns', {
      name: 'bench',
      list_ids: [listId],
      from: 'Bench',
      template: 'Hello {{first_name|there}}, our spring sale starts today!',
    });
    const id = (created.body as { id: string }).id;
    const simClock = await clockOffset(`${stack.simUrl}/clock`);
    await httpJson(`${stack.simUrl}/track`, { body: { prefix: OTP } });
    const before = (await simStats(stack)).submitsAccepted;

    const startedAt = wallNow();
    const started = await call(agent, base, stack.apiKey, 'POST', `/v1/campaigns/${id}/start`, {});
    if (started.status !== 200) throw new Error(`start answered ${started.status}`);
    log(`start answered in ${(wallNow() - startedAt).toFixed(0)} ms`);
    while ((await simStats(stack)).submitsAccepted === before) {
      if (wallNow() - startedAt > 30_000) throw new Error('no submit within 30 s of start');
      await sleep(2);
    }
    const startToFirstSubmitMs = wallNow() - startedAt;
    log(`first submit ${startToFirstSubmitMs.toFixed(0)} ms after start`);

    // The measured window: otp messages one by one, queue depth sampled.
    let maxQueue = 0;
    const sampler = (async () => {
      while (!stopSampling && wallNow() - startedAt < opts.seconds * 1000) {
        const row = await store!.db
          .selectFrom('queue')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('campaign_id', '=', id)
          .executeTakeFirstOrThrow();
        maxQueue = Math.max(maxQueue, Number(row.n));
        await sleep(250);
      }
    })();
    await sleep(2000);
    const otpStarted: number[] = [];
    for (let i = 0; wallNow() - startedAt < opts.seconds * 1000; i++) {
      otpStarted.push(wallNow());
      const to = `+336${13_000_000 + (i % 1_000_000)}`;
      const res =
        opts.urgent === 'verification'
          ? await call(agent, base, stack.apiKey, 'POST', '/v1/verifications', {
              to,
              template: `${OTP}${i} Your code is {{code}}`,
            })
          : await call(agent, base, stack.apiKey, 'POST', '/v1/messages', {
              to,
              from: 'Relais',
              text: `${OTP}${i} Your code is ${String(100_000 + i).slice(-6)}`,
              lane: 'otp',
            });
      if (res.status !== 202 && res.status !== 201)
        throw new Error(`urgent #${i} answered ${res.status}: ${JSON.stringify(res.body)}`);
      await sleep(opts.otpGapMs);
    }
    await sampler;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const { body } = await httpJson<{ arrivals: number }>(`${stack.simUrl}/track`);
      if (body.arrivals >= otpStarted.length) break;
      await sleep(50);
    }
    const { body: tracked } = await httpJson<{
      arrivals: [string, number][];
      perSecond: { tracked: number; others: number }[];
    }>(`${stack.simUrl}/untrack`, { method: 'POST', body: {} });
    const peakRssMb = peakRssBytes(stack.relais.pid) / 1024 / 1024;
    const latencies: number[] = [];
    for (const [text, at] of tracked.arrivals) {
      const t = otpStarted[Number(text.slice(OTP.length).split(' ', 1)[0])];
      if (t !== undefined) latencies.push(at - simClock.offsetMs - t);
    }
    // Seconds after the ramp (2 s), full seconds only; otp submits are not counted (tracked apart).
    const full = tracked.perSecond.slice(3, -1).map((p) => p.others);
    const stats = (await call(agent, base, stack.apiKey, 'GET', `/v1/campaigns/${id}`)).body as {
      stats: Record<string, number>;
    };
    return {
      db: opts.db,
      recipients: opts.recipients,
      seedSeconds,
      connectorTps: opts.tps,
      startToFirstSubmitMs,
      sustainedPerSecond: {
        mean: full.reduce((a, b) => a + b, 0) / Math.max(1, full.length),
        min: full.length ? Math.min(...full) : 0,
        max: full.length ? Math.max(...full) : 0,
        seconds: full.length,
      },
      peakRssMb,
      maxCampaignQueueRows: maxQueue,
      otp: {
        sent: otpStarted.length,
        arrived: latencies.length,
        p50: quantile(latencies, 0.5),
        p99: quantile(latencies, 0.99),
        max: latencies.reduce((a, b) => Math.max(a, b), 0),
      },
      campaignStats: stats.stats,
    };
  } finally {
    stopSampling = true;
    agent.destroy();
    destroyAgent();
    await store?.close();
    await stack.teardown();
  }
}

function call(
  agent: Agent,
  base: string,
  apiKey: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolvePromise, reject) => {
    const req = request(
      `${base}${path}`,
      {
        method,
        agent,
        headers: {
          authorization: `Bearer ${apiKey}`,
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolvePromise({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const values = benchArgs('campaign-bench', USAGE, {
    options: {
      db: { type: 'string', default: 'sqlite' },
      recipients: { type: 'string', default: '1000000' },
      seconds: { type: 'string', default: '60' },
      tps: { type: 'string', default: '500' },
      'otp-gap-ms': { type: 'string', default: '50' },
      urgent: { type: 'string', default: 'otp' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const usage: (why: string) => never = (why) => usageError('campaign-bench', USAGE, why);
  if (values.urgent !== 'otp' && values.urgent !== 'verification') usage('--urgent is otp or verification');
  if (values.db !== 'sqlite' && values.db !== 'postgres') usage('--db is sqlite or postgres');
  for (const name of ['recipients', 'seconds', 'tps', 'otp-gap-ms'] as const) {
    if (!(Number(values[name]) > 0)) usage(`--${name} expects a positive number`);
  }
  const result = await runCampaignBench({
    db: values.db,
    recipients: Number(values.recipients),
    seconds: Number(values.seconds),
    tps: Number(values.tps),
    otpGapMs: Number(values['otp-gap-ms']),
    urgent: values.urgent,
    log: (line) => process.stderr.write(`campaign-bench: ${line}\n`),
  });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}
