import { performance } from 'node:perf_hooks';
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  defaultTextMapGetter,
  defaultTextMapSetter,
  trace,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { Logger } from 'pino';
import type { LiveStats } from '../monitoring/live-stats.ts';
import type { GatewayMetrics, RouteState } from './gateway-metrics.ts';
import { ACCEPTED, SPAN_ATTR, SPANS } from './names.ts';
import type {
  ConnectionSummary,
  Decision,
  Direction,
  GatewayObserver,
  GatewayState,
  HandshakeObservation,
  RouteCounters,
} from './observer.ts';
import type { RejectionLog } from './rejection-log.ts';

const propagator = new W3CTraceContextPropagator();

/** Rejections the gateway itself (or its upstream) caused: span status ERROR. Client-caused ones are not errors (OTel HTTP semconv: 4xx on a server span). */
const SERVER_FAULTS = new Set([
  'upstream_unavailable',
  'upstream_timeout',
  'handshake_timeout',
  'store_unavailable',
  'store_full',
  'auth_unavailable',
]);

export interface TelemetryObserverDeps {
  metrics: GatewayMetrics;
  stats: LiveStats;
  rejectionLog: RejectionLog;
  logger: Logger;
  /** undefined: tracing off; a client's traceparent is then passed to the upstream unchanged. */
  tracer: Tracer | undefined;
  /** Cap on rate-limit and backpressure span events per second, across all connections. */
  violationEventsPerSec: number;
}

/**
 * The OpenTelemetry implementation of the gateway seam. Every hook catches its own failures and
 * logs them (at most once a minute per hook): telemetry must never break a connection.
 */
export class TelemetryObserver implements GatewayObserver {
  readonly #d: TelemetryObserverDeps;
  readonly #failedAt = new Map<string, number>();
  #eventSecond = 0;
  #eventsThisSecond = 0;
  readonly #openSpans = new Set<HandshakeTrace>();

  constructor(deps: TelemetryObserverDeps) {
    this.#d = deps;
  }

  get tracer(): Tracer | undefined {
    return this.#d.tracer;
  }

  /** Logs a hook failure without flooding: once a minute per hook. */
  fail(hook: string, err: unknown): void {
    const now = Date.now();
    const last = this.#failedAt.get(hook) ?? 0;
    if (now - last < 60_000) return;
    this.#failedAt.set(hook, now);
    this.#d.logger.error({ event: 'telemetry_hook_failed', hook, err }, 'telemetry hook failed; the gateway continues');
  }

