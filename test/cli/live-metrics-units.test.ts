import { describe, expect, it } from 'vitest';
import { ROUND_TRIP_BUCKETS_SEC } from '../../cli/engine/live-metrics-names.ts';
import { addTotals, BucketRecorder, emptyTotals } from '../../cli/engine/live-totals.ts';
import { Recorder } from '../../cli/engine/recorder.ts';
import type { SeriesPoint } from '../../cli/engine/result.ts';
import { liveMetricsFromArgs, startLiveMetrics } from '../../cli/live-metrics.ts';
import { progressPrinter } from '../../cli/load-options.ts';
import { runIdFromArgs } from '../../cli/run-identity.ts';

const point = (t: number): SeriesPoint => ({
  t,
  open: 2,
  opening: 0,
  attempts: 0,
  opened: 0,
  outcomes: {},
  sent: 5,
  received: 5,
  bytesOut: 320,
  bytesIn: 320,
  rttP50Ms: 1,
  rttP99Ms: 2,
  rttCount: 5,
  cpuCores: 0.1,
});

describe('progress off a terminal', () => {
  it('prints one line every 10 s of run time, on the samples’ own clock', () => {
    const lines: string[] = [];
    const print = progressPrinter(false, 10, (s) => lines.push(s))!;
    for (let t = 1; t <= 35; t++) print(point(t));
    expect(lines.map((l) => /^t=(\d+)s /.exec(l)?.[1])).toEqual(['10', '20', '30']);
    expect(lines.every((l) => l.endsWith('\n') && !l.includes('\r'))).toBe(true);
  });

  it('keeps the pace when a busy generator skips a second', () => {
    const lines: string[] = [];
    const print = progressPrinter(false, 10, (s) => lines.push(s))!;
    for (const t of [8, 9, 11, 12, 19, 21]) print(point(t));
    expect(lines.map((l) => /^t=(\d+)s /.exec(l)?.[1])).toEqual(['11', '21']);
  });

  it('prints nothing with an interval of 0, and redraws one line on a terminal', () => {
    expect(progressPrinter(false, 0, () => undefined)).toBeUndefined();
    const out: string[] = [];
    progressPrinter(true, 10, (s) => out.push(s))!(point(1));
    expect(out[0]!.startsWith(`\r\u001b[Kt=1s `)).toBe(true);
  });
});

describe('run identity and the live-metrics flags', () => {
  it('gives shards the same derived run id whatever metrics port or OTLP endpoint each uses', () => {
    const shard = (i: number, port: number) => ({
      url: 'ws://t/',
      connections: 10,
      shard: `${i}/2`,
      'metrics-port': port,
      'metrics-host': '0.0.0.0',
      'otlp-endpoint': `http://collector-${i}:4318`,
      'otlp-interval': '10s',
    });
    expect(runIdFromArgs(shard(1, 9465), true)).toBe(runIdFromArgs(shard(2, 9466), true));
  });
});

describe('live-metrics options', () => {
  const run = { runId: 'r1' };
  const base = { metricsHost: '127.0.0.1', otlpInterval: '10s' };
  it('names the option in every refusal', () => {
    expect(() => liveMetricsFromArgs({ ...base, metricsPort: 70_000 }, run)).toThrow(/--metrics-port 70000/);
    expect(() => liveMetricsFromArgs({ ...base, metricsPort: 1.5 }, run)).toThrow(/--metrics-port/);
    expect(() => liveMetricsFromArgs({ ...base, otlpEndpoint: 'collector:4318' }, run)).toThrow(/--otlp-endpoint collector:4318/);
    expect(() => liveMetricsFromArgs({ ...base, otlpInterval: '0s' }, run)).toThrow(/--otlp-interval/);
  });

  it('labels a whole run shard 1/1 and a shard i/n', () => {
    expect(liveMetricsFromArgs(base, run).shard).toBe('1/1');
    expect(liveMetricsFromArgs(base, { runId: 'r1', shard: { index: 2, count: 4 } }).shard).toBe('2/4');
  });

  it('starts nothing without a port, an endpoint or the OTLP environment', async () => {
    expect(await startLiveMetrics({ ...liveMetricsFromArgs(base, run), env: {} })).toBeUndefined();
    expect(
      await startLiveMetrics({
        ...liveMetricsFromArgs(base, run),
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' },
      }),
    ).toBeUndefined();
  });
});

describe('live totals', () => {
  it('counts a value equal to a bound in that bound’s bucket (Prometheus le)', () => {
    const b = new BucketRecorder(ROUND_TRIP_BUCKETS_SEC);
    b.recordMs(1); // exactly 0.001 s
    b.recordMs(1.0001);
    b.recordMs(60_000); // above the last bound
    const s = b.snapshot();
    const i = ROUND_TRIP_BUCKETS_SEC.indexOf(0.001);
    expect(s.counts[i]).toBe(1);
    expect(s.counts[i + 1]).toBe(1);
    expect(s.counts.at(-1)).toBe(1);
    expect(s.count).toBe(3);
    expect(s.sum).toBeCloseTo(60.0020001, 6);
  });

  it('adds worker shares field by field', () => {
    const a = { ...emptyTotals(), sent: 3, open: 1, outcomes: { completed: 2 } };
    const b = { ...emptyTotals(), sent: 4, open: 2, outcomes: { completed: 1, 'rejected.429': 5 } };
    a.rtt.counts[0] = 2;
    a.rtt.count = 2;
    b.rtt.counts[0] = 1;
    b.rtt.count = 1;
    const t = addTotals([a, b]);
    expect(t).toMatchObject({ sent: 7, open: 3, outcomes: { completed: 3, 'rejected.429': 5 } });
    expect(t.rtt.counts[0]).toBe(3);
    expect(t.rtt.count).toBe(3);
  });

  it('the recorder hands out totals each sample only when a live exporter listens', () => {
    const seen: number[] = [];
    const rec = new Recorder(undefined, (t) => seen.push(t.rtt.count));
    rec.attempt();
    rec.openedSocket(2);
    rec.roundTrip(1, 1);
    rec.sample(rec.t0 + 1000);
    rec.monitor.stop();
    expect(seen).toEqual([1]);
    expect(rec.liveTotals().connect.count).toBe(1);
    const quiet = new Recorder();
    quiet.roundTrip(1, 1);
    quiet.monitor.stop();
    expect(quiet.liveTotals().rtt.count).toBe(0);
  });
});
