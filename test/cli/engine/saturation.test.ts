import { describe, expect, it } from 'vitest';
import { classifyCause, judgeSaturation, threadCpuMs, type MachineLoad } from '../../../cli/engine/saturation.ts';
import { decideVerdict } from '../../../cli/engine/thresholds.ts';
import type { RunResult } from '../../../cli/engine/result.ts';
import { createHistogram, recordMs, summarize } from '../../../cli/engine/histogram.ts';

/** Readings of a run whose timings were late (event-loop p99 120 ms), with the CPU figures injected. */
function lateRun(threadCpuCoresPeak: number | undefined, machine: MachineLoad | undefined, cpuCoresPeak = threadCpuCoresPeak ?? 0.1) {
  return judgeSaturation({
    eventLoopP99Ms: 120,
    eventLoopMaxMs: 300,
    cpuCores: cpuCoresPeak,
    cpuCoresPeak,
    threadCpuCoresPeak,
    machine,
    sendLagP99Ms: 1,
    scheduled: 100,
    sent: 100,
    outcomes: { completed: 5 },
  });
}

function resultWith(saturation: RunResult['saturation']): RunResult {
  const h = createHistogram();
  recordMs(h, 5);
  const l = summarize(h);
  return {
    kind: 'flood',
    version: 1,
    target: 'ws://127.0.0.1:1/',
    startedAt: '',
    durationMs: 1000,
    config: {},
    shards: 1,
    connections: { attempts: 5, opened: 5, peakOpen: 5 },
    outcomes: { completed: 5 },
    outcomeDetails: {},
    messages: { sent: 1, received: 1, lost: 0, unmatched: 0, bytesOut: 0, bytesIn: 0, ratePerSecOut: 1, ratePerSecIn: 1 },
    latency: { rtt: l, rttUncorrected: l, connect: l },
    saturation,
    preflight: [],
    series: [],
  };
}

const quiet: MachineLoad = { cores: 2, loadAvg1: 0.3, busyCores: 0.2, stealPct: 0 };

describe('saturation: the generator is saturated vs the machine is busy', () => {
  it('0.11 cores of its own on a machine busy with other work: machine busy, not exit 2 (the reported case)', () => {
    const s = lateRun(0.11, { cores: 2, loadAvg1: 4.6, busyCores: 1.9, stealPct: 0 });
    expect(s.verdict).toBe('machine_busy');
    expect(s.cause).toMatch(
      /^the machine is busy, not the generator: generator thread CPU peak 0\.11 cores; machine: load average 4\.6 on 2 cores/,
    );
    const v = decideVerdict(resultWith(s), []);
    expect(v.exitCode).toBe(0);
    expect(v.reasons.join('\n')).toContain('note: the machine is busy, not the generator');
  });

  it('its own thread near one core: the generator is saturated (exit 2), whatever else runs', () => {
    const s = lateRun(0.97, { cores: 2, loadAvg1: 3.1, busyCores: 1.95, stealPct: 0 });
    expect(s.verdict).toBe('saturated');
    const v = decideVerdict(resultWith(s), []);
    expect(v.exitCode).toBe(2);
    expect(v.reasons[0]).toMatch(/^invalid run: the generator is saturated: generator thread CPU peak 0\.97 cores/);
  });

  it('hypervisor steal alone makes the machine busy', () => {
    expect(
      classifyCause({
        threadCpuCoresPeak: 0.4,
        processCpuCoresPeak: 0.45,
        machine: { cores: 4, loadAvg1: 0.9, busyCores: 0.6, stealPct: 22 },
      }).cause,
    ).toBe('machine');
  });

  it("late timings with little CPU on a quiet machine stay the generator's (something blocked its thread)", () => {
    const s = lateRun(0.2, quiet);
    expect(s.verdict).toBe('saturated');
    expect(s.cause).toContain('the machine was not busy');
  });

  it("running out of descriptors is the generator's fault even on a busy machine", () => {
    const s = judgeSaturation({
      eventLoopP99Ms: 1,
      eventLoopMaxMs: 1,
      cpuCores: 0.1,
      cpuCoresPeak: 0.1,
      threadCpuCoresPeak: 0.1,
      machine: { ...quiet, loadAvg1: 9 },
      sendLagP99Ms: 0,
      scheduled: 0,
      sent: 0,
      outcomes: { 'error.EMFILE': 3 },
    });
    expect(s.verdict).toBe('saturated');
  });

  it("reads this thread's own CPU time on Linux", () => {
    const before = threadCpuMs();
    if (before === undefined) return expect(process.platform).not.toBe('linux');
    const until = performance.now() + 150;
    while (performance.now() < until) Math.sqrt(Math.random());
    // 150 ms of busy loop; tick resolution is 10 ms and a busy machine may preempt us.
    expect(threadCpuMs()! - before).toBeGreaterThanOrEqual(20);
  });
});
