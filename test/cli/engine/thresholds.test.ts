import { describe, expect, it } from 'vitest';
import { isCliError } from '../../../cli/cli-error.ts';
import { decideVerdict, evaluateThresholds, parseThreshold } from '../../../cli/engine/thresholds.ts';
import type { RunResult } from '../../../cli/engine/result.ts';
import { summarize, createHistogram, recordMs } from '../../../cli/engine/histogram.ts';

function result(over: Partial<RunResult> = {}): RunResult {
  const h = createHistogram();
  for (let i = 1; i <= 100; i++) recordMs(h, i);
  const empty = summarize(createHistogram());
  return {
    kind: 'flood',
    version: 1,
    target: 'ws://127.0.0.1:1/',
    startedAt: '',
    durationMs: 1000,
    config: {},
    shards: 1,
    connections: { attempts: 10, opened: 8, peakOpen: 8 },
    outcomes: { completed: 8, 'rejected.429': 2 },
    outcomeDetails: {},
    messages: { sent: 100, received: 100, lost: 0, unmatched: 0, bytesOut: 0, bytesIn: 0, ratePerSecOut: 100, ratePerSecIn: 100 },
    latency: { rtt: summarize(h), rttUncorrected: empty, connect: empty },
    saturation: {
      verdict: 'ok',
      reasons: [],
      eventLoopP99Ms: 1,
      eventLoopMaxMs: 1,
      cpuCores: 0.1,
      cpuCoresPeak: 0.1,
      sendLagP99Ms: 1,
      scheduled: 100,
      sent: 100,
      selfInflicted: {},
    },
    preflight: [],
    series: [],
    ...over,
  };
}

describe('thresholds', () => {
  it('parses expressions and rejects unknown metrics as usage errors', () => {
    expect(parseThreshold('p99_rtt_ms < 50')).toMatchObject({ metric: 'p99_rtt_ms', op: '<', target: 50 });
    expect(parseThreshold('rejected.429>=5')).toMatchObject({ metric: 'rejected.429', op: '>=', target: 5 });
    expect(parseThreshold('error_rate<=0.01')).toMatchObject({ target: 0.01 });
    for (const bad of ['p99_rtt_ms', 'nope<1', 'p99_rtt_ms<<1']) {
      let err: unknown;
      try {
        parseThreshold(bad);
      } catch (e) {
        err = e;
      }
      expect(isCliError(err) && err.exitCode).toBe(3);
    }
  });

  it('evaluates against the result; absent outcomes read 0', () => {
    const r = result();
    const res = evaluateThresholds(r, ['p99_rtt_ms<=100', 'rejected.429==2', 'closed.4100==0', 'error_rate<0.1'].map(parseThreshold));
    expect(res.map((t) => t.ok)).toEqual([true, true, true, false]);
    expect(res[3]!.actual).toBeCloseTo(0.2);
  });

  it('exit codes: 0 passed, 1 threshold failed, 2 saturated wins over thresholds', () => {
    const r = result();
    expect(decideVerdict(r, evaluateThresholds(r, [parseThreshold('opened==8')])).exitCode).toBe(0);
    const failed = decideVerdict(r, evaluateThresholds(r, [parseThreshold('opened==9')]));
    expect(failed).toMatchObject({ exitCode: 1, status: 'threshold_failed' });
    expect(failed.reasons[0]).toContain('opened==9 (actual 8)');
    const sat = result({ saturation: { ...r.saturation, verdict: 'saturated', reasons: ['cpu'] } });
    expect(decideVerdict(sat, evaluateThresholds(sat, [parseThreshold('opened==9')])).exitCode).toBe(2);
    const killed = result({ aborted: { reason: 'kill switch: too many', atSec: 2 } });
    expect(decideVerdict(killed, []).exitCode).toBe(1);
  });

  it('a threshold over a metric with no samples fails and says "no data"', () => {
    const empty = summarize(createHistogram());
    const r = result({
      latency: { rtt: empty, rttUncorrected: empty, connect: empty },
      messages: { ...result().messages, sent: 0, received: 0 },
    });
    const res = evaluateThresholds(r, ['p99_rtt_ms<50', 'p50_connect_ms<50', 'messages_sent==0'].map(parseThreshold));
    expect(res.map((t) => [t.ok, t.actual])).toEqual([
      [false, null],
      [false, null],
      [true, 0],
    ]);
    const v = decideVerdict(r, res);
    expect(v.exitCode).toBe(1);
    expect(v.reasons).toContain('threshold failed: p99_rtt_ms<50 (no data: nothing was measured)');
  });

  it('a storm that held nothing at the drop is a failed run, unless rejections were asked for', () => {
    const storm = {
      held: 0,
      dropped: 0,
      dropMode: 'reset' as const,
      dropAtSec: 1,
      policy: 'immediate',
      recover: summarize(createHistogram()),
      timeToPercentMs: { '100': 0 },
      recovered: 0,
      gaveUp: 0,
      attemptsPerClient: { mean: 0, max: 0, histogram: {} },
      rejectionsDuringRecovery: {},
      delaysMs: summarize(createHistogram()),
      retryAfterHonoured: 0,
    };
    // Connections opened and closed again before the drop: nothing was there to drop.
    const r = result({ kind: 'storm', storm, connections: { attempts: 1681, opened: 4, peakOpen: 1 } });
    const v = decideVerdict(r, []);
    expect(v).toMatchObject({ exitCode: 1, status: 'failed' });
    expect(v.reasons[0]).toContain('no connection was held when the drop came');
    expect(decideVerdict(r, evaluateThresholds(r, [parseThreshold('rejected>=0')])).exitCode).toBe(0);
  });
});
