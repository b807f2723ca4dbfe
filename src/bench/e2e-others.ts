import { readdirSync, readFileSync } from 'node:fs';

/**
 * One benchmark at a time on a machine: other benchmark processes (`node …dist/bench/run.js` or
 * `…dist/bench/e2e.js`, not this one nor its ancestors) would be measured as Relais being slow.
 */

const SCRIPTS = ['dist/bench/run.js', 'dist/bench/e2e.js'];

function ancestors(): Set<number> {
  const out = new Set<number>([process.pid]);
  let pid = process.ppid;
  while (pid > 1 && !out.has(pid)) {
    out.add(pid);
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      break;
    }
  }
  return out;
}

/** Pids and command lines of the other benchmarks running now (empty where /proc is unreadable). */
export function otherBenchmarks(): { pid: number; command: string }[] {
  const mine = ancestors();
  const found: { pid: number; command: string }[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry) || mine.has(Number(entry))) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (!/(^|\/)node$/.test(argv[0] ?? '')) continue;
      if (argv.slice(1).some((a) => SCRIPTS.some((s) => a === s || a.endsWith(`/${s}`)))) {
        found.push({ pid: Number(entry), command: argv.join(' ') });
      }
    } catch {
      // exited meanwhile, or not ours to read
    }
  }
  return found;
}

/** Waits (at most maxMs) until no other benchmark runs; returns the time waited. */
export async function waitForOtherBenchmarks(maxMs: number, log: (line: string) => void): Promise<number> {
  const started = Date.now();
  let lastLog = 0;
  for (;;) {
    const others = otherBenchmarks();
    if (others.length === 0) return Date.now() - started;
    if (Date.now() - started >= maxMs) {
      log(`another benchmark is still running after ${Math.round(maxMs / 1000)} s; going on anyway`);
      return Date.now() - started;
    }
    if (Date.now() - lastLog >= 30_000) {
      lastLog = Date.now();
      log(
        `waiting for another benchmark to finish: ${others.map((o) => `${o.pid} ${o.command}`).join('; ')}`,
      );
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}
