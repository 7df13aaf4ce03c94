import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { bucketQuantile, StatusSeries, type StatusTotals } from '../../src/monitoring/live-stats.ts';
import { parsePromText } from '../../src/monitoring/status/prom-text.ts';
import { maskClientKey, statusTotalsFrom } from '../../src/monitoring/status/sampler.ts';
import { HANDSHAKE_DURATION_BUCKETS_SEC } from '../../src/telemetry/names.ts';

const BOUNDS = [0.001, 0.01, 0.1];

function totals(over: Partial<StatusTotals> = {}): StatusTotals {
  return {
    active: {},
    accepted: 0,
    rejected: {},
    dryRun: 0,
    closed: 0,
    messagesIn: 0,
    messagesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    rateLimitedDrop: 0,
    rateLimitedClose: 0,
    upstreamErrors: 0,
    handshakeBuckets: [0, 0, 0, 0],
    ...over,
  };
}

describe('bucketQuantile (histogram_quantile semantics)', () => {
  it('interpolates inside the bucket that holds the rank', () => {
    // 10 in (0, 1 ms], 10 in (1, 10 ms]: the median is the top of the first bucket, p75 half-way into the second.
    expect(bucketQuantile(0.5, BOUNDS, [10, 10, 0, 0])).toBeCloseTo(0.001);
    expect(bucketQuantile(0.75, BOUNDS, [10, 10, 0, 0])).toBeCloseTo(0.0055);
  });
  it('answers the largest finite bound for the +Inf bucket, and null with no data', () => {
    expect(bucketQuantile(0.99, BOUNDS, [0, 0, 0, 5])).toBe(0.1);
    expect(bucketQuantile(0.5, BOUNDS, [0, 0, 0, 0])).toBeNull();
  });
});

describe('StatusSeries', () => {
  it('turns cumulative totals into per-interval counts, with dt, and drops what passed the capacity', () => {
    const s = new StatusSeries({ capacity: 3, latencyWindowSec: 10, latencyBounds: BOUNDS });
    s.record(1000, totals({ accepted: 5, rejected: { auth: 2 } }));
    expect(s.since(0)).toEqual([]); // the first read is the baseline
    s.record(2000, totals({ accepted: 8, rejected: { auth: 2, conn_limit: 4 }, messagesIn: 100, active: { '/ws/': 3 } }));
    s.record(3500, totals({ accepted: 8, rejected: { auth: 3, conn_limit: 4 }, messagesIn: 130, active: { '/ws/': 1 } }));
    const [a, b] = s.since(0);
    expect(a).toMatchObject({ t: 2000, dt_ms: 1000, accepted: 3, rejected: { conn_limit: 4 }, messages_in: 100, active: { '/ws/': 3 } });
    expect(b).toMatchObject({ t: 3500, dt_ms: 1500, accepted: 0, rejected: { auth: 1 }, messages_in: 30, active: { '/ws/': 1 } });
    expect(s.since(2000).map((x) => x.t)).toEqual([3500]);
    s.record(4500, totals());
    s.record(5500, totals());
    expect(s.since(0).map((x) => x.t)).toEqual([3500, 4500, 5500]);
  });

  it('computes latency over the trailing window only (a sliding histogram)', () => {
    const s = new StatusSeries({ capacity: 100, latencyWindowSec: 2, latencyBounds: BOUNDS });
    s.record(0, totals({ handshakeBuckets: [0, 0, 0, 0] }));
    s.record(1000, totals({ handshakeBuckets: [0, 0, 100, 0] })); // 100 slow handshakes (10–100 ms)
    expect(s.latency()).toMatchObject({ count: 100, p50_ms: 55 });
    s.record(2000, totals({ handshakeBuckets: [100, 0, 100, 0] })); // then 100 fast ones
    s.record(3000, totals({ handshakeBuckets: [200, 0, 100, 0] }));
    // Window (1 s, 3 s]: only the 200 fast ones; the slow burst at 1 s has slid out.
    expect(s.latency()).toMatchObject({ window_sec: 2, count: 200, p99_ms: 0.99 });
    expect(s.since(2500)[0]).toMatchObject({ handshake_p99_ms: 0.99 });
  });
});

