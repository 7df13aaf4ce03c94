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
import { codeForReason, isServerFault } from '../errors.ts';
import type { LiveStats } from '../monitoring/live-stats.ts';
import { CLOSE } from '../relay/close-codes.ts';
import type { GatewayMetrics, RouteState } from './gateway-metrics.ts';
import { ACCEPTED, SPAN_ATTR, SPANS, type HandshakeOutcome, type TlsReloadOutcome } from './names.ts';
import {
  NOOP_CONNECTION,
  NOOP_HANDSHAKE,
  type BackpressureAction,
  type ConnectionObservation,
  type ConnectionSummary,
  type Decision,
  type DialTarget,
  type Direction,
  type EndOutcome,
  type GatewayObserver,
  type GatewayState,
  type HandshakeObservation,
  type RateLimitAction,
  type RouteCounters,
  type TlsCertificateInfo,
  type UpstreamErrorKind,
} from './observer.ts';
import type { RejectionLog } from './rejection-log.ts';
import { safeExecute } from './safe-execute.ts';

const propagator = new W3CTraceContextPropagator();

/** Rejections the gateway itself (or its upstream) caused get span status ERROR; the blame is the error catalogue's (src/errors.ts). */
function isServerFaultOutcome(outcome: HandshakeOutcome): boolean {
  const code = codeForReason(outcome);
  return code !== undefined && isServerFault(code);
}

/** Close codes that say the gateway or the upstream failed: span status ERROR on the connection span. */
const SERVER_FAULT_CLOSES: ReadonlySet<number> = new Set([CLOSE.internalError, CLOSE.badGateway]);

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
 * The OpenTelemetry implementation of the gateway seam. Every hook runs through `safe` (one
 * never-throw wrapper) and a failure is logged at most once a minute per hook: telemetry must never
 * break a connection.
 */
export class TelemetryObserver implements GatewayObserver {
  readonly #d: TelemetryObserverDeps;
  readonly #failedAt = new Map<string, number>();
  #eventSecond = 0;
  #eventsThisSecond = 0;
  readonly #openSpans = new Set<ConnectionTrace>();

  constructor(deps: TelemetryObserverDeps) {
    this.#d = deps;
  }

  /** Logs a hook failure without flooding: once a minute per hook. */
  fail(hook: string, err: unknown): void {
    const now = Date.now();
    const last = this.#failedAt.get(hook) ?? 0;
    if (now - last < 60_000) return;
    this.#failedAt.set(hook, now);
    this.#d.logger.error({ event: 'telemetry_hook_failed', hook, err }, 'telemetry hook failed; the gateway continues');
  }

