import type { Attributes, Counter, Histogram, Meter, ObservableResult } from '@opentelemetry/api';
import type { Decision, Direction, GatewayState, Initiator, RouteCounters, TlsCertificateInfo } from './observer.ts';
import {
  ATTR,
  BACKPRESSURE_ACTIONS,
  CLOSE_CODES,
  CONNECTION_DURATION_BUCKETS_SEC,
  DECISIONS,
  DIRECTIONS,
  HANDSHAKE_DURATION_BUCKETS_SEC,
  INITIATORS,
  INSTRUMENTS as I,
  JWKS_OUTCOMES,
  LIMIT_STORES,
  MAX_ROUTES,
  OTHER,
  OUTCOMES,
  RATE_LIMIT_ACTIONS,
  REASONS,
  TLS_RELOAD_OUTCOMES,
  UPSTREAM_ERROR_KINDS,
  type Reason,
} from './names.ts';

/** Per-route plain numbers: the gateway writes them on the hot path, observable instruments read them. */
export interface RouteState {
  readonly route: string;
  readonly counters: RouteCounters;
  active: number;
  accepted: number;
  /** Rejections by [reason index (REJECTION_REASONS)][decision index (DECISIONS)], flattened. */
  readonly rejected: number[];
}

/** The reason label values a rejection may carry: the known reasons, then `other`. */
const REJECTION_REASONS: readonly string[] = [...REASONS, OTHER];

function oneOf(allowed: readonly string[], value: string): string {
  return allowed.includes(value) ? value : OTHER;
}

const CLOSE_CODE_LABELS = new Map(CLOSE_CODES.map((c) => [c, String(c)]));

/**
 * The contract metrics (docs/metrics.md). Hook-rate events (a handshake, a close, a
 * rejection) use synchronous instruments; per-message counts and the active gauge are observed from
 * plain numbers at collection time, so the message path makes no OpenTelemetry call.
 *
 * Every attribute value goes through an allow-list (names.ts) so that a caller passing an unexpected
 * string can never grow the label set: unknown values become `other`.
 */
export class GatewayMetrics {
  /** label → state */
  readonly #routes = new Map<string, RouteState>();
  /** name the gateway passed → state */
  readonly #byName = new Map<string, RouteState>();
  readonly #degraded = new Map<string, number>();
  #trackedClients: (() => number) | undefined;
  #gatewayState: (() => GatewayState) | undefined;
  #tlsCertificates: (() => readonly TlsCertificateInfo[]) | undefined;
  readonly #tlsReload: Counter;
  readonly #closed: Counter;
  readonly #connectionDuration: Histogram;
  readonly #handshakeDuration: Histogram;
  readonly #rateLimited: Counter;
  readonly #backpressure: Counter;
  readonly #controlFramesLimited: Counter;
  readonly #upstreamErrors: Counter;
  readonly #jwksRefresh: Counter;
  readonly #storeErrors: Counter;

