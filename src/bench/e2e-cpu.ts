import {
  cpuByCommand,
  cpuDelta,
  cpuSeconds,
  machineBusySeconds,
  mainThreadWaitSeconds,
  peakRssBytes,
} from './proc.js';

/**
 * CPU of every process of a run over a window, in % of one core (user + system from /proc/<pid>/stat):
 * Relais, the simulator, the webhook receiver, PostgreSQL's server processes, this benchmark process, and
 * the rest of the machine (from /proc/stat: well above a few % means someone else used the cores).
 */
export interface CpuUsage {
  seconds: number;
  relaisPct: number;
  /** Relais CPU per message of the run, µs: the steadiest figure when the machine is shared. */
  relaisUsPerMsg: number;
  simulatorPct: number;
  receiverPct: number;
  postgresPct: number | null;
  benchPct: number;
  otherPct: number;
  /** VmHWM of Relais since it started (one fresh process per run). */
  relaisPeakRssBytes: number;
  /**
   * Share of the window Relais's main thread, the throughput limit, was runnable but waiting for a
   * core (schedstat): what the other threads and processes on the machine's cores cost it.
   */
  relaisMainWaitPct: number;
}

export interface CpuPids {
  relais: number;
  simulator: number;
  receiver: number;
  postgres: boolean;
}

/** A reading of a process that may have exited: NaN then. */
const orNaN = (read: () => number): number => {
  try {
    return read();
  } catch {
    return Number.NaN;
  }
};
const safeCpu = (pid: number) => orNaN(() => cpuSeconds(pid));
const safeWait = (pid: number) => orNaN(() => mainThreadWaitSeconds(pid));

export class CpuMeter {
  private readonly startedAt = performance.now();
  private readonly relais: number;
  private readonly relaisMainWait: number;
  private readonly simulator: number;
  private readonly receiver: number;
  private readonly postgres: Map<number, number> | null;
  private readonly bench = process.cpuUsage();
  private readonly machine = machineBusySeconds();

  constructor(private readonly pids: CpuPids) {
    this.relais = safeCpu(pids.relais);
    this.relaisMainWait = safeWait(pids.relais);
    this.simulator = safeCpu(pids.simulator);
    this.receiver = safeCpu(pids.receiver);
    this.postgres = pids.postgres ? cpuByCommand('postgres') : null;
  }

  /** Usage since the meter was made; `messages` for the per-message cost. */
  read(messages: number): CpuUsage {
    const seconds = (performance.now() - this.startedAt) / 1000;
    const relais = safeCpu(this.pids.relais) - this.relais;
    const relaisMainWait = safeWait(this.pids.relais) - this.relaisMainWait;
    const simulator = safeCpu(this.pids.simulator) - this.simulator;
    const receiver = safeCpu(this.pids.receiver) - this.receiver;
    const postgres = this.postgres ? cpuDelta(this.postgres, cpuByCommand('postgres')) : null;
    const b = process.cpuUsage(this.bench);
    const bench = (b.user + b.system) / 1e6;
    const machine = machineBusySeconds() - this.machine;
    const known = relais + simulator + receiver + (postgres ?? 0) + bench;
    const pct = (s: number) => (s / seconds) * 100;
    const rss = orNaN(() => peakRssBytes(this.pids.relais));
    return {
      seconds,
      relaisPct: pct(relais),
      relaisUsPerMsg: messages > 0 ? (relais / messages) * 1e6 : Number.NaN,
      simulatorPct: pct(simulator),
      receiverPct: pct(receiver),
      postgresPct: postgres === null ? null : pct(postgres),
      benchPct: pct(bench),
      otherPct: pct(Math.max(0, machine - known)),
      relaisPeakRssBytes: rss,
      relaisMainWaitPct: pct(relaisMainWait),
    };
  }
}
