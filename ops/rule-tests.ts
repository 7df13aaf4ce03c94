/**
 * promtool unit tests for every alert (alerts/tests/wsguard.test.yml): a firing case, a quiet
 * baseline or a value just under the threshold, and a blip shorter than `for:`. Series are written
 * from the metric constants, so they follow a rename like the rules do.
 */
import { CLIENT_TO_UPSTREAM, ENFORCED, eq, histogramBucket, histogramCount, JOB, L, M, R } from './promql.ts';
import { alertRules, PRODUCTION, runbookUrl, THRESHOLDS } from './rules.ts';

const STEP_SEC = 15;
const INSTANCE = 'wsguard-0:9464';
const BASE = [eq('job', JOB), eq('instance', INSTANCE)];
const ROUTE = eq(L.route, '/ws/');

function series(metric: string, ...labels: string[]): string {
  return `${metric}{${[...BASE, ...labels].join(',')}}`;
}

/** A counter rising at each [perSecond, minutes] segment in turn. */
function counter(...segments: Array<[number, number]>): string {
  let v = 0;
  const parts: string[] = [];
  let first = true;
  for (const [perSec, minutes] of segments) {
    const steps = (minutes * 60) / STEP_SEC;
    const inc = perSec * STEP_SEC;
    const start = first ? v : v + inc;
    const n = first ? steps : steps - 1;
    parts.push(`${start}+${inc}x${n}`);
    v = start + inc * n;
    first = false;
  }
  return parts.join(' ');
}

/** A gauge holding each [value, minutes] segment in turn. */
function gauge(...segments: Array<[number, number]>): string {
  return segments.map(([v, minutes], i) => `${v}+0x${(minutes * 60) / STEP_SEC - (i === 0 ? 0 : 1)}`).join(' ');
}

interface Case {
  name: string;
  input: Array<[string, string]>;
  evalMin: number;
  /** a condition that holds at evalMin but for less than `for:` (test/ops/promtool.test.ts proves it holds) */
  blip?: boolean;
  /** labels of the expected alert beyond alertname/severity, and the description's value; none: not firing */
  fires?: { labels: Record<string, string>; value: string; description?: string };
}

const accepted = (perSec: number, minutes: number): [string, string] => [series(M.connectionsAccepted, ROUTE), counter([perSec, minutes])];
const handshakes = (perSec: number, minutes: number): [string, string] => [
  series(histogramCount(M.handshakeDuration), ROUTE, eq(L.outcome, 'accepted')),
  counter([perSec, minutes]),
];
const rejected = (reason: string, ...segments: Array<[number, number]>): [string, string] => [
  series(M.connectionsRejected, ROUTE, eq(L.reason, reason), eq(L.decision, ENFORCED)),
  counter(...segments),
];
const JOB_ONLY = { job: JOB };
const PER_INSTANCE = { job: JOB, instance: INSTANCE };

