/**
 * The Prometheus recording and alerting rules, from one source for alerts/wsguard.rules.yml, the
 * Kubernetes PrometheusRule and the end-to-end test's fast copy (same expressions, short windows).
 */
import { CLIENT_TO_UPSTREAM, ENFORCED, eq, histogramBucket, histogramCount, JOB, L, M, R, reasonsRe, sel } from './promql.ts';

/** Rate windows and `for:` durations. Recording-rule names keep their production window in the name. */
export interface Profile {
  /** the window of the `…:rate5m` recordings */
  rate: string;
  /** the window of the `…:rate1m` recordings (the spike alert: a burst must show within a minute) */
  fast: string;
  /** how far back the spike baseline averages, and how long before now it ends */
  baseline: string;
  baselineOffset: string;
  for(production: string): string;
}

export const PRODUCTION: Profile = { rate: '5m', fast: '1m', baseline: '1h', baselineOffset: '15m', for: (d) => d };

/**
 * For a real Prometheus scraping every second in a test of about a minute: the same expressions over
 * windows a few scrapes long, and `for:` of 3 s so that a condition must hold over 3+ evaluations.
 */
export const E2E: Profile = { rate: '10s', fast: '5s', baseline: '30s', baselineOffset: '10s', for: () => '3s' };

/** Where an alert's runbook lives; override the base with WSGUARD_RUNBOOK_BASE when generating. */
export function runbookUrl(alert: string, base = ''): string {
  return `${base ? `${base.replace(/\/$/, '')}/` : ''}docs/runbooks/${alert}.md`;
}

export interface RecordingRule {
  record: string;
  expr: string;
}

export interface AlertRule {
  alert: string;
  expr: string;
  for: string;
  severity: 'critical' | 'warning';
  summary: string;
  /** Go template; quotes the live value through $value. */
  description: string;
  /** The dashboard panel that confirms it (runbooks and docs name it). */
  panel: string;
}

/** Thresholds, one home each; the runbooks and promtool tests quote these. */
export const THRESHOLDS = {
  spikeFactor: 3,
  spikeFloorPerSec: 10,
  rateLimitPerSec: 1,
  rateLimitShare: 0.05,
  stormAttemptLimitPerSec: 0.5,
  stormShortLivedPerSec: 1,
  shortLivedSec: 5,
  authPerSec: 1,
  authShare: 0.2,
  originPerSec: 1,
  originShare: 0.2,
  upstreamPerSec: 0.2,
  upstreamShare: 0.1,
  backpressureClosesPerSec: 0.1,
  fdUsedShare: 0.75,
  eventLoopP99Sec: 0.1,
  limitStoreErrorsPerSec: 1,
  /** Days before a served certificate's not-after: two weeks leaves a renewal that failed time to be fixed by hand. */
  certificateDays: 14,
} as const;

/** `le` as the exporter prints it for a bucket bound in seconds. */
function le(sec: number): string {
  return eq('le', sec);
}

export function recordingRules(p: Profile): RecordingRule[] {
  const r5 = p.rate;
  // Counters other than accepted_total appear with their first event (docs/metrics.md): `or` this
  // zero per job, which exists as soon as a route does, so sums and ratios never vanish.
  const zero = `0 * sum by (job) (rate(${M.connectionsAccepted}[${r5}]))`;
  const byJob = (inner: string) => `sum by (job) (rate(${inner}[${r5}]))`;
  return [
    { record: 'job:wsguard_connections_accepted:rate1m', expr: `sum by (job) (rate(${M.connectionsAccepted}[${p.fast}]))` },
    { record: 'job:wsguard_connections_accepted:rate5m', expr: byJob(M.connectionsAccepted) },
    { record: 'job:wsguard_handshakes:rate5m', expr: `${byJob(histogramCount(M.handshakeDuration))} or ${zero}` },
    {
      record: 'job_reason:wsguard_connections_rejected_enforced:rate5m',
      expr: `sum by (job, ${L.reason}) (rate(${sel(M.connectionsRejected, eq(L.decision, ENFORCED))}[${r5}]))`,
    },
    { record: 'job:wsguard_messages_in:rate5m', expr: `${byJob(sel(M.messages, eq(L.direction, CLIENT_TO_UPSTREAM)))} or ${zero}` },
    { record: 'job:wsguard_messages_rate_limited:rate5m', expr: `${byJob(M.messagesRateLimited)} or ${zero}` },
    {
      record: 'job:wsguard_connections_rejected_limits:rate5m',
      expr: `${byJob(sel(M.connectionsRejected, reasonsRe('conn_limit', 'attempt_limit'), eq(L.decision, ENFORCED)))} or ${zero}`,
    },
    {
      record: 'job:wsguard_rate_limit_violations:rate5m',
      expr: 'job:wsguard_messages_rate_limited:rate5m + job:wsguard_connections_rejected_limits:rate5m',
    },
    {
      record: 'job:wsguard_rate_limit_violations:ratio_rate5m',
      expr:
        'job:wsguard_rate_limit_violations:rate5m / ' +
        '(job:wsguard_messages_in:rate5m + job:wsguard_messages_rate_limited:rate5m + job:wsguard_handshakes:rate5m > 0)',
    },
    { record: 'job:wsguard_connections_closed:rate5m', expr: `${byJob(M.connectionsClosed)} or ${zero}` },
    {
      record: 'job:wsguard_connections_short_lived:rate5m',
      expr: `${byJob(sel(histogramBucket(M.connectionDuration), le(THRESHOLDS.shortLivedSec)))} or ${zero}`,
    },
  ];
}

