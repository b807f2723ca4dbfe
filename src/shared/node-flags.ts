/**
 * The V8 flags Relais runs with: `npm start`, the `relais` command (its shebang), deploy/relais.service
 * and deploy/Dockerfile all pass them (test/node-flags.test.ts keeps them in step), and the benchmarks
 * start Relais with them. Node.js reads these only when the process starts: set later, from code, they
 * change nothing (tried with v8.setFlagsFromString).
 *
 * --max-semi-space-size=64: a young generation of 64 MiB semi-spaces instead of Node.js 20's 16. The
 * carrier path allocates short-lived objects by the hundred per message (rows, PDUs, webhook payloads),
 * and the garbage collector took 11% (SQLite) to 18% (PostgreSQL) of the main thread, the throughput
 * limit. End to end (docs/benchmarks.md, 2026-11-27): 7,762 → 8,230 msg/s on SQLite (5 pairs) and
 * 6,429, 6,672 → 6,987, 6,790 on PostgreSQL; about 100 MiB more peak RSS.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64'];
