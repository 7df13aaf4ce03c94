import type {
  BackpressureAction,
  Decision,
  Direction,
  EndOutcome,
  Initiator,
  RateLimitAction,
  TlsReloadOutcome,
  UpstreamErrorKind,
} from './names.ts';

export type { BackpressureAction, Decision, Direction, EndOutcome, Initiator, RateLimitAction, UpstreamErrorKind };

/**
 * The one seam between the gateway and telemetry. The gateway calls these hooks at each step of a
 * connection's life; telemetry/ turns them into OpenTelemetry metrics, spans, logs and the
 * monitoring API. Hooks are cheap and must never throw into the gateway.
 *
 * A handshake is observed through the HandshakeObservation `handshakeStarted` returns; an accepted
 * one hands the connection a ConnectionObservation (`accepted()`), which already knows its route
 * and span, so the per-connection hooks look nothing up again.
 *
 * Per-message counts do not go through a hook: the gateway increments plain numbers in the
 * RouteCounters that `routeCounters(route)` hands out once per route, and telemetry reads them from
 * observable instruments (no OTel call per message: docs/architecture.md).
 */
export interface RouteCounters {
  messagesIn: number; // client → upstream
  messagesOut: number; // upstream → client
  bytesIn: number;
  bytesOut: number;
}

export interface ConnectionSummary {
  code: number;
  initiator: Initiator;
  durationMs: number;
  messagesIn: number;
  messagesOut: number;
}

/** Where a dial goes, for the dial span (OTel `server.address` / `server.port`). */
export interface DialTarget {
  address: string;
  port: number;
}

export interface HandshakeObservation {
  /** The upstream dial begins (child span); returns headers for the dial request (W3C traceparent/tracestate), possibly none. */
  dialStarted(target: DialTarget): Record<string, string>;
  /** The upstream dial ended (child span). `error` is a GatewayError code when it failed. */
  dialEnded(error?: string): void;
  /** The handshake ended without a connection: a rejection's metric reason and the deciding policy, or client_abort. */
  end(outcome: EndOutcome, policy?: string): void;
  /** The handshake was accepted: the handle the connection reports through from now on. */
  accepted(): ConnectionObservation;
}

/** One admitted connection, from its accept to its close. Every method is cheap and never throws. */
export interface ConnectionObservation {
  /** The client's socket opened (counted as accepted and active from here). */
  opened(): void;
  rateLimited(action: RateLimitAction): void;
  backpressure(direction: Direction, action: BackpressureAction): void;
  /** A peer went over messages.controlFramesPerSec and was closed; `direction` says which peer sent them. */
  controlFramesLimited(direction: Direction): void;
  /** The open upstream leg failed (wsguard_upstream_errors_total{kind}). */
  upstreamFailed(kind: UpstreamErrorKind): void;
  /** The connection ended; called once, also when it never opened (then only its span ends). */
  closed(summary: ConnectionSummary): void;
}

export interface GatewayObserver {
  routeCounters(route: string): RouteCounters;
  handshakeStarted(route: string, traceparent: string | undefined, tracestate: string | undefined): HandshakeObservation;
  /** A policy rejected (or, in dry-run, would have rejected) a handshake. `clientKey` is for in-memory top-K only. */
  rejected(route: string, reason: string, decision: Decision, clientKey: string): void;
  /** An upstream dial failed (before any connection existed). */
  upstreamError(route: string, kind: UpstreamErrorKind): void;
  /** A JWKS fetch finished (auth policy with a remote key set). */
  jwksRefreshed(outcome: 'success' | 'failure'): void;
  /** A limit-store operation failed (`store`: 'memory' | 'redis'). */
  limitStoreError(store: string): void;
  /** The limit store entered (true) or left (false) its degraded mode. */
  limitStoreDegraded(store: string, degraded: boolean): void;
  /** Registers the reader of how many client keys the limit store tracks (wsguard_tracked_clients). */
  trackedClientsSource(read: () => number): void;
  /** Registers the reader of the gateway's pending sockets and the process's fd budget (read at collection). */
  gatewayStateSource(read: () => GatewayState): void;
  /** A TLS certificate reload ended (server.tls). */
  tlsReloaded(outcome: TlsReloadOutcome): void;
  /** Registers the reader of the served certificates' not-after times (server.tls). */
  tlsCertificatesSource(read: () => readonly TlsCertificateInfo[]): void;
}

export interface TlsCertificateInfo {
  serverName: string;
  notAfterMs: number;
}

export interface GatewayState {
  /** Sockets held that are not admitted connections (wsguard_handshakes_pending). */
  handshakesPending: number;
  /** Open file descriptors and the soft limit; null when unknown (non-Linux). */
  fdOpen: number | null;
  fdLimit: number | null;
}

export const NOOP_CONNECTION: ConnectionObservation = {
  opened: () => {},
  rateLimited: () => {},
  backpressure: () => {},
  controlFramesLimited: () => {},
  upstreamFailed: () => {},
  closed: () => {},
};

export const NOOP_HANDSHAKE: HandshakeObservation = {
  dialStarted: () => ({}),
  dialEnded: () => {},
  end: () => {},
  accepted: () => NOOP_CONNECTION,
};

/** Used when telemetry is off and in tests of the gateway alone; counters still count. */
export function createNoopObserver(): GatewayObserver {
  const counters = new Map<string, RouteCounters>();
  return {
    routeCounters(route) {
      let c = counters.get(route);
      if (!c) {
        c = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0 };
        counters.set(route, c);
      }
      return c;
    },
    handshakeStarted: () => NOOP_HANDSHAKE,
    rejected: () => {},
    upstreamError: () => {},
    jwksRefreshed: () => {},
    limitStoreError: () => {},
    limitStoreDegraded: () => {},
    trackedClientsSource: () => {},
    gatewayStateSource: () => {},
    tlsReloaded: () => {},
    tlsCertificatesSource: () => {},
  };
}
