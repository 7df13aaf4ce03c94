/**
 * The one seam between the gateway and telemetry. The gateway calls these hooks at each step of a
 * connection's life; telemetry/ turns them into OpenTelemetry metrics, spans, logs and the
 * monitoring API. Hooks are cheap and must never throw into the gateway.
 *
 * Per-message counts do not go through a hook: the gateway increments plain numbers in the
 * RouteCounters that `routeCounters(route)` hands out once per route, and telemetry reads them from
 * observable instruments (no OTel call per message: docs/architecture.md).
 */
export type Direction = 'client_to_upstream' | 'upstream_to_client';
export type Initiator = 'client' | 'upstream' | 'gateway';
export type Decision = 'enforced' | 'dry_run';

export interface RouteCounters {
  messagesIn: number; // client → upstream
  messagesOut: number; // upstream → client
  bytesIn: number;
  bytesOut: number;
}

export interface ConnectionSummary {
  route: string;
  code: number;
  initiator: Initiator;
  durationMs: number;
  messagesIn: number;
  messagesOut: number;
  /**
   * The observation `handshakeStarted` returned for this connection, when the gateway kept it: the
   * connection span then joins the handshake's trace (and the client's, via its traceparent).
   */
  handshake?: HandshakeObservation;
}

export interface HandshakeObservation {
  /** Headers to add to the upstream dial request (W3C traceparent/tracestate), possibly empty. */
  upstreamHeaders(): Record<string, string>;
  /** The upstream dial began / ended (child span). `error` is a GatewayError code when it failed. */
  dialStarted(): void;
  dialEnded(error?: string): void;
  /** The handshake finished: 'accepted', or the metric reason of the rejection and the policy that decided. */
  end(outcome: string, policy?: string): void;
}

export interface GatewayObserver {
  routeCounters(route: string): RouteCounters;
  handshakeStarted(route: string, traceparent: string | undefined, tracestate: string | undefined): HandshakeObservation;
  /** A policy rejected (or, in dry-run, would have rejected) a handshake. `clientKey` is for in-memory top-K only. */
  rejected(route: string, reason: string, decision: Decision, clientKey: string): void;
  connectionOpened(route: string): void;
  connectionClosed(summary: ConnectionSummary): void;
  /** `handshake` (optional) lets a sampled span event land on the connection's span. */
  messageRateLimited(route: string, action: 'drop' | 'close', handshake?: HandshakeObservation): void;
  backpressure(route: string, direction: Direction, action: 'pause' | 'close', handshake?: HandshakeObservation): void;
  /** A peer went over messages.controlFramesPerSec and was closed; `direction` says which peer sent them. */
  controlFramesLimited(route: string, direction: Direction): void;
  upstreamError(route: string, kind: string): void;
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
}

export interface GatewayState {
  /** Sockets held that are not admitted connections (wsguard_handshakes_pending). */
  handshakesPending: number;
  /** Open file descriptors and the soft limit; null when unknown (non-Linux). */
  fdOpen: number | null;
  fdLimit: number | null;
}

const noopHandshake: HandshakeObservation = {
  upstreamHeaders: () => ({}),
  dialStarted: () => {},
  dialEnded: () => {},
  end: () => {},
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
    handshakeStarted: () => noopHandshake,
    rejected: () => {},
    connectionOpened: () => {},
    connectionClosed: () => {},
    messageRateLimited: () => {},
    backpressure: () => {},
    controlFramesLimited: () => {},
    upstreamError: () => {},
    jwksRefreshed: () => {},
    limitStoreError: () => {},
    limitStoreDegraded: () => {},
    trackedClientsSource: () => {},
    gatewayStateSource: () => {},
  };
}
