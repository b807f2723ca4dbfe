import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, type } from 'node:os';

/** Readers for /proc: CPU time and peak memory of the Relais child, and a description of the machine. */

let clockTicks: number | undefined;

/** USER_HZ, the unit of utime/stime in /proc/<pid>/stat (100 on every mainstream Linux). */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User + system CPU seconds consumed so far by a process (its own threads, not its children). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: fields after the last ')' are fixed.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so utime (14) and stime (15) are at 11 and 12.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / ticksPerSecond();
}

/**
 * Seconds a process's main thread (the thread whose tid is the pid) has been runnable but waiting for
 * a core: the second field of /proc/<pid>/task/<pid>/schedstat, in nanoseconds (kernels with
 * scheduler statistics, as every mainstream one has).
 */
export function mainThreadWaitSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').trim().split(/\s+/);
  return Number(fields[1]) / 1e9;
}

/** A line of /proc/<pid>/status in bytes (VmHWM, VmRSS…), or NaN when absent. */
function statusBytes(pid: number, key: string): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

/** Peak resident set size (VmHWM) since the process started or since {@link resetPeakRss}. */
export function peakRssBytes(pid: number): number {
  return statusBytes(pid, 'VmHWM');
}

/**
 * Resets VmHWM to the current RSS (writing 5 to clear_refs, Linux ≥ 4.0), so each scenario reports its
 * own peak. Returns false when the kernel refuses; the peak is then cumulative since start.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  ramGiB: number;
  node: string;
  os: string;
}

export function machineInfo(): MachineInfo {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpu = m[1]!.trim();
  } catch {
    // not Linux: os.cpus() is good enough
  }
  let os = `${type()}`;
  try {
    const m = /^PRETTY_NAME="?([^"\n]+)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'));
    if (m) os = m[1]!;
  } catch {
    // keep os.type()
  }
  try {
    os += `, kernel ${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}`;
  } catch {
    // no kernel version
  }
  return {
    cpu,
    cores: cpus().length,
    ramGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    os,
  };
}

/** The filesystem type holding a path (longest matching mount point in /proc/mounts), e.g. ext4, tmpfs. */
export function filesystemOf(path: string): string {
  try {
    let best = { mount: '', fs: 'unknown' };
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [, mount, fs] = line.split(' ');
      if (!mount || !fs) continue;
      const inside = path === mount || path.startsWith(mount.endsWith('/') ? mount : `${mount}/`);
      if (inside && mount.length >= best.mount.length) best = { mount, fs };
    }
    return best.fs;
  } catch {
    return 'unknown';
  }
}

/**
 * CPU seconds per process whose command name is `comm` (e.g. every PostgreSQL backend and background
 * worker), for the CPU a local database server spends on our behalf. Processes we may not read are skipped.
 */
export function cpuByCommand(comm: string): Map<number, number> {
  const result = new Map<number, number>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return result;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== comm) continue;
      result.set(Number(entry), cpuSeconds(Number(entry)));
    } catch {
      // exited meanwhile, or not ours to read
    }
  }
  return result;
}

/** CPU seconds spent between two {@link cpuByCommand} snapshots (processes that exited in between are lost). */
export function cpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, seconds] of after) total += seconds - (before.get(pid) ?? 0);
  return total;
}

/** CPU seconds spent by the whole machine so far (all cores, every state but idle and iowait). */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest time is inside user)
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return (
    ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) /
    ticksPerSecond()
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits (at most `budgetMs`) until the machine is nearly idle: other work on a 2-core box (a test suite,
 * a build) would be measured as Relais being slow. Returns the time waited and the last load seen, in %
 * of one core.
 */
export async function waitForQuiet(
  budgetMs: number,
  thresholdPct = 25,
): Promise<{ waitedMs: number; busyPct: number }> {
  const started = Date.now();
  for (;;) {
    const before = machineBusySeconds();
    await sleep(1000);
    const busyPct = (machineBusySeconds() - before) * 100;
    const waitedMs = Date.now() - started;
    if (busyPct < thresholdPct || waitedMs >= budgetMs) return { waitedMs, busyPct };
  }
}
