import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import { openFdCount } from './preflight.ts';

/**
 * Watches the load generator itself. When the generator's own thread is busy, sends leave late and
 * timings include its queueing: the numbers then describe the generator, not the target, and the
 * run is reported invalid (exit 2) with the reasons below instead of as a pass or a fail.
 */
export interface SaturationLimits {
  /** Event-loop delay p99 above which timings are untrustworthy. */
  maxEventLoopP99Ms: number;
  /** Generator schedule lag p99: sends and open-model arrivals late for reasons not caused by the target. */
  maxSendLagP99Ms: number;
  /** Share of scheduled messages that must actually be sent. */
  minSentRatio: number;
  /** Share of the fd limit the run may use. */
  maxFdShare: number;
}

export const DEFAULT_SATURATION_LIMITS: SaturationLimits = Object.freeze({
  maxEventLoopP99Ms: 50,
  maxSendLagP99Ms: 50,
  minSentRatio: 0.97,
  maxFdShare: 0.9,
});

/** How busy the whole machine was over the run (Linux /proc/stat and the load average). */
export interface MachineLoad {
  cores: number;
  /** 1-minute load average at the end of the run. */
  loadAvg1: number;
  /** CPU time every process used, in cores (1.0 = one core busy for the whole run). */
  busyCores: number;
  /** Share of CPU time the hypervisor took away (steal), in percent. */
  stealPct: number;
}

/** The generator's own thread counts as saturated from this share of one core. */
export const GENERATOR_CORE_SHARE = 0.8;

export interface SaturationReport {
  /**
   * `saturated`: the generator itself was the bottleneck (exit 2). `machine_busy`: timings were late
   * because other work held the CPUs, not because the generator ran out of its own core; the run
   * stands, and the verdict says so.
   */
  verdict: 'ok' | 'saturated' | 'machine_busy';
  reasons: string[];
  /** Which of the two, and the readings that decided it (present when timings were late). */
  cause?: string;
  /** CPU of the generator thread(s) alone, peak per second, in cores. */
  threadCpuCoresPeak?: number;
  machine?: MachineLoad;
  eventLoopP99Ms: number;
  eventLoopMaxMs: number;
  /** Process CPU time over wall time; 1.0 is one core fully busy. */
  cpuCores: number;
  cpuCoresPeak: number;
  sendLagP99Ms: number;
  scheduled: number;
  sent: number;
  fdPeak?: number;
  fdLimit?: number;
  selfInflicted: Record<string, number>;
}

/** CPU time (ms) of the calling thread: /proc/thread-self is the thread that reads it (readFileSync runs on it). */
export function threadCpuMs(): number | undefined {
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 (utime, stime) in USER_HZ ticks, 100 per second on Linux.
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return undefined;
  }
}

/** Whole-machine CPU ticks from /proc/stat: total, idle (idle + iowait), steal. */
export function machineTicks(): { total: number; idle: number; steal: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const n = line.trim().split(/\s+/).slice(1).map(Number);
    const total = n.slice(0, 8).reduce((a, b) => a + b, 0);
    return { total, idle: n[3]! + (n[4] ?? 0), steal: n[7] ?? 0 };
  } catch {
    return undefined;
  }
}

export class SaturationMonitor {
  readonly #eld: IntervalHistogram;
  readonly #wallStart = performance.now();
  readonly #cpuStart = process.cpuUsage();
  #lastCpu = process.cpuUsage();
  #lastWall = performance.now();
  #lastThreadCpu = threadCpuMs();
  readonly #threadCpuStart = this.#lastThreadCpu;
  readonly #machineStart = machineTicks();
  cpuPeak = 0;
  threadCpuPeak: number | undefined;
  fdPeak: number | undefined;

  constructor() {
    // 5 ms resolution: fine enough to see a 20 ms stall, cheap enough not to be one.
    this.#eld = monitorEventLoopDelay({ resolution: 5 });
    this.#eld.enable();
  }