describe('the sampler reads the /metrics exposition', () => {
  it('sums routes, separates enforced from dry-run, directions, actions, and accepted-handshake buckets', () => {
    const le = HANDSHAKE_DURATION_BUCKETS_SEC;
    const text = [
      '# TYPE wsguard_connections_active gauge',
      'wsguard_connections_active{route="/a/"} 2',
      'wsguard_connections_active{route="/b/"} 3',
      'wsguard_connections_accepted_total{route="/a/"} 7',
      'wsguard_connections_accepted_total{route="/b/"} 1',
      'wsguard_connections_rejected_total{route="/a/",reason="auth",decision="enforced"} 4',
      'wsguard_connections_rejected_total{route="/b/",reason="auth",decision="enforced"} 1',
      'wsguard_connections_rejected_total{route="/a/",reason="origin",decision="dry_run"} 9',
      'wsguard_messages_total{route="/a/",direction="client_to_upstream"} 10',
      'wsguard_messages_total{route="/a/",direction="upstream_to_client"} 12',
      'wsguard_messages_rate_limited_total{route="/a/",action="drop"} 3',
      `wsguard_handshake_duration_seconds_bucket{route="/a/",outcome="accepted",le="${le[0]}"} 2`,
      `wsguard_handshake_duration_seconds_bucket{route="/a/",outcome="accepted",le="${le[1]}"} 5`,
      ...le.slice(2).map((b) => `wsguard_handshake_duration_seconds_bucket{route="/a/",outcome="accepted",le="${b}"} 5`),
      'wsguard_handshake_duration_seconds_bucket{route="/a/",outcome="accepted",le="+Inf"} 6',
      'wsguard_handshake_duration_seconds_bucket{route="/a/",outcome="auth",le="+Inf"} 99',
    ].join('\n');
    const t = statusTotalsFrom(parsePromText(text));
    expect(t).toMatchObject({
      active: { '/a/': 2, '/b/': 3 },
      accepted: 8,
      rejected: { auth: 5 },
      dryRun: 9,
      messagesIn: 10,
      messagesOut: 12,
      rateLimitedDrop: 3,
      rateLimitedClose: 0,
    });
    expect(t.handshakeBuckets.slice(0, 2)).toEqual([2, 3]);
    expect(t.handshakeBuckets.at(-1)).toBe(1);
    expect(t.handshakeBuckets.reduce((a, b) => a + b)).toBe(6);
  });

  it('reads escaped label values', () => {
    const f = parsePromText('x_total{route="/a\\"b\\\\c/"} 1\n');
    expect(f.get('x_total')![0]!.labels.route).toBe('/a"b\\c/');
  });
});

describe('what an unauthenticated viewer may see', () => {
  it('shortens client keys to a /24 or a /32', () => {
    expect(maskClientKey('198.51.100.9')).toBe('198.51.100.0/24');
    expect(maskClientKey('2001:db8:1:2::/64')).toBe('2001:db8::/32');
    expect(maskClientKey('something-else')).toBe('(hidden)');
  });
});

describe('telemetry.monitoring.statusPage', () => {
  it("defaults to 'token' and refuses 'local' on a non-loopback admin listener, naming the option", () => {
    expect(parseConfig({}).telemetry.monitoring.statusPage).toBe('token');
    expect(() => parseConfig({ telemetry: { admin: { host: '0.0.0.0' }, monitoring: { statusPage: 'local' } } })).toThrow(
      /telemetry\.monitoring\.statusPage: 'local'.*loopback.*0\.0\.0\.0/,
    );
    for (const host of ['127.0.0.1', '::1', 'localhost', '127.0.0.2']) {
      expect(parseConfig({ telemetry: { admin: { host }, monitoring: { statusPage: 'local' } } }).telemetry.monitoring.statusPage).toBe(
        'local',
      );
    }
  });
});
