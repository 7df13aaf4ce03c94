import { SpaceSaving, type HeavyHitter } from './top-k.ts';

/**
 * The numbers behind the monitoring API (the reference guide's "Monitoring Dashboard": the Django Channels production setup guide wsguard started from), kept in plain memory
 * and read without touching OpenTelemetry.
 *
 * Definitions (docs/monitoring-api.md):
 * - "today" starts at midnight in `timeZone` (UTC by default) or at process start, whichever is later;
 *   connections_today, messages_sent, messages_received and avg_connection_duration reset then.
 * - messages_sent: messages the gateway sent to clients (upstream → client); messages_received:
 *   messages received from clients (client → upstream).
 * - messages_per_minute: messages in both directions over the trailing window (60 s by default),
 *   sampled once a second and scaled to one minute.
 */
export interface MonitoringMetrics {
  active_connections: number;
  connections_today: number;
  messages_sent: number;
  messages_received: number;
  avg_connection_duration: number;
  messages_per_minute: number;
  timestamp: string;
}

export interface MessageTotals {
  /** client → upstream, since process start */
  received: number;
  /** upstream → client, since process start */
  sent: number;
}

export interface LiveStatsOptions {
  timeZone: string;
  messagesPerMinuteWindowSec: number;
  topOffendersCapacity: number;
  now: () => number;
  totals: () => MessageTotals;
  activeConnections: () => number;
}

export interface RejectionReport {
  since: string;
  total: number;
  by_reason: Record<string, { enforced: number; dry_run: number }>;
  top_offenders: Array<{ client: string; count: number; error: number }>;
}

const DAY_CHECK_INTERVAL_MS = 1000;

