import { getPriority, setPriority } from 'node:os';

/**
 * The niceness of the worker thread that does background work for the main thread: the
 * phone-number thread (normalising a batch's destinations).
 *
 * Why: the main thread is the throughput limit (docs/architecture.md), and on a 2-core machine it
 * spent 23% of the end-to-end benchmark runnable but waiting for a core (its schedstat: 11.9 s on a
 * core, 3.8 s in the run queue, in 16 s). The phone thread works in bursts of about 17 ms a
 * 1,000-message batch and, at the same priority, took the core from the main thread for as long.
 * At niceness 10 the scheduler gives it about a tenth of a contended core (weights 110 against
 * 1024), so it runs on what the main thread leaves. Measured in pairs: +7.0% end to end
 * (docs/benchmarks.md, 2026-11-27, evening). The carrier link thread keeps the normal priority: it
 * carries the urgent lanes' submits, whose latency is a target of its own. So does the webhook
 * delivery thread: with webhooks of one event per request (the default) it makes 400,000 requests
 * for 200,000 messages and is itself the limit; at niceness 10 the main thread starved it, and end
 * to end fell by about 15% (docs/benchmarks.md, 2026-11-28).
 */
export const BACKGROUND_NICENESS = 10;

/**
 * Lowers the priority of the calling thread only, to `niceness` (a thread already as low or lower,
 * as under `nice -n 15 npm start`, stays as it is: going back up needs privileges). Linux keeps a
 * niceness per thread, and getpriority/setpriority(PRIO_PROCESS, 0) apply to the calling thread; on
 * other systems they would change the whole process, main thread included, so this does nothing
 * there. Raising niceness needs no privilege; a refusal (a seccomp profile, say) leaves the thread
 * as it was.
 */
export function lowerThisThreadPriority(niceness = BACKGROUND_NICENESS): void {
  if (process.platform !== 'linux') return;
  try {
    if (getPriority(0) < niceness) setPriority(0, niceness);
  } catch {
    // Refused: the thread keeps its priority.
  }
}