  /** Global per-second budget for violation span events; a flood must not become a span flood. */
  takeEventBudget(): boolean {
    const second = Math.floor(Date.now() / 1000);
    if (second !== this.#eventSecond) {
      this.#eventSecond = second;
      this.#eventsThisSecond = 0;
    }
    if (this.#eventsThisSecond >= this.#d.violationEventsPerSec) return false;
    this.#eventsThisSecond++;
    return true;
  }

  trackOpen(h: HandshakeTrace, open: boolean): void {
    if (open) this.#openSpans.add(h);
    else this.#openSpans.delete(h);
  }

  /** At shutdown: ends the spans of connections still open so that they are exported. */
  endOpenSpans(): void {
    for (const h of this.#openSpans) h.endConnectionSpan(undefined);
    this.#openSpans.clear();
  }

  routeCounters(route: string): RouteCounters {
    try {
      return this.#d.metrics.route(route).counters;
    } catch (err) {
      this.fail('routeCounters', err);
      // Detached numbers: the gateway keeps counting, the scrape just does not see them.
      return { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0 };
    }
  }

  handshakeStarted(route: string, traceparent: string | undefined, tracestate: string | undefined): HandshakeObservation {
    try {
      const state = this.#d.metrics.route(route);
      let parent = ROOT_CONTEXT;
      if (traceparent) {
        const carrier: Record<string, string> = { traceparent };
        if (tracestate) carrier.tracestate = tracestate;
        parent = propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter);
      }
      const span = this.#d.tracer?.startSpan(
        SPANS.handshake,
        { kind: SpanKind.SERVER, attributes: { [SPAN_ATTR.route]: state.route } },
        parent,
      );
      return new HandshakeTrace(this, this.#d, state, parent, span);
    } catch (err) {
      this.fail('handshakeStarted', err);
      return NOOP_HANDSHAKE;
    }
  }

  rejected(route: string, reason: string, decision: Decision, clientKey: string): void {
    try {
      const state = this.#d.metrics.route(route);
      this.#d.metrics.rejected(state, reason, decision);
      this.#d.stats.rejected(reason, decision, clientKey);
      this.#d.rejectionLog.record({ route: state.route, reason, decision, client: clientKey });
    } catch (err) {
      this.fail('rejected', err);
    }
  }

  connectionOpened(route: string): void {
    try {
      const state = this.#d.metrics.route(route);
      state.active++;
      this.#d.metrics.accepted(state);
      this.#d.stats.connectionOpened();
    } catch (err) {
      this.fail('connectionOpened', err);
    }
  }

  connectionClosed(summary: ConnectionSummary): void {
    try {
      const state = this.#d.metrics.route(summary.route);
      // Clamped: a close reported without an open (e.g. a rejectWith:close socket) must not drive the gauge negative.
      if (state.active > 0) state.active--;
      this.#d.metrics.closed(state, summary.code, summary.initiator, summary.durationMs / 1000);
      this.#d.stats.connectionClosed(summary.durationMs);
      const h = summary.handshake;
      if (h instanceof HandshakeTrace) h.endConnectionSpan(summary);
      else if (this.#d.tracer) HandshakeTrace.standaloneConnectionSpan(this.#d.tracer, state, summary);
    } catch (err) {
      this.fail('connectionClosed', err);
    }
  }

  messageRateLimited(route: string, action: 'drop' | 'close', handshake?: HandshakeObservation): void {
    try {
      this.#d.metrics.rateLimited(this.#d.metrics.route(route), action);
      if (handshake instanceof HandshakeTrace) handshake.violation(SPANS.rateLimitedEvent, { [SPAN_ATTR.action]: action });
    } catch (err) {
      this.fail('messageRateLimited', err);
    }
  }

  backpressure(route: string, direction: Direction, action: 'pause' | 'close', handshake?: HandshakeObservation): void {
    try {
      this.#d.metrics.backpressure(this.#d.metrics.route(route), direction, action);
      if (handshake instanceof HandshakeTrace) handshake.violation(SPANS.backpressureEvent, { [SPAN_ATTR.action]: action });
    } catch (err) {
      this.fail('backpressure', err);
    }
  }

  controlFramesLimited(route: string, direction: Direction): void {
    try {
      this.#d.metrics.controlFramesLimited(this.#d.metrics.route(route), direction);
    } catch (err) {
      this.fail('controlFramesLimited', err);
    }
  }

  upstreamError(route: string, kind: string): void {
    try {
      this.#d.metrics.upstreamError(this.#d.metrics.route(route), kind);
    } catch (err) {
      this.fail('upstreamError', err);
    }
  }

  jwksRefreshed(outcome: 'success' | 'failure'): void {
    try {
      this.#d.metrics.jwksRefreshed(outcome);
    } catch (err) {
      this.fail('jwksRefreshed', err);
    }
  }

  limitStoreError(store: string): void {
    try {
      this.#d.metrics.limitStoreError(store);
    } catch (err) {
      this.fail('limitStoreError', err);
    }
  }

  limitStoreDegraded(store: string, degraded: boolean): void {
    try {
      this.#d.metrics.limitStoreDegraded(store, degraded);
      this.#d.logger.warn({ event: 'limit_store_degraded', store, degraded }, degraded ? 'limit store degraded' : 'limit store recovered');
    } catch (err) {
      this.fail('limitStoreDegraded', err);
    }
  }

  gatewayStateSource(read: () => GatewayState): void {
    this.#d.metrics.gatewayStateSource(() => {
      try {
        return read();
      } catch (err) {
        this.fail('gatewayStateSource.read', err);
        return { handshakesPending: 0, fdOpen: null, fdLimit: null };
      }
    });
  }

  trackedClientsSource(read: () => number): void {
    try {
      this.#d.metrics.trackedClientsSource(() => {
        try {
          return read();
        } catch (err) {
          this.fail('trackedClientsSource.read', err);
          return 0;
        }
      });
    } catch (err) {
      this.fail('trackedClientsSource', err);
    }
  }
}

const NOOP_HANDSHAKE: HandshakeObservation = {
  upstreamHeaders: () => ({}),
  dialStarted: () => {},
  dialEnded: () => {},
  end: () => {},
};

/** One handshake: its span, the upstream dial child span, and later the connection span. */
class HandshakeTrace implements HandshakeObservation {
  readonly #owner: TelemetryObserver;
  readonly #d: TelemetryObserverDeps;
  readonly #state: RouteState;
  readonly #parent: Context;
  readonly #span: Span | undefined;
  readonly #startedAt = performance.now();
  #dial: Span | undefined;
  #ended = false;
  #conn: Span | undefined;
  #droppedEvents = 0;

