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

export interface SaturationReport {
  verdict: 'ok' | 'saturated';
  reasons: string[];
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

export class SaturationMonitor {
  private readonly eld: IntervalHistogram;
  private readonly wallStart = performance.now();
  private readonly cpuStart = process.cpuUsage();
  private lastCpu = process.cpuUsage();
  private lastWall = performance.now();
  cpuPeak = 0;
  fdPeak: number | undefined;

  constructor() {
    // 5 ms resolution: fine enough to see a 20 ms stall, cheap enough not to be one.
    this.eld = monitorEventLoopDelay({ resolution: 5 });
    this.eld.enable();
  }

  /** Called once per second by the run loop. */
  sample(): { cpuCores: number; fds?: number } {
    const now = performance.now();
    const cpu = process.cpuUsage(this.lastCpu);
    const cores = (cpu.user + cpu.system) / 1000 / Math.max(1, now - this.lastWall);
    this.lastCpu = process.cpuUsage();
    this.lastWall = now;
    this.cpuPeak = Math.max(this.cpuPeak, cores);
    const fds = openFdCount();
    if (fds !== undefined) this.fdPeak = Math.max(this.fdPeak ?? 0, fds);
    return { cpuCores: Math.round(cores * 100) / 100, fds };
  }

  stop(): { eventLoopP99Ms: number; eventLoopMaxMs: number; cpuCores: number } {
    this.eld.disable();
    const cpu = process.cpuUsage(this.cpuStart);
    const wall = Math.max(1, performance.now() - this.wallStart);
    return {
      eventLoopP99Ms: Math.round(this.eld.percentile(99) / 1e4) / 100,
      eventLoopMaxMs: Math.round(this.eld.max / 1e4) / 100,
      cpuCores: Math.round(((cpu.user + cpu.system) / 1000 / wall) * 100) / 100,
    };
  }
}

/** Outcomes that are the generator's own resource exhaustion, not the target's behaviour. */
export const SELF_INFLICTED = ['error.EMFILE', 'error.ENFILE', 'error.EADDRNOTAVAIL', 'error.ENOBUFS'];

export function judgeSaturation(
  m: { eventLoopP99Ms: number; eventLoopMaxMs: number; cpuCores: number; cpuCoresPeak: number; sendLagP99Ms: number; scheduled: number; sent: number; fdPeak?: number; fdLimit?: number; outcomes: Record<string, number> },
  limits: SaturationLimits = DEFAULT_SATURATION_LIMITS,
): SaturationReport {
  const reasons: string[] = [];
  const cpu = `process CPU ${m.cpuCores.toFixed(2)} cores (peak ${m.cpuCoresPeak.toFixed(2)})`;
  if (m.eventLoopP99Ms > limits.maxEventLoopP99Ms) {
    reasons.push(`event-loop delay p99 ${m.eventLoopP99Ms} ms > ${limits.maxEventLoopP99Ms} ms (max ${m.eventLoopMaxMs} ms); ${cpu}: the generator thread was busy, so latencies include its own queueing`);
  }
  if (m.sendLagP99Ms > limits.maxSendLagP99Ms) {
    reasons.push(`scheduled sends and arrivals left ${m.sendLagP99Ms} ms late at p99 (limit ${limits.maxSendLagP99Ms} ms) for reasons on the generator side; ${cpu}`);
  }
  if (m.scheduled > 0 && m.sent / m.scheduled < limits.minSentRatio) {
    reasons.push(`only ${m.sent} of ${m.scheduled} scheduled messages were sent (${((m.sent / m.scheduled) * 100).toFixed(1)}% < ${limits.minSentRatio * 100}%): the generator could not produce the requested rate; lower --rate/--connections or add --workers`);
  }
  if (m.fdPeak !== undefined && m.fdLimit !== undefined && m.fdPeak > m.fdLimit * limits.maxFdShare) {
    reasons.push(`open descriptors peaked at ${m.fdPeak} of ulimit -n ${m.fdLimit}`);
  }
  const selfInflicted: Record<string, number> = {};
  for (const k of SELF_INFLICTED) {
    const n = m.outcomes[k] ?? 0;
    if (n > 0) selfInflicted[k] = n;
  }
  if (Object.keys(selfInflicted).length > 0) {
    reasons.push(`the generator ran out of local resources (${Object.entries(selfInflicted).map(([k, n]) => `${k}×${n}`).join(', ')}): raise ulimit -n or spread over --source-ip addresses`);
  }
  return {
    verdict: reasons.length > 0 ? 'saturated' : 'ok',
    reasons,
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