const CASES: Record<string, Case[]> = {
  WsguardConnectionSpike: [
    {
      name: 'a burst to 15x the hour before fires',
      input: [[series(M.connectionsAccepted, ROUTE), counter([2, 80], [30, 20])]],
      evalMin: 90,
      fires: { labels: JOB_ONLY, value: '30' },
    },
    {
      name: 'just under the factor (2.9x) does not fire',
      input: [[series(M.connectionsAccepted, ROUTE), counter([4, 80], [11.6, 20])]],
      evalMin: 90,
    },
    {
      name: 'a quiet service far above its baseline but under the floor does not fire',
      input: [[series(M.connectionsAccepted, ROUTE), counter([0.1, 80], [9, 20])]],
      evalMin: 90,
    },
    {
      name: 'a 2-minute blip (shorter than for) does not fire',
      input: [[series(M.connectionsAccepted, ROUTE), counter([2, 80], [30, 2], [2, 18])]],
      evalMin: 82,
      blip: true,
    },
  ],
  WsguardRateLimitViolationsHigh: [
    {
      name: 'messages dropped at 3/s, 12% of traffic, fires',
      input: [
        accepted(1, 30),
        handshakes(1, 30),
        [series(M.messages, ROUTE, eq(L.direction, CLIENT_TO_UPSTREAM)), counter([20, 30])],
        [series(M.messagesRateLimited, ROUTE, eq(L.action, 'drop')), counter([3, 30])],
      ],
      evalMin: 25,
      fires: { labels: JOB_ONLY, value: '3' },
    },
    {
      name: '429s (conn_limit) at 2/s fire',
      input: [accepted(1, 30), handshakes(3, 30), rejected('conn_limit', [2, 30])],
      evalMin: 25,
      fires: { labels: JOB_ONLY, value: '2' },
    },
    {
      name: 'just under the rate (0.9/s) does not fire',
      input: [
        accepted(1, 30),
        handshakes(1, 30),
        [series(M.messages, ROUTE, eq(L.direction, CLIENT_TO_UPSTREAM)), counter([5, 30])],
        [series(M.messagesRateLimited, ROUTE, eq(L.action, 'drop')), counter([0.9, 30])],
      ],
      evalMin: 25,
    },
    {
      name: 'a small share of heavy traffic (2/s of 100/s) does not fire',
      input: [
        accepted(1, 30),
        handshakes(1, 30),
        [series(M.messages, ROUTE, eq(L.direction, CLIENT_TO_UPSTREAM)), counter([100, 30])],
        [series(M.messagesRateLimited, ROUTE, eq(L.action, 'close')), counter([2, 30])],
      ],
      evalMin: 25,
    },
    {
      name: 'a 2-minute blip does not fire',
      input: [
        accepted(1, 30),
        handshakes(1, 30),
        [series(M.messages, ROUTE, eq(L.direction, CLIENT_TO_UPSTREAM)), counter([20, 30])],
        [series(M.messagesRateLimited, ROUTE, eq(L.action, 'drop')), counter([0, 10], [6, 2], [0, 18])],
      ],
      evalMin: 14,
      blip: true,
    },
  ],
  WsguardReconnectStorm: [
    {
      name: 'attempt-limit 429s and short-lived connections together fire',
      input: [
        accepted(3, 20),
        rejected('attempt_limit', [2, 20]),
        [series(histogramBucket(M.connectionDuration), ROUTE, eq('le', THRESHOLDS.shortLivedSec)), counter([3, 20])],
      ],
      evalMin: 15,
      fires: { labels: JOB_ONLY, value: '2' },
    },
    {
      name: '429s without short-lived connections do not fire',
      input: [
        accepted(3, 20),
        rejected('attempt_limit', [2, 20]),
        [series(histogramBucket(M.connectionDuration), ROUTE, eq('le', THRESHOLDS.shortLivedSec)), counter([0.5, 20])],
      ],
      evalMin: 15,
    },
    {
      name: 'just under the 429 rate (0.4/s) does not fire',
      input: [
        accepted(3, 20),
        rejected('attempt_limit', [0.4, 20]),
        [series(histogramBucket(M.connectionDuration), ROUTE, eq('le', THRESHOLDS.shortLivedSec)), counter([3, 20])],
      ],
      evalMin: 15,
    },
    {
      name: 'a 1-minute blip does not fire',
      input: [
        accepted(3, 20),
        rejected('attempt_limit', [0, 5], [4, 1], [0, 14]),
        [series(histogramBucket(M.connectionDuration), ROUTE, eq('le', THRESHOLDS.shortLivedSec)), counter([3, 20])],
      ],
      evalMin: 10,
      blip: true,
    },
  ],
  WsguardAuthFailureSpike: [
    {
      name: '2/s of 5/s handshakes refused for auth fires',
      input: [accepted(3, 30), handshakes(5, 30), rejected('auth', [2, 30])],
      evalMin: 25,
      fires: { labels: JOB_ONLY, value: '2' },
    },
    {
      name: 'just under the rate (0.9/s) does not fire',
      input: [accepted(1, 30), handshakes(2, 30), rejected('auth', [0.9, 30])],
      evalMin: 25,
    },
    {
      name: 'a small share (2/s of 20/s) does not fire',
      input: [accepted(18, 30), handshakes(20, 30), rejected('auth', [2, 30])],
      evalMin: 25,
    },
    {
      name: 'a 2-minute blip does not fire',
      input: [accepted(3, 30), handshakes(5, 30), rejected('auth', [0, 10], [4, 2], [0, 18])],
      evalMin: 14,
      blip: true,
    },
  ],
  WsguardOriginRejectionsSpike: [
    {
      name: '2/s of 5/s handshakes refused for origin fires',
      input: [accepted(3, 30), handshakes(5, 30), rejected('origin', [2, 30])],
      evalMin: 25,
      fires: { labels: JOB_ONLY, value: '2' },
    },
    {
      name: 'just under the rate (0.9/s) does not fire',
      input: [accepted(1, 30), handshakes(2, 30), rejected('origin', [0.9, 30])],
      evalMin: 25,
    },
    {
      name: 'a 2-minute blip does not fire',
      input: [accepted(3, 30), handshakes(5, 30), rejected('origin', [0, 10], [4, 2], [0, 18])],
      evalMin: 14,
      blip: true,
    },
  ],
  WsguardUpstreamUnavailable: [
    {
      name: '502s at 1/s of 5/s handshakes fire',
      input: [accepted(4, 20), handshakes(5, 20), rejected('upstream_unavailable', [1, 20])],
      evalMin: 15,
      fires: { labels: JOB_ONLY, value: '1' },
    },
    {
      name: '1014 closes at 1/s of 2/s closes fire',
      input: [
        accepted(2, 20),
        handshakes(2, 20),
        [series(M.connectionsClosed, ROUTE, eq(L.code, 1014), eq(L.initiator, 'upstream')), counter([1, 20])],
        [series(M.connectionsClosed, ROUTE, eq(L.code, 1000), eq(L.initiator, 'client')), counter([1, 20])],
      ],
      evalMin: 15,
      fires: { labels: JOB_ONLY, value: '1' },
    },
    {
      name: 'just under the rate (0.15/s) does not fire',
      input: [accepted(0.5, 20), handshakes(0.65, 20), rejected('upstream_timeout', [0.15, 20])],
      evalMin: 15,
    },
    {
      name: 'a 30-second blip does not fire',
      input: [accepted(4, 20), handshakes(5, 20), rejected('upstream_unavailable', [0, 5], [10, 0.5], [0, 14.5])],
      evalMin: 9,
      blip: true,
    },
  ],
  WsguardBackpressureCloses: [
    {
      name: '0.5 closes/s for 30 minutes fire',
      input: [
        accepted(1, 30),
        [series(M.backpressure, ROUTE, eq(L.direction, 'upstream_to_client'), eq(L.action, 'close')), counter([0.5, 30])],
      ],
      evalMin: 25,
      fires: { labels: JOB_ONLY, value: '500m' },
    },
    {
      name: 'just under (0.09/s) does not fire',
      input: [
        accepted(1, 30),
        [series(M.backpressure, ROUTE, eq(L.direction, 'upstream_to_client'), eq(L.action, 'close')), counter([0.09, 30])],
      ],
      evalMin: 25,
    },
    {
      name: 'a 2-minute blip does not fire',
      input: [
        accepted(1, 30),
        [series(M.backpressure, ROUTE, eq(L.direction, 'upstream_to_client'), eq(L.action, 'close')), counter([0, 5], [1, 2], [0, 23])],
      ],
      evalMin: 11,
      blip: true,
    },
  ],
  WsguardDown: [
    {
      name: 'up == 0 fires',
      input: [['up{job="wsguard",instance="wsguard-0:9464"}', gauge([0, 10])]],
      evalMin: 5,
      fires: { labels: PER_INSTANCE, value: '0', description: `Prometheus cannot scrape ${INSTANCE} (up = 0).` },
    },
    {
      name: 'no wsguard target at all fires',
      input: [['up{job="other",instance="x:1"}', gauge([1, 10])]],
      evalMin: 5,
      fires: { labels: JOB_ONLY, value: '1', description: `No target of job ${JOB} exists (absent(up) = 1).` },
    },
    { name: 'up == 1 does not fire', input: [['up{job="wsguard",instance="wsguard-0:9464"}', gauge([1, 10])]], evalMin: 5 },
    {
      name: 'a 1-minute scrape failure does not fire',
      input: [['up{job="wsguard",instance="wsguard-0:9464"}', gauge([1, 2], [0, 1], [1, 7])]],
      evalMin: 3,
      blip: true,
    },
  ],
  WsguardNotReady: [
    {
      name: '503 overloaded for 10 minutes fires',
      input: [accepted(1, 20), rejected('overloaded', [1, 20])],
      evalMin: 10,
      fires: { labels: PER_INSTANCE, value: '1' },
    },
    {
      name: 'file descriptors 80% used fire',
      input: [accepted(1, 20), [series(M.openFds), gauge([800, 20])], [series(M.fdLimit), gauge([1000, 20])]],
      evalMin: 10,
      fires: { labels: PER_INSTANCE, value: '800m' },
    },
    {
      name: 'fds 70% used and no 503s do not fire',
      input: [accepted(1, 20), [series(M.openFds), gauge([700, 20])], [series(M.fdLimit), gauge([1000, 20])]],
      evalMin: 10,
    },
    {
      name: 'a 1-minute drain does not fire',
      input: [accepted(1, 20), rejected('draining', [0, 5], [2, 1], [0, 14])],
      evalMin: 6,
      blip: true,
    },
  ],
  WsguardEventLoopLagHigh: [
    {
      name: 'p99 200 ms for 10 minutes fires',
      input: [[series(R.eventLoopDelayP99), gauge([0.2, 10])]],
      evalMin: 8,
      fires: { labels: PER_INSTANCE, value: '200ms' },
    },
    { name: 'p99 90 ms does not fire', input: [[series(R.eventLoopDelayP99), gauge([0.09, 10])]], evalMin: 8 },
    {
      name: 'a 2-minute stall does not fire',
      input: [[series(R.eventLoopDelayP99), gauge([0.01, 3], [0.5, 2], [0.01, 5])]],
      evalMin: 5,
      blip: true,
    },
  ],
  WsguardLimitStoreDegraded: [
    {
      name: 'degraded for 5 minutes fires',
      input: [[series(M.limitStoreDegraded, eq(L.store, 'redis')), gauge([1, 5])]],
      evalMin: 4,
      fires: { labels: { ...PER_INSTANCE, store: 'redis' }, value: '1' },
    },
    {
      name: 'store errors at 2/s fire',
      input: [
        [series(M.limitStoreDegraded, eq(L.store, 'redis')), gauge([0, 10])],
        [series(M.limitStoreErrors, eq(L.store, 'redis')), counter([2, 10])],
      ],
      evalMin: 8,
      fires: { labels: { ...PER_INSTANCE, store: 'redis' }, value: '2' },
    },
    { name: 'healthy does not fire', input: [[series(M.limitStoreDegraded, eq(L.store, 'redis')), gauge([0, 10])]], evalMin: 8 },
    {
      name: 'a 30-second blip does not fire',
      input: [[series(M.limitStoreDegraded, eq(L.store, 'redis')), gauge([0, 2], [1, 0.5], [0, 7.5])]],
      evalMin: 2.5,
      blip: true,
    },
  ],
  // The gauge holds a not-after in Unix seconds; promtool's clock starts at 0, so days left = (value - eval time) / 86400.
  WsguardCertificateExpiresSoon: [
    {
      name: 'ten days left for 20 minutes fires',
      input: [[series(M.tlsCertificateExpiry, eq(L.serverName, 'default')), gauge([20 * 60 + 10 * 86400, 30])]],
      evalMin: 20,
      fires: { labels: { ...PER_INSTANCE, server_name: 'default' }, value: '10' },
    },
    {
      name: 'fifteen days left does not fire',
      input: [[series(M.tlsCertificateExpiry, eq(L.serverName, 'default')), gauge([15 * 86400, 30])]],
      evalMin: 20,
    },
    {
      name: 'a renewal within the for: window does not fire',
      input: [[series(M.tlsCertificateExpiry, eq(L.serverName, 'default')), gauge([10 * 86400, 10], [90 * 86400, 20])]],
      evalMin: 9,
      blip: true,
    },
  ],
};