  /** Runs one hook; a throw is logged (see `fail`) and `fallback` returned. */
  safe<T>(hook: string, fallback: T, execute: () => T): T {
    return safeExecute(execute, (err) => this.fail(hook, err), fallback);
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

  trackOpen(c: ConnectionTrace, open: boolean): void {
    if (open) this.#openSpans.add(c);
    else this.#openSpans.delete(c);
  }

  /** At shutdown: ends the spans of connections still open so that they are exported. */
  endOpenSpans(): void {
    for (const c of this.#openSpans) c.endSpan(undefined);
    this.#openSpans.clear();
  }

  routeCounters(route: string): RouteCounters {
    // Detached numbers on failure: the gateway keeps counting, the scrape just does not see them.
    return this.safe(
      'routeCounters',
      { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0 },
      () => this.#d.metrics.route(route).counters,
    );
  }

  handshakeStarted(route: string, traceparent: string | undefined, tracestate: string | undefined): HandshakeObservation {
    return this.safe('handshakeStarted', NOOP_HANDSHAKE, () => {
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
    });
  }

  rejected(route: string, reason: string, decision: Decision, clientKey: string): void {
    this.safe('rejected', undefined, () => {
      const state = this.#d.metrics.route(route);
      this.#d.metrics.rejected(state, reason, decision);
      this.#d.stats.rejected(reason, decision, clientKey);
      this.#d.rejectionLog.record({ route: state.route, reason, decision, client: clientKey });
    });
  }

  upstreamError(route: string, kind: UpstreamErrorKind): void {
    this.safe('upstreamError', undefined, () => this.#d.metrics.upstreamError(this.#d.metrics.route(route), kind));
  }

  jwksRefreshed(outcome: 'success' | 'failure'): void {
    this.safe('jwksRefreshed', undefined, () => this.#d.metrics.jwksRefreshed(outcome));
  }

  limitStoreError(store: string): void {
    this.safe('limitStoreError', undefined, () => this.#d.metrics.limitStoreError(store));
  }

  limitStoreDegraded(store: string, degraded: boolean): void {
    this.safe('limitStoreDegraded', undefined, () => {
      this.#d.metrics.limitStoreDegraded(store, degraded);
      this.#d.logger.warn({ event: 'limit_store_degraded', store, degraded }, degraded ? 'limit store degraded' : 'limit store recovered');
    });
  }

  gatewayStateSource(read: () => GatewayState): void {
    this.safe('gatewayStateSource', undefined, () =>
      this.#d.metrics.gatewayStateSource(() =>
        this.safe('gatewayStateSource.read', { handshakesPending: 0, fdOpen: null, fdLimit: null }, read),
      ),
    );
  }

  trackedClientsSource(read: () => number): void {
    this.safe('trackedClientsSource', undefined, () =>
      this.#d.metrics.trackedClientsSource(() => this.safe('trackedClientsSource.read', 0, read)),
    );
  }

  tlsReloaded(outcome: TlsReloadOutcome): void {
    this.safe('tlsReloaded', undefined, () => this.#d.metrics.tlsReloaded(outcome));
  }

  tlsCertificatesSource(read: () => readonly TlsCertificateInfo[]): void {
    this.safe('tlsCertificatesSource', undefined, () =>
      this.#d.metrics.tlsCertificatesSource(() => this.safe('tlsCertificatesSource.read', [], read)),
    );
  }
}

/** One handshake: its span and the upstream dial child span; `accepted()` hands on to the connection. */
class HandshakeTrace implements HandshakeObservation {
  readonly #owner: TelemetryObserver;
  readonly #d: TelemetryObserverDeps;
  readonly #state: RouteState;
  readonly #parent: Context;
  readonly #span: Span | undefined;
  readonly #startedAt = performance.now();
  #dial: Span | undefined;
  #ended = false;

  constructor(owner: TelemetryObserver, d: TelemetryObserverDeps, state: RouteState, parent: Context, span: Span | undefined) {
    this.#owner = owner;
    this.#d = d;
    this.#state = state;
    this.#parent = parent;
    this.#span = span;
  }

  dialStarted(target: DialTarget): Record<string, string> {
    return this.#owner.safe('dialStarted', {}, () => {
      if (!this.#dial && this.#span && this.#d.tracer) {
        this.#dial = this.#d.tracer.startSpan(
          SPANS.upstreamDial,
          {
            kind: SpanKind.CLIENT,
            attributes: {
              [SPAN_ATTR.route]: this.#state.route,
              [SPAN_ATTR.serverAddress]: target.address,
              [SPAN_ATTR.serverPort]: target.port,
            },
          },
          trace.setSpan(this.#parent, this.#span),
        );
      }
      const headers: Record<string, string> = {};
      // The upstream's server span is the child of our dial (client) span. With tracing off the
      // client's own context (if valid) passes through unchanged.
      const ctx = this.#dial ? trace.setSpan(this.#parent, this.#dial) : this.#parent;
      propagator.inject(ctx, headers, defaultTextMapSetter);
      return headers;
    });
  }

  dialEnded(error?: string): void {
    this.#owner.safe('dialEnded', undefined, () => {
      const dial = this.#dial;
      if (!dial) return;
      this.#dial = undefined;
      if (error) {
        dial.setAttribute(SPAN_ATTR.dialError, error);
        dial.setStatus({ code: SpanStatusCode.ERROR, message: error });
      }
      dial.end();
    });
  }

  /** Ends the handshake span with `outcome`; returns it, or undefined when tracing is off or it had already ended. */
  #finish(outcome: HandshakeOutcome, policy?: string): Span | undefined {
    if (this.#ended) return undefined;
    this.#ended = true;
    const seconds = (performance.now() - this.#startedAt) / 1000;
    this.#d.metrics.handshakeDuration(this.#state, seconds, outcome);
    // A dial the gateway forgot to end must not leak.
    if (this.#dial) this.dialEnded(outcome === ACCEPTED ? undefined : outcome);
    const span = this.#span;
    if (!span) return undefined;
    span.setAttribute(SPAN_ATTR.outcome, outcome);
    if (policy) span.setAttribute(SPAN_ATTR.policy, policy);
    if (isServerFaultOutcome(outcome)) span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
    span.end();
    return span;
  }

  end(outcome: EndOutcome, policy?: string): void {
    this.#owner.safe('end', undefined, () => void this.#finish(outcome, policy));
  }

  accepted(): ConnectionObservation {
    return this.#owner.safe('accepted', NOOP_CONNECTION, () => {
      const ended = this.#ended;
      const span = this.#finish(ACCEPTED);
      if (ended) return NOOP_CONNECTION;
      const conn =
        span && this.#d.tracer
          ? this.#d.tracer.startSpan(
              SPANS.connection,
              { kind: SpanKind.SERVER, attributes: { [SPAN_ATTR.route]: this.#state.route } },
              trace.setSpan(this.#parent, span),
            )
          : undefined;
      const handle = new ConnectionTrace(this.#owner, this.#d, this.#state, conn);
      if (conn) this.#owner.trackOpen(handle, true);
      return handle;
    });
  }
}

/** One admitted connection: its metrics and its span (a child of the handshake span). */
class ConnectionTrace implements ConnectionObservation {
  readonly #owner: TelemetryObserver;
  readonly #d: TelemetryObserverDeps;
  readonly #state: RouteState;
  #span: Span | undefined;
  #opened = false;
  #droppedEvents = 0;

  constructor(owner: TelemetryObserver, d: TelemetryObserverDeps, state: RouteState, span: Span | undefined) {
    this.#owner = owner;
    this.#d = d;
    this.#state = state;
    this.#span = span;
  }

  opened(): void {
    this.#owner.safe('opened', undefined, () => {
      if (this.#opened) return;
      this.#opened = true;
      this.#state.active++;
      this.#d.metrics.accepted(this.#state);
      this.#d.stats.connectionOpened();
    });
  }

  rateLimited(action: RateLimitAction): void {
    this.#owner.safe('rateLimited', undefined, () => {
      this.#d.metrics.rateLimited(this.#state, action);
      this.#violation(SPANS.rateLimitedEvent, { [SPAN_ATTR.action]: action });
    });
  }

  backpressure(direction: Direction, action: BackpressureAction): void {
    this.#owner.safe('backpressure', undefined, () => {
      this.#d.metrics.backpressure(this.#state, direction, action);
      this.#violation(SPANS.backpressureEvent, { [SPAN_ATTR.action]: action });
    });
  }

  controlFramesLimited(direction: Direction): void {
    this.#owner.safe('controlFramesLimited', undefined, () => this.#d.metrics.controlFramesLimited(this.#state, direction));
  }

  upstreamFailed(kind: UpstreamErrorKind): void {
    this.#owner.safe('upstreamFailed', undefined, () => this.#d.metrics.upstreamError(this.#state, kind));
  }

  closed(summary: ConnectionSummary): void {
    this.#owner.safe('closed', undefined, () => {
      if (this.#opened) {
        this.#opened = false;
        // Clamped: the gauge must never go negative whatever order hooks arrive in.
        if (this.#state.active > 0) this.#state.active--;
        this.#d.metrics.closed(this.#state, summary.code, summary.initiator, summary.durationMs / 1000);
        this.#d.stats.connectionClosed(summary.durationMs);
      }
      this.endSpan(summary);
    });
  }

  #violation(name: string, attributes: Record<string, string>): void {
    if (!this.#span) return;
    if (this.#owner.takeEventBudget()) this.#span.addEvent(name, attributes);
    else this.#droppedEvents++;
  }

  /** summary undefined: the process is shutting down with the connection still open. */
  endSpan(summary: ConnectionSummary | undefined): void {
    const span = this.#span;
    if (!span) return;
    this.#span = undefined;
    this.#owner.trackOpen(this, false);
    if (summary) {
      span.setAttributes({
        [SPAN_ATTR.closeCode]: summary.code,
        [SPAN_ATTR.initiator]: summary.initiator,
        [SPAN_ATTR.durationSec]: summary.durationMs / 1000,
        [SPAN_ATTR.messagesIn]: summary.messagesIn,
        [SPAN_ATTR.messagesOut]: summary.messagesOut,
      });
      if (SERVER_FAULT_CLOSES.has(summary.code)) span.setStatus({ code: SpanStatusCode.ERROR, message: `close ${summary.code}` });
    }
    if (this.#droppedEvents > 0) span.setAttribute(SPAN_ATTR.eventsDropped, this.#droppedEvents);
    span.end();
  }
}
