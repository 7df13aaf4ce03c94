import { performance } from 'node:perf_hooks';
import { createHistogram, recordMs, summarize, type Histogram } from './histogram.ts';
import { CONNECT_BUCKETS_SEC, ROUND_TRIP_BUCKETS_SEC } from './live-metrics-names.ts';
import { BucketRecorder, type LiveTotals } from './live-totals.ts';
import { OutcomeCounter } from './outcomes.ts';
import type { RunResult, SeriesPoint } from './result.ts';
import { judgeSaturation, SaturationMonitor, type SaturationLimits } from './saturation.ts';
import type { Target, TargetOptions } from './target.ts';

/**
 * The recording half of the run harness, shared by every load: connection and message counters,
 * named outcomes, the latency histograms, the per-second series of deltas, the saturation
 * monitor, and the result envelope with every secret taken out. In k6 the executors emit samples
 * and the engine owns the aggregation; here the load models (flood's, storm) only count into a
 * Recorder and never build a result themselves.
 */
export class Recorder {
  readonly outcomes = new OutcomeCounter();
  /** Handshake time of connections that opened: a refusal's few microseconds would make a closed port look fast. */
  readonly connect = createHistogram();
  /** Round trip from the intended send time (coordinated-omission corrected). */
  readonly rtt = createHistogram();
  readonly rttRaw = createHistogram();
  /** Lateness of sends and arrivals that the generator, not the target, caused. */
  readonly sendLag = createHistogram();
  readonly #intervalRtt = createHistogram();
  readonly monitor = new SaturationMonitor();
  readonly series: SeriesPoint[] = [];
  readonly t0 = performance.now();
  readonly startedAt = new Date();
  attempts = 0;
  opened = 0;
  open = 0;
  /** Handshakes in progress. */
  opening = 0;
  peakOpen = 0;
  sent = 0;
  received = 0;
  unmatched = 0;
  bytesOut = 0;
  bytesIn = 0;
  readonly #last = { attempts: 0, opened: 0, sent: 0, received: 0, bytesOut: 0, bytesIn: 0, outcomes: new Map<string, number>() };
  readonly #onSample: ((p: SeriesPoint) => void) | undefined;
  readonly #onLive: ((t: LiveTotals) => void) | undefined;
  /** Only kept when a live exporter listens (`onLive`), so a run without one pays one branch per echo. */
  readonly #liveRtt: BucketRecorder | undefined;
  readonly #liveConnect: BucketRecorder | undefined;

  /** `onLive` receives the running totals with every sample and once more, final, with the result. */
  constructor(onSample?: (p: SeriesPoint) => void, onLive?: (t: LiveTotals) => void) {
    this.#onSample = onSample;
    this.#onLive = onLive;
    if (onLive) {
      this.#liveRtt = new BucketRecorder(ROUND_TRIP_BUCKETS_SEC);
      this.#liveConnect = new BucketRecorder(CONNECT_BUCKETS_SEC);
    }
  }

  /** The running totals the live exporters show; `lost` only the load model knows, at the end. */
  liveTotals(lost = 0): LiveTotals {
    return {
      attempts: this.attempts,
      opened: this.opened,
      open: this.open,
      sent: this.sent,
      received: this.received,
      lost,
      bytesOut: this.bytesOut,
      bytesIn: this.bytesIn,
      outcomes: Object.fromEntries(this.outcomes.counts),
      rtt: this.#liveRtt?.snapshot() ?? { counts: [], sum: 0, count: 0 },
      connect: this.#liveConnect?.snapshot() ?? { counts: [], sum: 0, count: 0 },
    };
  }

  /** A handshake starts. */
  attempt(): void {
    this.attempts++;
    this.opening++;
  }

  /** A handshake ended without a socket (refused, failed, or its token could not be minted). */
  failedAttempt(outcome: string, detail: string): void {
    this.opening--;
    this.outcome(outcome, detail);
  }

  /** A handshake ended with an open socket. */
  openedSocket(connectMs: number): void {
    this.opening--;
    recordMs(this.connect, connectMs);
    this.#liveConnect?.recordMs(connectMs);
    this.opened++;
    this.open++;
    if (this.open > this.peakOpen) this.peakOpen = this.open;
  }

  /** An open socket ended; `outcome` names how. */
  closed(outcome: string, detail: string): void {
    this.open--;
    this.outcome(outcome, detail);
  }

  /** Every outcome detail passes through here, so a token in an error message or close reason never reaches a report. */
  outcome(key: string, detail?: string, n = 1): void {
    this.outcomes.add(key, detail === undefined ? undefined : redactText(detail), n);
  }

