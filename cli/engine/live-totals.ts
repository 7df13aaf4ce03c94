import { CONNECT_BUCKETS_SEC, ROUND_TRIP_BUCKETS_SEC } from './live-metrics-names.ts';

/** Explicit-bucket counts in OTel's layout: counts[i] for values <= bounds[i], one more for the rest. */
export interface BucketCounts {
  counts: number[];
  /** Seconds. */
  sum: number;
  count: number;
}

/**
 * A run's running totals as the live exporters show them. Cumulative, so a consumer that misses one
 * (a worker's message, a scrape) loses nothing, and the shares of worker threads add up by summing
 * each one's latest. Plain data: it crosses worker-thread boundaries by structured clone.
 */
export interface LiveTotals {
  attempts: number;
  opened: number;
  open: number;
  sent: number;
  received: number;
  /** Known only at the end of the run (an echo is lost once the drain is over); 0 until then. */
  lost: number;
  bytesOut: number;
  bytesIn: number;
  outcomes: Record<string, number>;
  rtt: BucketCounts;
  connect: BucketCounts;
}

/**
 * Records into explicit buckets with a few comparisons and no allocation, cheap enough for the
 * recorder's per-echo path; the OTel SDK's own histogram would hash attributes on every call.
 */
export class BucketRecorder {
  readonly #boundsMs: number[];
  readonly #counts: number[];
  #sumMs = 0;
  #count = 0;

  constructor(boundsSec: readonly number[]) {
    this.#boundsMs = boundsSec.map((b) => b * 1000);
    this.#counts = new Array<number>(boundsSec.length + 1).fill(0);
  }

  recordMs(ms: number): void {
    const b = this.#boundsMs;
    let i = 0;
    while (i < b.length && ms > b[i]!) i++;
    this.#counts[i]!++;
    this.#sumMs += ms;
    this.#count++;
  }

  snapshot(): BucketCounts {
    return { counts: [...this.#counts], sum: this.#sumMs / 1000, count: this.#count };
  }
}

export function emptyTotals(): LiveTotals {
  const empty = (bounds: readonly number[]): BucketCounts => ({ counts: new Array<number>(bounds.length + 1).fill(0), sum: 0, count: 0 });
  return {
    attempts: 0,
    opened: 0,
    open: 0,
    sent: 0,
    received: 0,
    lost: 0,
    bytesOut: 0,
    bytesIn: 0,
    outcomes: {},
    rtt: empty(ROUND_TRIP_BUCKETS_SEC),
    connect: empty(CONNECT_BUCKETS_SEC),
  };
}

/** The total of several shares (the worker threads of one process). */
export function addTotals(parts: Iterable<LiveTotals>): LiveTotals {
  const t = emptyTotals();
  const addBuckets = (into: BucketCounts, from: BucketCounts): void => {
    from.counts.forEach((n, i) => (into.counts[i] = (into.counts[i] ?? 0) + n));
    into.sum += from.sum;
    into.count += from.count;
  };
  for (const p of parts) {
    t.attempts += p.attempts;
    t.opened += p.opened;
    t.open += p.open;
    t.sent += p.sent;
    t.received += p.received;
    t.lost += p.lost;
    t.bytesOut += p.bytesOut;
    t.bytesIn += p.bytesIn;
    for (const [k, v] of Object.entries(p.outcomes)) t.outcomes[k] = (t.outcomes[k] ?? 0) + v;
    addBuckets(t.rtt, p.rtt);
    addBuckets(t.connect, p.connect);
  }
  return t;
}
