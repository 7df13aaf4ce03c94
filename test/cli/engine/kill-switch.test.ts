import { describe, expect, it } from 'vitest';
import { killSwitchReason } from '../../../cli/engine/kill-switch.ts';
import type { SeriesPoint } from '../../../cli/engine/result.ts';

function point(t: number, opened: number, outcomes: Record<string, number>): SeriesPoint {
  return {
    t,
    open: 0,
    opening: 0,
    attempts: 0,
    opened,
    outcomes,
    sent: 0,
    received: 0,
    bytesOut: 0,
    bytesIn: 0,
    rttP50Ms: 0,
    rttP99Ms: 0,
    cpuCores: 0,
  };
}

describe('killSwitchReason', () => {
  const k = { errorRate: 0.5, windowSec: 2, minAttempts: 10 };

  it('fires when failures pass the rate over the window', () => {
    const s = [point(1, 100, {}), point(2, 2, { 'rejected.503': 8 }), point(3, 0, { 'error.ECONNRESET': 5 })];
    expect(killSwitchReason(s, k)).toMatch(/^kill switch: 13 failures in 15 connection events over 2s \(86\.7% > 50\.0%\)/);
  });

  it('counts opens as events and ignores clean ends and too few events', () => {
    expect(killSwitchReason([point(1, 50, { 'rejected.429': 10, completed: 40 })], k)).toBeUndefined();
    expect(killSwitchReason([point(1, 0, { 'rejected.429': 9 })], k)).toBeUndefined();
    expect(killSwitchReason([point(1, 0, { 'closed.1001': 20 })], k)).toBeUndefined();
  });
});
