/**
 * The V8 flags Relais runs with: `npm start`, the `relais` command (its shebang), deploy/relais.service
 * and deploy/Dockerfile all pass them (test/node-flags.test.ts keeps them in step), and the benchmarks
 * start Relais with them. Node.js reads these only when the process starts: set later, from code, they
 * change nothing (tried with v8.setFlagsFromString).
 *
 * --max-semi-space-size=32: a young generation of 32 MiB semi-spaces instead of Node.js 20's 16. The
 * carrier path allocates short-lived objects by the hundred per message (rows, PDUs, webhook payloads),
 * and the garbage collector took 11% (SQLite) to 18% (PostgreSQL) of the main thread, the throughput
 * limit. 64 MiB semi-spaces (docs/benchmarks.md, 2026-11-27: 7,762 → 8,230 msg/s on SQLite end to
 * end) gave 2.6% more than 32 (4 pairs, 2026-11-28), but V8 grows the young generation to its maximum
 * under any steady load and never gives it back: 64 put a 1,000,000-recipient campaign at 316 MB of
 * peak RSS, over its 300 MB target; 32 at 269 MB; 16 at 250 MB.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=32'];