  /** Called once per second by the run loop. */
  sample(): { cpuCores: number; fds?: number } {
    const now = performance.now();
    const cpu = process.cpuUsage(this.#lastCpu);
    const cores = (cpu.user + cpu.system) / 1000 / Math.max(1, now - this.#lastWall);
    const thread = threadCpuMs();
    if (thread !== undefined && this.#lastThreadCpu !== undefined) {
      this.threadCpuPeak = Math.max(this.threadCpuPeak ?? 0, (thread - this.#lastThreadCpu) / Math.max(1, now - this.#lastWall));
    }
    this.#lastThreadCpu = thread;
    this.#lastCpu = process.cpuUsage();
    this.#lastWall = now;
    this.cpuPeak = Math.max(this.cpuPeak, cores);
    const fds = openFdCount();
    if (fds !== undefined) this.fdPeak = Math.max(this.fdPeak ?? 0, fds);
    return { cpuCores: Math.round(cores * 100) / 100, fds };
  }

  stop(): { eventLoopP99Ms: number; eventLoopMaxMs: number; cpuCores: number; threadCpuCoresPeak?: number; machine?: MachineLoad } {
    this.#eld.disable();
    const cpu = process.cpuUsage(this.#cpuStart);
    const wall = Math.max(1, performance.now() - this.#wallStart);
    const end = machineTicks();
    const cores = availableParallelism();
    // A run shorter than one sample still gets a reading: the whole run's average.
    const thread = threadCpuMs();
    if (thread !== undefined && this.#threadCpuStart !== undefined)
      this.threadCpuPeak = Math.max(this.threadCpuPeak ?? 0, (thread - this.#threadCpuStart) / wall);
    let machine: MachineLoad | undefined;
    if (this.#machineStart && end && end.total > this.#machineStart.total) {
      const total = end.total - this.#machineStart.total;
      const busy = total - (end.idle - this.#machineStart.idle);
      machine = {
        cores,
        loadAvg1: Math.round(loadavg()[0]! * 100) / 100,
        busyCores: Math.round((busy / total) * cores * 100) / 100,
        stealPct: Math.round(((end.steal - this.#machineStart.steal) / total) * 1000) / 10,
      };
    }
    return {
      threadCpuCoresPeak: this.threadCpuPeak === undefined ? undefined : Math.round(this.threadCpuPeak * 100) / 100,
      machine,
      eventLoopP99Ms: Math.round(this.#eld.percentile(99) / 1e4) / 100,
      eventLoopMaxMs: Math.round(this.#eld.max / 1e4) / 100,
      cpuCores: Math.round(((cpu.user + cpu.system) / 1000 / wall) * 100) / 100,
    };
  }
}

/** Outcomes that are the generator's own resource exhaustion, not the target's behaviour. */
export const SELF_INFLICTED = ['error.EMFILE', 'error.ENFILE', 'error.EADDRNOTAVAIL', 'error.ENOBUFS'];

/**
 * Late timings have two different causes, and only one is the generator's fault: its own thread
 * ran out of its core (saturated: exit 2), or other work on the machine kept it from running
 * (machine busy: the run stands and the verdict says so). The generator thread's own CPU decides:
 * near one core means it was the bottleneck; well below, with the machine loaded (other processes'
 * CPU, load average at or above the cores, or hypervisor steal), it was waiting for a CPU.
 */
export function classifyCause(m: { threadCpuCoresPeak?: number; processCpuCoresPeak: number; machine?: MachineLoad }): {
  cause: 'generator' | 'machine';
  explanation: string;
} {
  const own = m.threadCpuCoresPeak ?? m.processCpuCoresPeak;
  const ownText = `generator thread CPU peak ${own.toFixed(2)} cores${m.threadCpuCoresPeak === undefined ? ' (process-wide; no per-thread reading)' : ''}`;
  const mc = m.machine;
  const machineText = mc
    ? `machine: load average ${mc.loadAvg1} on ${mc.cores} cores, all processes ${mc.busyCores} cores, steal ${mc.stealPct}%`
    : 'machine load unknown';
  if (own >= GENERATOR_CORE_SHARE)
    return { cause: 'generator', explanation: `the generator is saturated: ${ownText} (>= ${GENERATOR_CORE_SHARE}); ${machineText}` };
  if (mc) {
    const others = Math.max(0, mc.busyCores - m.processCpuCoresPeak);
    const busy = mc.stealPct >= 10 || mc.loadAvg1 >= mc.cores || others >= mc.cores / 2;
    if (busy)
      return {
        cause: 'machine',
        explanation: `the machine is busy, not the generator: ${ownText}; ${machineText} (other work about ${others.toFixed(2)} cores)`,
      };
  }
  return {
    cause: 'generator',
    explanation: `the generator is saturated: ${ownText} and the machine was not busy (${machineText}): something blocked its thread (synchronous work, GC, swapping)`,
  };
}

export function judgeSaturation(
  m: {
    eventLoopP99Ms: number;
    eventLoopMaxMs: number;
    cpuCores: number;
    cpuCoresPeak: number;
    threadCpuCoresPeak?: number;
    machine?: MachineLoad;
    sendLagP99Ms: number;
    scheduled: number;
    sent: number;
    fdPeak?: number;
    fdLimit?: number;
    outcomes: Record<string, number>;
  },
  limits: SaturationLimits = DEFAULT_SATURATION_LIMITS,
): SaturationReport {
  /** Late timings: the generator's CPU or the machine's. */
  const late: string[] = [];
  /** Local resources: the generator's fault whatever the CPU did. */
  const local: string[] = [];
  const cpu = `process CPU ${m.cpuCores.toFixed(2)} cores (peak ${m.cpuCoresPeak.toFixed(2)})`;
  if (m.eventLoopP99Ms > limits.maxEventLoopP99Ms) {
    late.push(
      `event-loop delay p99 ${m.eventLoopP99Ms} ms > ${limits.maxEventLoopP99Ms} ms (max ${m.eventLoopMaxMs} ms); ${cpu}: latencies include the generator's own queueing`,
    );
  }
  if (m.sendLagP99Ms > limits.maxSendLagP99Ms) {
    late.push(
      `scheduled sends and arrivals left ${m.sendLagP99Ms} ms late at p99 (limit ${limits.maxSendLagP99Ms} ms) for reasons on the generator side; ${cpu}`,
    );
  }
  if (m.scheduled > 0 && m.sent / m.scheduled < limits.minSentRatio) {
    late.push(
      `only ${m.sent} of ${m.scheduled} scheduled messages were sent (${((m.sent / m.scheduled) * 100).toFixed(1)}% < ${limits.minSentRatio * 100}%): the requested rate was not produced; lower --rate/--connections or add --workers`,
    );
  }
  if (m.fdPeak !== undefined && m.fdLimit !== undefined && m.fdPeak > m.fdLimit * limits.maxFdShare) {
    local.push(`open descriptors peaked at ${m.fdPeak} of ulimit -n ${m.fdLimit}`);
  }
  const selfInflicted: Record<string, number> = {};
  for (const k of SELF_INFLICTED) {
    const n = m.outcomes[k] ?? 0;
    if (n > 0) selfInflicted[k] = n;
  }
  if (Object.keys(selfInflicted).length > 0) {
    local.push(
      `the generator ran out of local resources (${Object.entries(selfInflicted)
        .map(([k, n]) => `${k}×${n}`)
        .join(', ')}): raise ulimit -n or spread over --source-ip addresses`,
    );
  }
  const cause =
    late.length > 0
      ? classifyCause({ threadCpuCoresPeak: m.threadCpuCoresPeak, processCpuCoresPeak: m.cpuCoresPeak, machine: m.machine })
      : undefined;
  const verdict = local.length > 0 || cause?.cause === 'generator' ? 'saturated' : cause ? 'machine_busy' : 'ok';
  return {
    verdict,
    reasons: [...late, ...local],
    cause: cause?.explanation,
    threadCpuCoresPeak: m.threadCpuCoresPeak,
    machine: m.machine,
    eventLoopP99Ms: m.eventLoopP99Ms,
    eventLoopMaxMs: m.eventLoopMaxMs,
    cpuCores: m.cpuCores,
    cpuCoresPeak: Math.round(m.cpuCoresPeak * 100) / 100,
    sendLagP99Ms: m.sendLagP99Ms,
    scheduled: m.scheduled,
    sent: m.sent,
    fdPeak: m.fdPeak,
    fdLimit: m.fdLimit,
    selfInflicted,
  };
}
