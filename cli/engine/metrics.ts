import type { RunResult } from './result.ts';
import { isFailure } from './outcomes.ts';
import { mergeSummaries } from './histogram.ts';
import type { ScenarioSection } from '../scenario/result.ts';

/**
 * The flat metric names thresholds and reports use. Outcome metrics are open-ended families:
 * `rejected.429`, `closed.4100`, `error.ECONNREFUSED`, `tls.CERT_HAS_EXPIRED`, … read 0 when the
 * outcome never happened, so `rejected.429>=5` is meaningful before the first 429.
 */
export const OUTCOME_FAMILIES = ['completed', 'rejected', 'closed', 'error', 'tls', 'handshake', 'protocol', 'dropped'] as const;

export const METRIC_DESCRIPTIONS: Readonly<Record<string, string>> = Object.freeze({
  p50_rtt_ms: 'round trip p50, from intended send time',
  p90_rtt_ms: 'round trip p90',
  p99_rtt_ms: 'round trip p99',
  p999_rtt_ms: 'round trip p99.9',
  max_rtt_ms: 'round trip max',
  mean_rtt_ms: 'round trip mean',
  p99_rtt_uncorrected_ms: 'round trip p99 from actual send time (not CO-corrected)',
  p50_connect_ms: 'handshake time p50',
  p99_connect_ms: 'handshake time p99',
  max_connect_ms: 'handshake time max',
  attempts: 'connection attempts',
  opened: 'connections that opened',
  peak_open: 'most connections open at once',
  failures: 'attempts or connections that ended in a failure outcome',
  error_rate: 'failures / attempts (0..1)',
  rejected: 'all HTTP rejections',
  messages_sent: 'messages sent',
  messages_received: 'messages received',
  messages_lost: 'echoes never received',
  messages_unmatched: 'received messages without our marker',
  msg_rate_out: 'messages sent per second',
  msg_rate_in: 'messages received per second',
  bytes_out: 'bytes sent',
  bytes_in: 'bytes received',
  recover_p50_ms: 'storm: time to reconnect p50',
  recover_p99_ms: 'storm: time to reconnect p99',
  recover_max_ms: 'storm: time to reconnect max',
  time_to_50pct_ms: 'storm: time until 50% of dropped clients were back',
  time_to_90pct_ms: 'storm: time until 90% were back',
  time_to_99pct_ms: 'storm: time until 99% were back',
  time_to_100pct_ms: 'storm: time until all were back',
  recovered: 'storm: clients that reconnected',
  gave_up: 'storm: clients that hit max attempts',
  attempts_per_client_mean: 'storm: reconnect attempts per client, mean',
  attempts_per_client_max: 'storm: reconnect attempts per client, max',
  rejections_during_recovery: 'storm: rejections while reconnecting',
  checks: 'scenario: share of all checks that passed (0..1); checks.<name> is one named check',
  checks_failed: 'scenario: failed checks, all names',
  fanout_first_p50_ms: 'scenario fanout: send to first receiver p50, from intended send time',
  fanout_first_p99_ms: 'scenario fanout: send to first receiver p99',
  fanout_first_max_ms: 'scenario fanout: send to first receiver max',
  fanout_last_p50_ms: 'scenario fanout: send to last receiver p50',
  fanout_last_p99_ms: 'scenario fanout: send to last receiver p99',
  fanout_last_max_ms: 'scenario fanout: send to last receiver max',
  fanout_missing: 'scenario fanout: deliveries a listening receiver never got',
});

export function isKnownMetric(name: string): boolean {
  if (name in METRIC_DESCRIPTIONS) return true;
  if (/^checks\.[A-Za-z_][\w-]*$/.test(name)) return true;
  const family = name.split('.')[0] as (typeof OUTCOME_FAMILIES)[number];
  return OUTCOME_FAMILIES.includes(family);
}

/**
 * Metrics that are statistics over samples (latency percentiles, means, rates per attempt). With no
 * samples they have no value: they are left out, so a threshold on them fails with "no data"
 * instead of comparing a placeholder 0 (`p99_rtt_ms<50` used to pass a run that sent nothing).
 */
