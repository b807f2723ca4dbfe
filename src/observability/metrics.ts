import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Prometheus metrics. One registry per app (tests build several apps in one process). Counters are
 * incremented where things happen; gauges that describe stored state (queue depth, webhook backlog)
 * are read from the database at scrape time by the collectors registered in app.ts.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly accepted = new Counter({
    name: 'relais_messages_accepted_total',
    help: 'Messages accepted (committed and acknowledged) by lane',
    labelNames: ['lane'] as const,
    registers: [this.registry],
  });
  readonly outcomes = new Counter({
    name: 'relais_message_outcomes_total',
    help: 'Dispatch outcomes by status (submitted, rejected, expired, failed) and connector',
    labelNames: ['status', 'connector'] as const,
    registers: [this.registry],
  });
  readonly receipts = new Counter({
    name: 'relais_receipts_total',
    help: 'Delivery receipts by state; state="unmatched" for receipts matching no message',
    labelNames: ['connector', 'state'] as const,
    registers: [this.registry],
  });
  readonly submitSeconds = new Histogram({
    name: 'relais_submit_duration_seconds',
    help: 'Time from submit_sm sent to its answer, by connector',
    labelNames: ['connector'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly throttled = new Counter({
    name: 'relais_throttled_total',
    help: 'ESME_RTHROTTLED answers by connector',
    labelNames: ['connector'] as const,
    registers: [this.registry],
  });
  readonly httpSeconds = new Histogram({
    name: 'relais_http_request_duration_seconds',
    help: 'HTTP request duration by method, route and status (intake answers after the commit)',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly webhookAttempts = new Counter({
    name: 'relais_webhook_attempts_total',
    help: 'Webhook delivery attempts by result (delivered, retry, failed)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly webhookEndpointPauses = new Counter({
    name: 'relais_webhook_endpoint_pauses_total',
    help: 'Webhook endpoints paused after failing again and again (a pause starts, or a failed probe restarts it)',
    registers: [this.registry],
  });

  constructor() {
    // Event-loop lag, heap, RSS, CPU, open handles: the process side of "is it healthy".
    collectDefaultMetrics({ register: this.registry, prefix: 'relais_' });
  }

  /** A gauge whose value is computed when Prometheus scrapes. */
  gauge<L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    collect: (set: (labels: Partial<Record<L, string>>, value: number) => void) => Promise<void> | void,
  ): void {
    const gauge: Gauge<L> = new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      async collect() {
        gauge.reset();
        await collect((labels, value) => gauge.set(labels, value));
      },
    });
  }
}