  constructor(owner: TelemetryObserver, d: TelemetryObserverDeps, state: RouteState, parent: Context, span: Span | undefined) {
    this.#owner = owner;
    this.#d = d;
    this.#state = state;
    this.#parent = parent;
    this.#span = span;
  }

  #startDial(): Span | undefined {
    if (!this.#dial && this.#span && this.#d.tracer) {
      this.#dial = this.#d.tracer.startSpan(
        SPANS.upstreamDial,
        { kind: SpanKind.CLIENT, attributes: { [SPAN_ATTR.route]: this.#state.route } },
        trace.setSpan(this.#parent, this.#span),
      );
    }
    return this.#dial;
  }

  upstreamHeaders(): Record<string, string> {
    try {
      const headers: Record<string, string> = {};
      // The upstream's server span is the child of our dial (client) span. With tracing off the
      // client's own context (if valid) passes through unchanged.
      const dial = this.#startDial();
      const ctx = dial ? trace.setSpan(this.#parent, dial) : this.#parent;
      propagator.inject(ctx, headers, defaultTextMapSetter);
      return headers;
    } catch (err) {
      this.#owner.fail('upstreamHeaders', err);
      return {};
    }
  }

  dialStarted(): void {
    try {
      this.#startDial();
    } catch (err) {
      this.#owner.fail('dialStarted', err);
    }
  }

  dialEnded(error?: string): void {
    try {
      const dial = this.#dial;
      if (!dial) return;
      this.#dial = undefined;
      if (error) {
        dial.setAttribute(SPAN_ATTR.dialError, error);
        dial.setStatus({ code: SpanStatusCode.ERROR, message: error });
      }
      dial.end();
    } catch (err) {
      this.#owner.fail('dialEnded', err);
    }
  }

  end(outcome: string, policy?: string): void {
    try {
      if (this.#ended) return;
      this.#ended = true;
      const seconds = (performance.now() - this.#startedAt) / 1000;
      this.#d.metrics.handshakeDuration(this.#state, seconds, outcome);
      // A dial the gateway forgot to end must not leak.
      if (this.#dial) this.dialEnded(outcome === ACCEPTED ? undefined : outcome);
      const span = this.#span;
      if (!span) return;
      span.setAttribute(SPAN_ATTR.outcome, outcome);
      if (policy) span.setAttribute(SPAN_ATTR.policy, policy);
      if (SERVER_FAULTS.has(outcome)) span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
      span.end();
      if (outcome === ACCEPTED && this.#d.tracer) {
        this.#conn = this.#d.tracer.startSpan(
          SPANS.connection,
          { kind: SpanKind.SERVER, attributes: { [SPAN_ATTR.route]: this.#state.route } },
          trace.setSpan(this.#parent, span),
        );
        this.#owner.trackOpen(this, true);
      }
    } catch (err) {
      this.#owner.fail('end', err);
    }
  }

  violation(name: string, attributes: Record<string, string>): void {
    if (!this.#conn) return;
    if (this.#owner.takeEventBudget()) this.#conn.addEvent(name, attributes);
    else this.#droppedEvents++;
  }

  /** summary undefined: the process is shutting down with the connection still open. */
  endConnectionSpan(summary: ConnectionSummary | undefined): void {
    const conn = this.#conn;
    if (!conn) return;
    this.#conn = undefined;
    this.#owner.trackOpen(this, false);
    if (summary) HandshakeTrace.#closeAttributes(conn, summary);
    if (this.#droppedEvents > 0) conn.setAttribute(SPAN_ATTR.eventsDropped, this.#droppedEvents);
    conn.end();
  }

  static #closeAttributes(span: Span, s: ConnectionSummary): void {
    span.setAttributes({
      [SPAN_ATTR.closeCode]: s.code,
      [SPAN_ATTR.initiator]: s.initiator,
      [SPAN_ATTR.durationSec]: s.durationMs / 1000,
      [SPAN_ATTR.messagesIn]: s.messagesIn,
      [SPAN_ATTR.messagesOut]: s.messagesOut,
    });
    if (s.code === 1011 || s.code === 1014) span.setStatus({ code: SpanStatusCode.ERROR, message: `close ${s.code}` });
  }

  /** The gateway did not pass the handshake back: a root span covering the connection's lifetime. */
  static standaloneConnectionSpan(tracer: Tracer, state: RouteState, s: ConnectionSummary): void {
    const end = Date.now();
    const span = tracer.startSpan(
      SPANS.connection,
      { kind: SpanKind.SERVER, startTime: end - s.durationMs, attributes: { [SPAN_ATTR.route]: state.route } },
      ROOT_CONTEXT,
    );
    HandshakeTrace.#closeAttributes(span, s);
    span.end(end);
  }
}
