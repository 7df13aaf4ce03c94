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