/** `blipsOnly`: just the blip cases, for the check that their condition really holds at eval time. */
export function ruleTests(options: { blipsOnly?: boolean; rulesFile?: string } = {}): object {
  const alerts = new Map(alertRules(PRODUCTION).map((a) => [a.alert, a]));
  const tests: object[] = [];
  for (const [name, cases] of Object.entries(CASES)) {
    const a = alerts.get(name);
    if (!a) throw new Error(`promtool cases for unknown alert ${name}`);
    for (const c of cases) {
      if (options.blipsOnly && !c.blip) continue;
      const labels = c.fires?.labels ?? {};
      const description =
        c.fires?.description ??
        a.description
          .replace(/\{\{ \$value[^}]*\}\}/g, c.fires?.value ?? '')
          .replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, l: string) => labels[l] ?? '');
      tests.push({
        name: `${name}: ${c.name}`,
        interval: `${STEP_SEC}s`,
        input_series: c.input.map(([s, values]) => ({ series: s, values })),
        alert_rule_test: [
          {
            eval_time: `${c.evalMin * 60}s`,
            alertname: name,
            exp_alerts: c.fires
              ? [
                  {
                    exp_labels: { severity: a.severity, ...c.fires.labels },
                    exp_annotations: { summary: a.summary, description, runbook_url: runbookUrl(name) },
                  },
                ]
              : [],
          },
        ],
      });
    }
  }
  return { rule_files: [options.rulesFile ?? '../wsguard.rules.yml'], evaluation_interval: `${STEP_SEC}s`, tests };
}

/** Alerts with a firing case and a not-firing case (test/ops/rules.test.ts checks every alert is here). */
export const COVERED = Object.fromEntries(
  Object.entries(CASES).map(([k, cs]) => [
    k,
    {
      firing: cs.filter((c) => c.fires).length,
      quiet: cs.filter((c) => !c.fires && !c.blip).length,
      blip: cs.filter((c) => c.blip).length,
    },
  ]),
);