function rejectedEnforced(p: Profile, ...reasons: Parameters<typeof reasonsRe>): string {
  return `(sum by (job) (rate(${sel(M.connectionsRejected, reasonsRe(...reasons), eq(L.decision, ENFORCED))}[${p.rate}])))`;
}

export function alertRules(p: Profile): AlertRule[] {
  const T = THRESHOLDS;
  const up = sel('up', eq('job', JOB));
  return [
    {
      alert: 'WsguardConnectionSpike',
      expr:
        `job:wsguard_connections_accepted:rate1m > ${T.spikeFactor} * avg_over_time(job:wsguard_connections_accepted:rate1m[${p.baseline}] offset ${p.baselineOffset})` +
        `\nand job:wsguard_connections_accepted:rate1m > ${T.spikeFloorPerSec}`,
      for: p.for('5m'),
      severity: 'warning',
      summary: 'New connections far above their own baseline',
      description: `{{ $labels.job }} accepts {{ $value | humanize }} new connections/s, more than ${T.spikeFactor}× its average of the hour before (and above the floor of ${T.spikeFloorPerSec}/s).`,
      panel: 'Accepts, rejects and closes per second',
    },
    {
      alert: 'WsguardRateLimitViolationsHigh',
      expr:
        `job:wsguard_rate_limit_violations:rate5m > ${T.rateLimitPerSec}` +
        `\nand job:wsguard_rate_limit_violations:ratio_rate5m > ${T.rateLimitShare}`,
      for: p.for('10m'),
      severity: 'warning',
      summary: 'Many messages and handshakes over the rate limits',
      description: `{{ $labels.job }}: {{ $value | humanize }}/s messages dropped or closed over the message rate limit plus 429s (conn_limit, attempt_limit), over ${T.rateLimitShare * 100}% of traffic.`,
      panel: 'Rate-limit violations',
    },
    {
      alert: 'WsguardReconnectStorm',
      expr:
        `${rejectedEnforced(p, 'attempt_limit')} > ${T.stormAttemptLimitPerSec}` +
        `\nand on (job) job:wsguard_connections_short_lived:rate5m > ${T.stormShortLivedPerSec}`,
      for: p.for('5m'),
      severity: 'warning',
      summary: 'Clients reconnect in a loop',
      description: `{{ $labels.job }}: {{ $value | humanize }}/s handshakes refused by the attempt limit while connections shorter than ${T.shortLivedSec} s close at over ${T.stormShortLivedPerSec}/s.`,
      panel: 'Connection duration percentiles',
    },
    {
      alert: 'WsguardAuthFailureSpike',
      expr:
        `${rejectedEnforced(p, 'auth')} > ${T.authPerSec}` +
        `\nand on (job) ${rejectedEnforced(p, 'auth')} / on (job) (job:wsguard_handshakes:rate5m > 0) > ${T.authShare}`,
      for: p.for('10m'),
      severity: 'warning',
      summary: 'Many handshakes refused for a missing or invalid token',
      description: `{{ $labels.job }}: {{ $value | humanize }}/s handshakes refused with 401 (reason auth), over ${T.authShare * 100}% of all handshakes.`,
      panel: 'Rejections by reason (enforced)',
    },
    {
      alert: 'WsguardOriginRejectionsSpike',
      expr:
        `${rejectedEnforced(p, 'origin')} > ${T.originPerSec}` +
        `\nand on (job) ${rejectedEnforced(p, 'origin')} / on (job) (job:wsguard_handshakes:rate5m > 0) > ${T.originShare}`,
      for: p.for('10m'),
      severity: 'warning',
      summary: 'Many handshakes refused for their Origin',
      description: `{{ $labels.job }}: {{ $value | humanize }}/s handshakes refused with 403 (reason origin), over ${T.originShare * 100}% of all handshakes.`,
      panel: 'Rejections by reason (enforced)',
    },
    {
      alert: 'WsguardUpstreamUnavailable',
      expr:
        `(${rejectedEnforced(p, 'upstream_unavailable', 'upstream_timeout')} > ${T.upstreamPerSec}` +
        `\n  and on (job) ${rejectedEnforced(p, 'upstream_unavailable', 'upstream_timeout')} / on (job) (job:wsguard_handshakes:rate5m > 0) > ${T.upstreamShare})` +
        `\nor` +
        `\n(sum by (job) (rate(${sel(M.connectionsClosed, eq(L.code, 1014))}[${p.rate}])) > ${T.upstreamPerSec}` +
        `\n  and on (job) sum by (job) (rate(${sel(M.connectionsClosed, eq(L.code, 1014))}[${p.rate}])) / on (job) (job:wsguard_connections_closed:rate5m > 0) > ${T.upstreamShare})`,
      for: p.for('5m'),
      severity: 'critical',
      summary: 'The app behind wsguard is unreachable or failing',
      description: `{{ $labels.job }}: {{ $value | humanize }}/s handshakes answered 502/504 or connections closed with 1014 (bad gateway), over ${T.upstreamShare * 100}% of them.`,
      panel: 'Upstream errors by kind',
    },
    {
      alert: 'WsguardBackpressureCloses',
      expr: `sum by (job) (rate(${sel(M.backpressure, eq(L.action, 'close'))}[${p.rate}])) > ${T.backpressureClosesPerSec}`,
      for: p.for('15m'),
      severity: 'warning',
      summary: 'Connections closed because a side could not keep up',
      description: `{{ $labels.job }} closes {{ $value | humanize }} connections/s with 4102 (backpressure).`,
      panel: 'Backpressure episodes',
    },
    {
      alert: 'WsguardDown',
      expr: `${up} == 0 or absent(${up})`,
      for: p.for('2m'),
      severity: 'critical',
      summary: 'Prometheus cannot scrape wsguard',
      description: `{{ if $labels.instance }}Prometheus cannot scrape {{ $labels.instance }} (up = {{ $value }}).{{ else }}No target of job ${JOB} exists (absent(up) = {{ $value }}).{{ end }}`,
      panel: 'Active connections',
    },
    {
      alert: 'WsguardNotReady',
      expr:
        `sum by (job, instance) (rate(${sel(M.connectionsRejected, reasonsRe('auth_unavailable', 'overloaded', 'store_unavailable', 'draining'))}[${p.fast}])) > 0` +
        `\nor max by (job, instance) (${M.openFds} / ${M.fdLimit}) > ${T.fdUsedShare}`,
      for: p.for('5m'),
      severity: 'critical',
      summary: 'A replica refuses handshakes for a reason /readyz reports',
      description:
        '{{ $labels.instance }}: {{ $value | humanize }} (503s for auth_unavailable, overloaded, store_unavailable or draining per second, or the share of file descriptors in use); /readyz answers not ready.',
      panel: 'Rejections by reason (enforced)',
    },
    {
      alert: 'WsguardEventLoopLagHigh',
      expr: `max by (job, instance) (${R.eventLoopDelayP99}) > ${T.eventLoopP99Sec}`,
      for: p.for('5m'),
      severity: 'warning',
      summary: 'The event loop is late: every connection waits',
      description: '{{ $labels.instance }}: event-loop delay p99 is {{ $value | humanizeDuration }}.',
      panel: 'Event-loop delay',
    },
    {
      alert: 'WsguardLimitStoreDegraded',
      expr:
        `max by (job, instance, ${L.store}) (${M.limitStoreDegraded}) == 1` +
        `\nor sum by (job, instance, ${L.store}) (rate(${M.limitStoreErrors}[${p.rate}])) > ${T.limitStoreErrorsPerSec}`,
      for: p.for('1m'),
      severity: 'critical',
      summary: 'The limit store is failing; per-IP limits run on the degraded policy',
      description: '{{ $labels.instance }}: limit store {{ $labels.store }} is degraded or failing (value {{ $value }}).',
      panel: 'Limit-store health',
    },
    {
      alert: 'WsguardCertificateExpiresSoon',
      // In days, so that $value reads as days left. The gauge exists only with server.tls on.
      expr: `min by (job, instance, ${L.serverName}) (${M.tlsCertificateExpiry} - time()) / 86400 < ${T.certificateDays}`,
      for: p.for('15m'),
      severity: 'warning',
      summary: 'A certificate wsguard serves expires within two weeks and has not been renewed',
      description: '{{ $labels.instance }}: the certificate for {{ $labels.server_name }} expires in {{ $value }} days.',
      panel: 'TLS certificates',
    },
  ];
}

export const ALERT_NAMES: readonly string[] = alertRules(PRODUCTION).map((a) => a.alert);

/** The rule file Prometheus loads. */
export function ruleGroups(p: Profile, runbookBase = ''): object {
  return {
    groups: [
      { name: 'wsguard.recording', rules: recordingRules(p).map((r) => ({ record: r.record, expr: r.expr })) },
      {
        name: 'wsguard.alerts',
        rules: alertRules(p).map((a) => ({
          alert: a.alert,
          expr: a.expr,
          for: a.for,
          labels: { severity: a.severity },
          annotations: { summary: a.summary, description: a.description, runbook_url: runbookUrl(a.alert, runbookBase) },
        })),
      },
    ],
  };
}

/** The same rules as a prometheus-operator PrometheusRule. */
export function prometheusRule(runbookBase = ''): object {
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: 'wsguard', labels: { app: 'wsguard', role: 'alert-rules' } },
    spec: ruleGroups(PRODUCTION, runbookBase),
  };
}
