import { describe, expect, it } from 'vitest';
import { createHistogram, recordMs, summarize } from '../../../cli/engine/histogram.ts';
import { mergeResults } from '../../../cli/engine/merge.ts';
import type { RunResult } from '../../../cli/engine/result.ts';
import type { StormSection } from '../../../cli/engine/storm-types.ts';

function stormResult(recoverMs: number[], dropped: number): RunResult {
  const h = createHistogram();
  for (const ms of recoverMs) recordMs(h, ms);
  const empty = summarize(createHistogram());
  const storm: StormSection = {
    held: dropped,
    dropped,
    dropMode: 'reset',
    dropAtSec: 1,
    policy: 'fixed 100 ms',
    recover: summarize(h),
    timeToPercentMs: { '50': null, '100': null },
    recovered: recoverMs.length,
    gaveUp: dropped - recoverMs.length,
    attemptsPerClient: { mean: 1, max: 1, histogram: { '1': dropped } },
    rejectionsDuringRecovery: { 'rejected.429': 1 },
    delaysMs: empty,
    retryAfterHonoured: 0,
  };
  return {
    kind: 'storm',
    version: 1,
    target: 'ws://127.0.0.1:1/',
    startedAt: '2026-01-01T00:00:00.000Z',
    durationMs: 2000,
    config: { durationSec: 2 },
    shards: 1,
    connections: { attempts: dropped * 2, opened: dropped * 2, peakOpen: dropped },
    outcomes: { 'dropped.reset': dropped },
    outcomeDetails: {},
    messages: { sent: 0, received: 0, lost: 0, unmatched: 0, bytesOut: 0, bytesIn: 0, ratePerSecOut: 0, ratePerSecIn: 0 },
    latency: { rtt: empty, rttUncorrected: empty, connect: empty },
    saturation: {
      verdict: 'ok',
      reasons: [],
      eventLoopP99Ms: 1,
      eventLoopMaxMs: 1,
      cpuCores: 0.5,
      cpuCoresPeak: 0.5,
      sendLagP99Ms: 0,
      scheduled: 0,
      sent: 0,
      selfInflicted: {},
    },
    preflight: [],
    series: [],
    storm,
  };
}

describe('mergeResults (storm shards)', () => {
  it('recomputes time-to-percent from the merged recovery histogram', () => {
    const m = mergeResults([stormResult([100, 200, 300, 400], 4), stormResult([500, 600, 700], 4)]);
    const s = m.storm!;
    expect(s).toMatchObject({ dropped: 8, recovered: 7, gaveUp: 1, rejectionsDuringRecovery: { 'rejected.429': 2 } });
    // 4 of 8 back: the 4th fastest recovery; 8 of 8 never happened.
    expect(s.timeToPercentMs['50']).toBe(400);
    expect(s.timeToPercentMs['100']).toBeNull();
    expect(m.outcomes).toEqual({ 'dropped.reset': 8 });
    expect(m.saturation.cpuCores).toBe(1);
  });

  it('refuses to merge a flood with a storm', () => {
    const flood = { ...stormResult([], 1), kind: 'flood' as const, storm: undefined };
    expect(() => mergeResults([flood, stormResult([], 1)])).toThrow(/cannot merge/);
  });
});