export function flattenMetrics(r: RunResult): Record<string, number> {
  const m: Record<string, number> = {};
  const rtt = r.latency.rtt;
  if (rtt.count > 0) {
    Object.assign(m, {
      p50_rtt_ms: rtt.p50,
      p90_rtt_ms: rtt.p90,
      p99_rtt_ms: rtt.p99,
      p999_rtt_ms: rtt.p999,
      max_rtt_ms: rtt.max,
      mean_rtt_ms: rtt.mean,
    });
  }
  if (r.latency.rttUncorrected.count > 0) m.p99_rtt_uncorrected_ms = r.latency.rttUncorrected.p99;
  const connect = r.latency.connect;
  if (connect.count > 0) Object.assign(m, { p50_connect_ms: connect.p50, p99_connect_ms: connect.p99, max_connect_ms: connect.max });
  Object.assign(m, {
    attempts: r.connections.attempts,
    opened: r.connections.opened,
    peak_open: r.connections.peakOpen,
    messages_sent: r.messages.sent,
    messages_received: r.messages.received,
    messages_lost: r.messages.lost,
    messages_unmatched: r.messages.unmatched,
    msg_rate_out: r.messages.ratePerSecOut,
    msg_rate_in: r.messages.ratePerSecIn,
    bytes_out: r.messages.bytesOut,
    bytes_in: r.messages.bytesIn,
  });
  let failures = 0;
  let rejected = 0;
  for (const [k, v] of Object.entries(r.outcomes)) {
    m[k] = v;
    if (isFailure(k)) failures += v;
    if (k.startsWith('rejected.')) rejected += v;
  }
  m.failures = failures;
  m.rejected = rejected;
  if (r.connections.attempts > 0) m.error_rate = failures / r.connections.attempts;
  if (r.scenario) Object.assign(m, scenarioMetrics(r.scenario));
  const s = r.storm;
  if (s) {
    if (s.recover.count > 0)
      Object.assign(m, { recover_p50_ms: s.recover.p50, recover_p99_ms: s.recover.p99, recover_max_ms: s.recover.max });
    Object.assign(m, {
      recovered: s.recovered,
      gave_up: s.gaveUp,
      rejections_during_recovery: Object.values(s.rejectionsDuringRecovery).reduce((a, b) => a + b, 0),
    });
    if (s.dropped > 0) {
      Object.assign(m, { attempts_per_client_mean: s.attemptsPerClient.mean, attempts_per_client_max: s.attemptsPerClient.max });
      for (const [pct, ms] of Object.entries(s.timeToPercentMs)) m[`time_to_${pct}pct_ms`] = ms ?? Number.POSITIVE_INFINITY;
    }
  }
  return m;
}

/** Check pass rates (only for checks that ran) and fan-out latency over every fanout step. */
function scenarioMetrics(sc: ScenarioSection): Record<string, number> {
  const m: Record<string, number> = {};
  let passes = 0;
  let fails = 0;
  for (const [name, c] of Object.entries(sc.checks)) {
    passes += c.passes;
    fails += c.fails;
    if (c.passes + c.fails > 0) m[`checks.${name}`] = c.passes / (c.passes + c.fails);
  }
  m.checks_failed = fails;
  if (passes + fails > 0) m.checks = passes / (passes + fails);
  const fan = Object.values(sc.fanout);
  if (fan.length > 0) {
    m.fanout_missing = fan.reduce((a, f) => a + f.missing, 0);
    for (const which of ['first', 'last'] as const) {
      const s = mergeSummaries(fan.map((f) => f[which]));
      if (s.count > 0)
        Object.assign(m, { [`fanout_${which}_p50_ms`]: s.p50, [`fanout_${which}_p99_ms`]: s.p99, [`fanout_${which}_max_ms`]: s.max });
    }
  }
  return m;
}

/** A threshold that names rejections (`rejected`, `rejected.429`): the user asked for refusals. */
export function asksForRejections(metric: string): boolean {
  return metric === 'rejected' || metric.startsWith('rejected.');
}