/** ISO-8601 with a Z and whole seconds, the reference guide's `timestamp` form ("2025-11-10T12:00:00Z"). */
export function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export class LiveStats {
  readonly #opts: LiveStatsOptions;
  readonly #dayFormat: Intl.DateTimeFormat;
  readonly #startedAt: number;
  #dayKey: string;
  #nextDayCheck = 0;
  #connectionsToday = 0;
  #closedToday = 0;
  #durationTodayMs = 0;
  #baseline: MessageTotals;
  /** Ring of (time, total messages) samples, oldest first, covering the window plus one sample. */
  #samples: Array<{ t: number; total: number }> = [];
  #rejections = new Map<string, { enforced: number; dry_run: number }>();
  #rejectionTotal = 0;
  #offenders: SpaceSaving;

  constructor(opts: LiveStatsOptions) {
    this.#opts = opts;
    // en-CA formats as YYYY-MM-DD, a sortable key for the calendar day in the zone.
    this.#dayFormat = new Intl.DateTimeFormat('en-CA', {
      timeZone: opts.timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
    });
    const now = opts.now();
    this.#startedAt = now;
    this.#dayKey = this.#dayFormat.format(now);
    this.#nextDayCheck = now + DAY_CHECK_INTERVAL_MS;
    this.#baseline = { ...opts.totals() };
    this.#offenders = new SpaceSaving(opts.topOffendersCapacity);
    this.#samples.push({ t: now, total: this.#baseline.received + this.#baseline.sent });
  }

  /** Rolls the daily counts over when the calendar day in the zone changed (checked at most once a second). */
  #roll(now: number): void {
    if (now < this.#nextDayCheck) return;
    this.#nextDayCheck = now + DAY_CHECK_INTERVAL_MS;
    const key = this.#dayFormat.format(now);
    if (key === this.#dayKey) return;
    this.#dayKey = key;
    this.#connectionsToday = 0;
    this.#closedToday = 0;
    this.#durationTodayMs = 0;
    this.#baseline = { ...this.#opts.totals() };
  }

  connectionOpened(): void {
    this.#roll(this.#opts.now());
    this.#connectionsToday++;
  }

  connectionClosed(durationMs: number): void {
    this.#roll(this.#opts.now());
    this.#closedToday++;
    this.#durationTodayMs += Math.max(0, durationMs);
  }

  rejected(reason: string, decision: 'enforced' | 'dry_run', clientKey: string): void {
    let r = this.#rejections.get(reason);
    if (!r) {
      r = { enforced: 0, dry_run: 0 };
      this.#rejections.set(reason, r);
    }
    r[decision]++;
    this.#rejectionTotal++;
    if (clientKey) this.#offenders.add(clientKey);
  }

  /** Called once a second (and by tests with a fake clock): samples the message total. */
  tick(): void {
    const now = this.#opts.now();
    this.#roll(now);
    const t = this.#opts.totals();
    this.#samples.push({ t: now, total: t.received + t.sent });
    const horizon = now - this.#opts.messagesPerMinuteWindowSec * 1000;
    // Keep exactly one sample at or before the horizon: it is the window's starting point.
    while (this.#samples.length > 1 && this.#samples[1]!.t <= horizon) this.#samples.shift();
  }

  messagesPerMinute(): number {
    const t = this.#opts.totals();
    const total = t.received + t.sent;
    const start = this.#samples[0]!;
    const delta = total - start.total;
    return Math.round((delta * 60) / this.#opts.messagesPerMinuteWindowSec);
  }

  snapshot(): MonitoringMetrics {
    const now = this.#opts.now();
    this.#roll(now);
    const t = this.#opts.totals();
    return {
      active_connections: this.#opts.activeConnections(),
      connections_today: this.#connectionsToday,
      messages_sent: t.sent - this.#baseline.sent,
      messages_received: t.received - this.#baseline.received,
      avg_connection_duration: this.#closedToday === 0 ? 0 : Math.round(this.#durationTodayMs / this.#closedToday / 10) / 100,
      messages_per_minute: this.messagesPerMinute(),
      timestamp: isoSeconds(now),
    };
  }

  rejections(topN: number): RejectionReport {
    const by_reason: RejectionReport['by_reason'] = {};
    for (const [reason, counts] of [...this.#rejections].sort(([a], [b]) => a.localeCompare(b))) {
      by_reason[reason] = { ...counts };
    }
    return {
      since: isoSeconds(this.#startedAt),
      total: this.#rejectionTotal,
      by_reason,
      top_offenders: this.#offenders.top(topN).map((h: HeavyHitter) => ({ client: h.key, count: h.count, error: h.error })),
    };
  }
}

// ---------------------------------------------------------------- the status page's short time series

/** Cumulative counters at one instant, summed over routes (active stays per route). */
export interface StatusTotals {
  active: Record<string, number>;
  accepted: number;
  /** Enforced rejections by reason. */
  rejected: Record<string, number>;
  /** Rejections a dry-run policy would have made (all reasons). */
  dryRun: number;
  closed: number;
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  rateLimitedDrop: number;
  rateLimitedClose: number;
  upstreamErrors: number;
  /** Accepted handshakes per latency bucket, not cumulative across buckets; the last one is +Inf. */
  handshakeBuckets: number[];
}

/** One second of the series: counts are what happened since the previous sample, `dt_ms` ago. */
export interface StatusSample {
  t: number;
  dt_ms: number;
  active: Record<string, number>;
  accepted: number;
  rejected: Record<string, number>;
  dry_run: number;
  closed: number;
  messages_in: number;
  messages_out: number;
  bytes_in: number;
  bytes_out: number;
  rate_limited_drop: number;
  rate_limited_close: number;
  upstream_errors: number;
  /** Over the trailing latency window; null when no handshake was accepted in it. */
  handshake_p50_ms: number | null;
  handshake_p99_ms: number | null;
}

export interface LatencyWindow {
  window_sec: number;
  count: number;
  /** Upper bounds in seconds (the last is null for +Inf) and the handshakes that fell in each. */
  buckets: Array<{ le: number | null; count: number }>;
  p50_ms: number | null;
  p99_ms: number | null;
}

/**
 * The q-quantile of a bucketed histogram, interpolated linearly inside its bucket (what Prometheus'
 * histogram_quantile does). `counts[i]` falls in (bounds[i-1], bounds[i]]; counts has one more entry
 * than bounds, for +Inf, where the answer is the largest finite bound.
 */
export function bucketQuantile(q: number, bounds: readonly number[], counts: readonly number[]): number | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total <= 0) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (c > 0 && below + c >= rank) {
      if (i >= bounds.length) return bounds[bounds.length - 1] ?? null;
      const lower = i === 0 ? 0 : bounds[i - 1]!;
      return lower + (bounds[i]! - lower) * ((rank - below) / c);
    }
    below += c;
  }
  return bounds[bounds.length - 1] ?? null;
}

export interface StatusSeriesOptions {
  /** Samples kept (one a second: 900 is 15 minutes). */
  capacity: number;
  /** Trailing seconds of the sliding handshake-latency histogram. */
  latencyWindowSec: number;
  /** Upper bounds (seconds) of the handshake histogram's finite buckets. */
  latencyBounds: readonly number[];
}

const delta = (now: number, before: number): number => Math.max(0, now - before);

/**
 * A ring of one-second samples for the status page, and a sliding handshake-latency histogram made
 * from the differences of the cumulative bucket counts over the trailing window. Memory is bounded:
 * `capacity` samples plus `latencyWindowSec + 1` bucket vectors.
 */
export class StatusSeries {
  readonly #opts: StatusSeriesOptions;
  readonly #ring: StatusSample[] = [];
  #last: { t: number; totals: StatusTotals } | undefined;
  /** (time, cumulative accepted-handshake buckets), oldest first, reaching back one latency window. */
  readonly #latency: Array<{ t: number; buckets: number[] }> = [];

  constructor(opts: StatusSeriesOptions) {
    this.#opts = opts;
  }

  get capacity(): number {
    return this.#opts.capacity;
  }

  /** Adds the totals read at `t`; the first call only sets the baseline. */
  record(t: number, totals: StatusTotals): void {
    this.#latency.push({ t, buckets: totals.handshakeBuckets.slice() });
    const horizon = t - this.#opts.latencyWindowSec * 1000;
    // Keep one vector at or before the horizon: the window's starting point.
    while (this.#latency.length > 1 && this.#latency[1]!.t <= horizon) this.#latency.shift();
    const prev = this.#last;
    this.#last = { t, totals };
    if (!prev) return;
    const p = prev.totals;
    const rejected: Record<string, number> = {};
    for (const [reason, n] of Object.entries(totals.rejected)) {
      const d = delta(n, p.rejected[reason] ?? 0);
      if (d > 0) rejected[reason] = d;
    }
    const window = this.latency();
    this.#ring.push({
      t,
      dt_ms: t - prev.t,
      active: { ...totals.active },
      accepted: delta(totals.accepted, p.accepted),
      rejected,
      dry_run: delta(totals.dryRun, p.dryRun),
      closed: delta(totals.closed, p.closed),
      messages_in: delta(totals.messagesIn, p.messagesIn),
      messages_out: delta(totals.messagesOut, p.messagesOut),
      bytes_in: delta(totals.bytesIn, p.bytesIn),
      bytes_out: delta(totals.bytesOut, p.bytesOut),
      rate_limited_drop: delta(totals.rateLimitedDrop, p.rateLimitedDrop),
      rate_limited_close: delta(totals.rateLimitedClose, p.rateLimitedClose),
      upstream_errors: delta(totals.upstreamErrors, p.upstreamErrors),
      handshake_p50_ms: window.p50_ms,
      handshake_p99_ms: window.p99_ms,
    });
    if (this.#ring.length > this.#opts.capacity) this.#ring.shift();
  }

  /** Samples taken after `t` (all of them for 0), oldest first. */
  since(t: number): StatusSample[] {
    let i = this.#ring.length;
    while (i > 0 && this.#ring[i - 1]!.t > t) i--;
    return this.#ring.slice(i);
  }

  /** The sliding histogram: accepted handshakes per bucket over the trailing window, and p50/p99. */
  latency(): LatencyWindow {
    const bounds = this.#opts.latencyBounds;
    const first = this.#latency[0];
    const last = this.#latency[this.#latency.length - 1];
    const counts = last && first ? last.buckets.map((n, i) => delta(n, first.buckets[i] ?? 0)) : [];
    const ms = (v: number | null) => (v === null ? null : Math.round(v * 1e6) / 1e3);
    return {
      window_sec: this.#opts.latencyWindowSec,
      count: counts.reduce((a, b) => a + b, 0),
      buckets: counts.map((count, i) => ({ le: i < bounds.length ? bounds[i]! : null, count })),
      p50_ms: ms(bucketQuantile(0.5, bounds, counts)),
      p99_ms: ms(bucketQuantile(0.99, bounds, counts)),
    };
  }
}