  /** A matched echo: corrected and uncorrected round trips, and this second's percentiles. */
  roundTrip(fromIntendedMs: number, fromActualMs: number): void {
    recordMs(this.rtt, fromIntendedMs);
    recordMs(this.#intervalRtt, fromIntendedMs);
    recordMs(this.rttRaw, fromActualMs);
    this.#liveRtt?.recordMs(fromIntendedMs);
  }

  secondsSinceStart(now: number): number {
    return Math.round((now - this.t0) / 100) / 10;
  }

  /** One second of the run as deltas since the previous sample (running totals hide bursts). */
  sample(now: number): SeriesPoint {
    const { cpuCores } = this.monitor.sample();
    const last = this.#last;
    const outcomes: Record<string, number> = {};
    for (const [k, v] of this.outcomes.counts) {
      const d = v - (last.outcomes.get(k) ?? 0);
      if (d > 0) outcomes[k] = d;
      last.outcomes.set(k, v);
    }
    const h = this.#intervalRtt;
    const ms = (p: number): number => (h.totalCount === 0 ? 0 : Math.round(h.getValueAtPercentile(p)) / 1000);
    const point: SeriesPoint = {
      t: Math.round((now - this.t0) / 1000),
      open: this.open,
      opening: this.opening,
      attempts: this.attempts - last.attempts,
      opened: this.opened - last.opened,
      outcomes,
      sent: this.sent - last.sent,
      received: this.received - last.received,
      bytesOut: this.bytesOut - last.bytesOut,
      bytesIn: this.bytesIn - last.bytesIn,
      rttP50Ms: ms(50),
      rttP99Ms: ms(99),
      rttCount: h.totalCount,
      cpuCores,
    };
    h.reset();
    last.attempts = this.attempts;
    last.opened = this.opened;
    last.sent = this.sent;
    last.received = this.received;
    last.bytesOut = this.bytesOut;
    last.bytesIn = this.bytesIn;
    this.series.push(point);
    this.#onSample?.(point);
    this.#onLive?.(this.liveTotals());
    return point;
  }

  /**
   * The result every load returns. `activeMs` is the time messages were meant to flow (rates are
   * per second of it); `scheduled`/`lost` come from the load model, which alone knows them.
   */
  envelope(
    kind: RunResult['kind'],
    config: TargetOptions,
    target: Target,
    saturation: SaturationLimits,
    m: { activeMs?: number; scheduled: number; lost: number; aborted?: RunResult['aborted'] },
  ): RunResult {
    const durationMs = performance.now() - this.t0;
    const activeMs = Math.max(1, Math.min(durationMs, m.activeMs ?? durationMs));
    const eld = this.monitor.stop();
    const outcomes = this.outcomes.toJSON();
    this.#onLive?.(this.liveTotals(m.lost));
    const p99 = (h: Histogram): number => (h.totalCount === 0 ? 0 : Math.round(h.getValueAtPercentile(99)) / 1000);
    return {
      kind,
      version: 1,
      target: redactText(config.url),
      startedAt: this.startedAt.toISOString(),
      durationMs: Math.round(durationMs),
      config: publicConfig(config),
      shards: 1,
      connections: { attempts: this.attempts, opened: this.opened, peakOpen: this.peakOpen },
      outcomes,
      outcomeDetails: this.outcomes.detailsJSON(),
      messages: {
        sent: this.sent,
        received: this.received,
        lost: m.lost,
        unmatched: this.unmatched,
        bytesOut: this.bytesOut,
        bytesIn: this.bytesIn,
        ratePerSecOut: Math.round((this.sent / activeMs) * 1000),
        ratePerSecIn: Math.round((this.received / activeMs) * 1000),
      },
      latency: { rtt: summarize(this.rtt), rttUncorrected: summarize(this.rttRaw), connect: summarize(this.connect) },
      saturation: judgeSaturation(
        {
          ...eld,
          cpuCoresPeak: this.monitor.cpuPeak,
          sendLagP99Ms: p99(this.sendLag),
          scheduled: m.scheduled,
          sent: this.sent,
          fdPeak: this.monitor.fdPeak,
          fdLimit: target.fdLimit,
          outcomes,
        },
        saturation,
      ),
      preflight: target.preflight,
      aborted: m.aborted,
      series: this.series,
    };
  }
}

const REDACTED = '[redacted]';
/** A compact JWS (what every minted token is): header.payload.signature, base64url, header starting `{"`. */
const JWS = /\beyJ[\w-]*\.[\w-]*\.[\w-]*/g;
const BEARER = /\b(Bearer\s+)\S+/gi;
/** Query parameters that carry credentials by convention (access_token is the sidecar's default). */
const SECRET_PARAM = /([?&][^=&#\s]*(?:token|secret|password|passwd|key|sig|auth|jwt)[^=&#\s]*=)[^&#\s]*/gi;

/** Takes tokens and credential-bearing query values out of free text (URLs, error messages, close reasons). */
export function redactText(s: string): string {
  return s.replace(JWS, REDACTED).replace(BEARER, `$1${REDACTED}`).replace(SECRET_PARAM, `$1${REDACTED}`);
}

/**
 * The options a run was made with, as recorded in its result: the token, the JWT secret or key and
 * header values are left out (header names stay, so the report says what was sent), URLs redacted.
 */
export function publicConfig(o: TargetOptions): Record<string, unknown> {
  const { auth, url, ...rest } = o as TargetOptions & Record<string, unknown>;
  return {
    ...rest,
    url: redactText(url),
    auth: auth
      ? {
          tokenIn: auth.tokenIn,
          jwt: auth.jwt ? { alg: auth.jwt.alg, expSec: auth.jwt.expSec, claimsTemplate: auth.jwt.claimsTemplate } : undefined,
          headers: Object.keys(auth.headers ?? {}),
        }
      : undefined,
  };
}