  constructor(meter: Meter) {
    // Counted locally and read at collection, like the message counters: a Counter.add hashes its
    // attributes on every call, which was 13% of the gateway's JavaScript time per 429 under an
    // attempt flood (node --cpu-prof). The series start at 0 (rate() and absent() work from start-up).
    const accepted = meter.createObservableCounter(I.connectionsAccepted, { description: 'Handshakes answered with 101' });
    accepted.addCallback((r) => {
      for (const s of this.#routes.values()) r.observe(s.accepted, { [ATTR.route]: s.route });
    });
    const rejected = meter.createObservableCounter(I.connectionsRejected, {
      description: 'Handshakes rejected by a policy (decision=dry_run: would have been rejected)',
    });
    rejected.addCallback((r) => {
      for (const s of this.#routes.values()) {
        s.rejected.forEach((n, i) => {
          const reason = REJECTION_REASONS[Math.floor(i / DECISIONS.length)]!;
          const decision = DECISIONS[i % DECISIONS.length]!;
          // Enforced rejections of every known reason from 0; `other` and dry runs once they happen.
          if (n > 0 || (decision === DECISIONS[0] && reason !== OTHER)) {
            r.observe(n, { [ATTR.route]: s.route, [ATTR.reason]: reason, [ATTR.decision]: decision });
          }
        });
      }
    });
    this.#closed = meter.createCounter(I.connectionsClosed, { description: 'Connections closed after open, by close code and initiator' });
    this.#connectionDuration = meter.createHistogram(I.connectionDuration, {
      description: 'Lifetime of closed connections',
      unit: 's',
      advice: { explicitBucketBoundaries: [...CONNECTION_DURATION_BUCKETS_SEC] },
    });
    this.#handshakeDuration = meter.createHistogram(I.handshakeDuration, {
      description: 'Upgrade request to 101 or rejection, upstream dial included',
      unit: 's',
      advice: { explicitBucketBoundaries: [...HANDSHAKE_DURATION_BUCKETS_SEC] },
    });
    this.#rateLimited = meter.createCounter(I.messagesRateLimited, { description: 'Client messages over the per-connection rate limit' });
    this.#backpressure = meter.createCounter(I.backpressure, { description: 'Backpressure episodes: a side paused or closed' });
    this.#controlFramesLimited = meter.createCounter(I.controlFramesLimited, {
      description: 'Connections closed because a peer sent ping/pong frames over messages.controlFramesPerSec',
    });
    this.#upstreamErrors = meter.createCounter(I.upstreamErrors, { description: 'Upstream dial and connection failures' });
    this.#jwksRefresh = meter.createCounter(I.jwksRefresh, { description: 'JWKS fetches by outcome' });
    this.#storeErrors = meter.createCounter(I.limitStoreErrors, { description: 'Limit store operations that failed' });
    this.#tlsReload = meter.createCounter(I.tlsReload, {
      description: 'TLS certificate reloads by outcome (error: the old pairs keep serving)',
    });
    const expiry = meter.createObservableGauge(I.tlsCertificateExpiry, {
      description: 'Not-after of each served certificate, Unix seconds',
      unit: 's',
    });
    expiry.addCallback((r) => {
      for (const c of this.#tlsCertificates?.() ?? []) r.observe(Math.floor(c.notAfterMs / 1000), { [ATTR.serverName]: c.serverName });
    });

    const active = meter.createObservableGauge(I.connectionsActive, { description: 'Open client connections' });
    active.addCallback((r: ObservableResult) => {
      for (const s of this.#routes.values()) r.observe(s.active, { [ATTR.route]: s.route });
    });
    const messages = meter.createObservableCounter(I.messages, { description: 'Messages relayed, by direction' });
    messages.addCallback((r) => {
      for (const s of this.#routes.values()) {
        r.observe(s.counters.messagesIn, { [ATTR.route]: s.route, [ATTR.direction]: DIRECTIONS[0] });
        r.observe(s.counters.messagesOut, { [ATTR.route]: s.route, [ATTR.direction]: DIRECTIONS[1] });
      }
    });
    const bytes = meter.createObservableCounter(I.messageBytes, { description: 'Payload bytes relayed, by direction', unit: 'By' });
    bytes.addCallback((r) => {
      for (const s of this.#routes.values()) {
        r.observe(s.counters.bytesIn, { [ATTR.route]: s.route, [ATTR.direction]: DIRECTIONS[0] });
        r.observe(s.counters.bytesOut, { [ATTR.route]: s.route, [ATTR.direction]: DIRECTIONS[1] });
      }
    });
    const degraded = meter.createObservableGauge(I.limitStoreDegraded, {
      description: '1 while the limit store is unavailable and wsguard runs on its degraded policy',
    });
    degraded.addCallback((r) => {
      for (const [store, v] of this.#degraded) r.observe(v, { [ATTR.store]: store });
    });
    const tracked = meter.createObservableGauge(I.trackedClients, { description: 'Client keys the limit store currently tracks' });
    tracked.addCallback((r) => {
      if (this.#trackedClients) r.observe(this.#trackedClients());
    });
    const pending = meter.createObservableGauge(I.handshakesPending, {
      description: 'Sockets held that are not admitted connections: handshakes in progress and rejection closes',
    });
    const openFds = meter.createObservableGauge(I.openFds, { description: 'Open file descriptors of the process' });
    const fdLimit = meter.createObservableGauge(I.fdLimit, { description: 'Soft limit on open file descriptors (RLIMIT_NOFILE)' });
    meter.addBatchObservableCallback(
      (r) => {
        const state = this.#gatewayState?.();
        if (!state) return;
        r.observe(pending, state.handshakesPending);
        if (state.fdOpen !== null) r.observe(openFds, state.fdOpen);
        if (state.fdLimit !== null) r.observe(fdLimit, state.fdLimit);
      },
      [pending, openFds, fdLimit],
    );
  }

  /** Route label value: bounded count, query string never included. */
  route(route: string): RouteState {
    const hit = this.#byName.get(route);
    if (hit) return hit;
    const q = route.indexOf('?');
    const clean = q === -1 ? route : route.slice(0, q);
    const label = this.#routes.has(clean) || this.#routes.size < MAX_ROUTES ? clean : OTHER;
    let state = this.#routes.get(label);
    if (!state) {
      state = {
        route: label,
        counters: { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0 },
        active: 0,
        accepted: 0,
        rejected: new Array<number>(REJECTION_REASONS.length * DECISIONS.length).fill(0),
      };
      this.#routes.set(label, state);
    }
    // Remember the raw name so that repeated lookups are one Map hit; bounded like the labels.
    if (this.#byName.size < MAX_ROUTES * 4) this.#byName.set(route, state);
    return state;
  }

  routes(): RouteState[] {
    return [...this.#routes.values()];
  }

  accepted(s: RouteState): void {
    s.accepted++;
  }

  rejected(s: RouteState, reason: string, decision: Decision): void {
    const r = REASONS.indexOf(reason as Reason);
    s.rejected[(r < 0 ? REASONS.length : r) * DECISIONS.length + DECISIONS.indexOf(decision)]!++;
  }

  handshakeDuration(s: RouteState, seconds: number, outcome: string): void {
    const o = oneOf(OUTCOMES, outcome);
    this.#handshakeDuration.record(seconds, { [ATTR.route]: s.route, [ATTR.outcome]: o });
  }

  closed(s: RouteState, code: number, initiator: Initiator, durationSec: number): void {
    const attrs: Attributes = {
      [ATTR.route]: s.route,
      [ATTR.code]: CLOSE_CODE_LABELS.get(code) ?? OTHER,
      [ATTR.initiator]: oneOf(INITIATORS, initiator),
    };
    this.#closed.add(1, attrs);
    this.#connectionDuration.record(Math.max(0, durationSec), { [ATTR.route]: s.route });
  }

  rateLimited(s: RouteState, action: string): void {
    this.#rateLimited.add(1, { [ATTR.route]: s.route, [ATTR.action]: oneOf(RATE_LIMIT_ACTIONS, action) });
  }

  backpressure(s: RouteState, direction: Direction, action: string): void {
    this.#backpressure.add(1, {
      [ATTR.route]: s.route,
      [ATTR.direction]: oneOf(DIRECTIONS, direction),
      [ATTR.action]: oneOf(BACKPRESSURE_ACTIONS, action),
    });
  }

  controlFramesLimited(s: RouteState, direction: Direction): void {
    this.#controlFramesLimited.add(1, { [ATTR.route]: s.route, [ATTR.direction]: oneOf(DIRECTIONS, direction) });
  }

  upstreamError(s: RouteState, kind: string): void {
    this.#upstreamErrors.add(1, { [ATTR.route]: s.route, [ATTR.kind]: oneOf(UPSTREAM_ERROR_KINDS, kind) });
  }

  jwksRefreshed(outcome: string): void {
    this.#jwksRefresh.add(1, { [ATTR.outcome]: oneOf(JWKS_OUTCOMES, outcome) });
  }

  limitStoreError(store: string): void {
    this.#storeErrors.add(1, { [ATTR.store]: oneOf(LIMIT_STORES, store) });
  }

  limitStoreDegraded(store: string, degraded: boolean): void {
    this.#degraded.set(oneOf(LIMIT_STORES, store), degraded ? 1 : 0);
  }

  gatewayStateSource(read: () => GatewayState): void {
    this.#gatewayState = read;
  }

  trackedClientsSource(read: () => number): void {
    this.#trackedClients = read;
  }

  tlsReloaded(outcome: string): void {
    this.#tlsReload.add(1, { [ATTR.outcome]: oneOf(TLS_RELOAD_OUTCOMES, outcome) });
  }

  tlsCertificatesSource(read: () => readonly TlsCertificateInfo[]): void {
    this.#tlsCertificates = read;
  }

  /** Sum over routes, for the monitoring API. */
  totals(): { received: number; sent: number; active: number } {
    let received = 0;
    let sent = 0;
    let active = 0;
    for (const s of this.routes()) {
      received += s.counters.messagesIn;
      sent += s.counters.messagesOut;
      active += s.active;
    }
    return { received, sent, active };
  }
}
