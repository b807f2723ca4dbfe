import { sql } from 'kysely';
import type { CarrierService } from '../carriers/carrier-service.js';
import type { WorkQueue } from '../dispatch/work-queue.js';
import type { Store } from '../store/store.js';
import type { Metrics } from './metrics.js';

/** Gauges read at scrape time: cheap queries on small tables and in-memory connector state. */
export function registerStateGauges(
  metrics: Metrics,
  store: Store,
  workQueue: WorkQueue,
  carriers: CarrierService,
): void {
  metrics.gauge('relais_queue_depth', 'Messages waiting in the queue, by lane', ['lane'], async (set) => {
    for (const [lane, n] of Object.entries(await workQueue.depth())) set({ lane }, n);
  });
  metrics.gauge('relais_webhook_backlog', 'Webhook events not delivered yet', [], async (set) => {
    const row = await store.db
      .selectFrom('webhook_events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '=', 'pending')
      .executeTakeFirst();
    // Handed-over events have no row before their first attempt: their handover lists them.
    const events = store.dialect === 'postgres' ? sql`events::json` : sql`events`;
    const handedOver = await sql<{ n: number | null }>`
      select sum(json_array_length(${events})) as n from webhook_handovers`.execute(store.db);
    set({}, Number(row?.n ?? 0) + Number(handedOver.rows[0]?.n ?? 0));
  });
  metrics.gauge(
    'relais_connector_binds',
    'Bound transmit-capable binds per connector',
    ['connector'],
    (set) => {
      for (const c of carriers.connectors.values()) set({ connector: c.name }, c.boundTransmitters);
    },
  );
  metrics.gauge(
    'relais_connector_window_used',
    'submit_sm awaiting an answer per connector',
    ['connector'],
    (set) => {
      for (const c of carriers.connectors.values()) set({ connector: c.name }, c.outstanding);
    },
  );
  metrics.gauge(
    'relais_connector_tps',
    'Current submit rate limit per connector (lowered while throttled)',
    ['connector'],
    (set) => {
      for (const c of carriers.connectors.values()) set({ connector: c.name }, c.currentTps);
    },
  );
  metrics.gauge('relais_dispatcher_buffered', 'Parts held in memory per connector', ['connector'], (set) => {
    for (const [name, n] of Object.entries(carriers.dispatcher.buffered())) set({ connector: name }, n);
  });
  metrics.gauge('relais_receipts_unmatched', 'Receipts that matched no message since start', [], (set) => {
    set({}, carriers.matcher.unmatched);
  });
}
