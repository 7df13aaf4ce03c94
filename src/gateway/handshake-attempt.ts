import type { HttpResponse, us_socket_context_t } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { AdmissionContext, HandshakeRequest } from '../admission/context.ts';
import type { AttemptStop } from '../admission/attempt-stop.ts';
import { releaseReservations, runAdmission } from '../admission/pipeline.ts';
import type { AdmissionPolicy } from '../admission/policy.ts';
import type { Config } from '../config/schema.ts';
import { GatewayError, toGatewayError } from '../errors.ts';
import { Connection, type UserData } from '../relay/connection.ts';
import type { UpstreamConnection, UpstreamDialer } from '../relay/upstream-types.ts';
import { CLIENT_ABORT, type UpstreamErrorKind } from '../telemetry/names.ts';
import type { GatewayObserver, HandshakeObservation } from '../telemetry/observer.ts';
import type { PendingSockets } from './pending-sockets.ts';
import { closeRejectionReason, writeHttpRejection } from './reject.ts';
import { upstreamUrl, type RouteMatch, type RouteRefusal } from './routes.ts';
import { buildUpstreamHeaders } from './upstream-headers.ts';

/** What every handshake shares: the gateway's configuration, policies and books. */
export interface AttemptDeps {
  config: Config;
  policies: readonly AdmissionPolicy[];
  observer: GatewayObserver;
  logger: Logger;
  dial: UpstreamDialer;
  pending: PendingSockets;
  /** How long a rejectWith: close socket stays counted as pending (rejectionHoldMs). */
  holdMs: number;
  /** Handshakes not yet answered: drain() rejects them with 503 instead of leaving them to a bare hang-up. */
  inFlight: Set<HandshakeAttempt>;
  /** Admitted connections, until they end. */
  connections: Set<Connection>;
  isDraining(): boolean;
  /** Runs a `res.upgrade` where uWS neither drops the new socket nor warns (CorkAnchor.run); never inside that response's own `res.cork`. */
  upgradeCorked(upgrade: () => void): void;
}

/**
 * Runs an async upgrade's `res.upgrade` on a macrotask of its own. uWS records an upgrade made while
 * its HTTP parser is running as belonging to the socket being parsed (httpContextData
 * upgradedWebSocket / isParsingHttp), and Node drains microtasks at the end of every uWS callback,
 * so an upgrade from a promise continuation could land inside another socket's parse. Measured: in
 * bench/relay.ts about one connection in 200 was dropped by uWS right after `open` (FIN, 1006,
 * nothing relayed); with this deferral none in 700. That drop was most likely the `res.cork` bug
 * that CorkAnchor works around (the deferral changed what reused the freed memory); the reason above
 * holds on its own.
 */
function upgradeLater(run: () => void): void {
  setImmediate(run);
}

/** `wsguard_upstream_errors_total{kind}` for a failed dial: refused (nothing listens), timeout, or a bad handshake. */
function dialFailureKind(error: GatewayError): UpstreamErrorKind {
  if (error.code === 'upstream_timeout') return 'timeout';
  const cause = error.cause as NodeJS.ErrnoException | undefined;
  return cause?.code === 'ECONNREFUSED' ? 'refused' : 'handshake';
}

/** The error and its cause's message, for a log line. */
function errorText(error: Error): string {
  const cause = error.cause instanceof Error ? error.cause.message : undefined;
  return cause && !error.message.includes(cause) ? `${error.message}: ${cause}` : error.message;
}

let localAddressTurn = 0;

/** upstream.localAddresses in turn (proxy_bind-style rotation): each source address brings its own ephemeral ports. */
function nextLocalAddress(addresses: readonly string[]): string | undefined {
  return addresses.length === 0 ? undefined : addresses[localAddressTurn++ % addresses.length];
}

function defaultPort(url: URL): number {
  if (url.port) return Number(url.port);
  return url.protocol === 'wss:' || url.protocol === 'https:' ? 443 : 80;
}

/**
 * One upgrade request from admission to its answer. It ends exactly once, through `#settle`, in one
 * of three ways: `reject` (a policy, the dial, the deadline or a drain said no: HTTP status, or a
 * close code in rejectWith: close mode), `abort` (the client went away first), or `accept` (101 and a
 * Connection). Whatever ends it first wins; the others find it settled and only clean up after
 * themselves (a reservation taken late, a dial that came back late). docs/contracts.md draws it.
 */
export class HandshakeAttempt {
  readonly #d: AttemptDeps;
  readonly #res: HttpResponse;
  readonly #socketContext: us_socket_context_t;
  readonly #request: HandshakeRequest;
  readonly #ctx: AdmissionContext;
  readonly #match: RouteMatch | RouteRefusal;
  readonly #span: HandshakeObservation;
  /** Stops admission and the dial when the attempt ends without them (ctx.stop, the dial's signal). */
  readonly #stop: AttemptStop;
  readonly #deadline: NodeJS.Timeout;
  #settled = false;
  /** uWS reported the client gone: the response must not be touched any more. */
  #clientGone = false;
  #pendingHeld = true;
  #conn: Connection | null = null;

  /** `ctx.stop` must be `stop`; the caller has already counted the socket in `pending`. */
  constructor(
    d: AttemptDeps,
    res: HttpResponse,
    socketContext: us_socket_context_t,
    ctx: AdmissionContext,
    match: RouteMatch | RouteRefusal,
    span: HandshakeObservation,
    stop: AttemptStop,
  ) {
    this.#d = d;
    this.#res = res;
    this.#socketContext = socketContext;
    this.#request = ctx.request;
    this.#ctx = ctx;
    this.#match = match;
    this.#span = span;
    this.#stop = stop;
    res.onAborted(() => this.abort());
    this.#deadline = setTimeout(
      () => this.reject(new GatewayError('handshake_timeout', 'handshake deadline passed'), 'deadline'),
      d.config.server.handshakeTimeoutMs,
    );
    d.inFlight.add(this);
  }

  /** Admission, dial, answer. Never throws: anything unexpected becomes a 500 `internal` rejection. */
  async run(): Promise<void> {
    const { config } = this.#d;
    try {
      const match = this.#match;
      if (match.kind === 'refused') return this.reject(new GatewayError('bad_request', match.message), 'gateway');
      if (this.#d.isDraining()) {
        return this.reject(
          new GatewayError('draining', 'the gateway is shutting down', { retryAfterMs: config.server.drainWindowMs }),
          'gateway',
        );
      }
      // Decided synchronously when no policy waits (runAdmission): a 429 is answered within the upgrade handler.
      const admission = runAdmission(this.#d.policies, this.#ctx, this.#d.observer);
      const result = admission instanceof Promise ? await admission : admission;
      if (result.verdict === 'rejected') return this.reject(result.error, result.policy);
      // Ended while a policy waited (abort, deadline, drain): give back what was reserved since, dial nothing.
      if (result.verdict === 'aborted' || this.#settled) return releaseReservations(this.#ctx);

      const conn = new Connection({
        config,
        counters: this.#d.observer.routeCounters(match.route.path),
        release: () => this.#ctx.reservations.slot?.(),
        tokenExpiresAtMs: typeof this.#ctx.claims?.exp === 'number' ? this.#ctx.claims.exp * 1000 : null,
        onEnded: (c) => this.#d.connections.delete(c),
      });
      this.#conn = conn;
      const upstream = await this.#dialUpstream(match, conn);
      if (!upstream) return;
      conn.attachUpstream(upstream);
      if (this.#settled) return;
      if (!upstream.protocol && this.#ctx.tokenInSubprotocol && !this.#ctx.markerOffered) {
        // The client offered app subprotocols beside its token and the upstream selected none: the
        // answer would select nothing and the client would fail the handshake.
        return this.reject(
          new GatewayError(
            'bad_request',
            `the upstream selected none of the offered subprotocols; offer '${config.auth.subprotocolMarker}' beside the token entry (auth.subprotocolMarker)`,
          ),
          'upstream',
        );
      }
      this.accept(conn, upstream);
    } catch (err) {
      this.reject(toGatewayError(err), 'gateway');
    }
  }

  /** Dials the route's upstream; null when the dial failed (the attempt is then rejected) or the attempt ended meanwhile. */
  async #dialUpstream(match: RouteMatch, conn: Connection): Promise<UpstreamConnection | null> {
    const { config, logger } = this.#d;
    const url = upstreamUrl(match, this.#ctx.relayQuery);
    const traceHeaders = this.#span.dialStarted({ address: url.hostname, port: defaultPort(url) });
    try {
      const upstream = await this.#d.dial(
        {
          url,
          headers: { ...buildUpstreamHeaders(this.#ctx, config), ...traceHeaders },
          protocols: this.#ctx.protocols,
          timeoutMs: config.upstream.dialTimeoutMs,
          maxPayloadBytes: config.messages.maxBytes,
          controlFramesPerSec: config.messages.controlFramesPerSec,
          signal: this.#stop.signal,
          highWaterBytes: config.backpressure.highWaterBytes,
          localAddress: nextLocalAddress(config.upstream.localAddresses),
        },
        conn.upstreamHandlers,
      );
      this.#span.dialEnded();
      return upstream;
    } catch (err) {
      const error = toGatewayError(err, 'upstream_unavailable');
      this.#span.dialEnded(error.code);
      // A dial cancelled because the handshake already ended is not an upstream failure.
      if (this.#settled) return null;
      const kind = dialFailureKind(error);
      const route = match.route.path;
      this.#d.observer.upstreamError(route, kind);
      // The client is told the reason only (reject.ts); the operator gets where and why, never the query.
      logger.warn(
        { event: 'upstream_dial_failed', route, upstream: `${url.origin}${url.pathname}`, kind, err: errorText(error) },
        'upstream dial failed',
      );
      this.reject(error, 'upstream');
      return null;
    }
  }

  /**
   * Refuses the handshake: counted, reservations given back by blame (src/errors.ts), and answered
   * with the status, or in rejectWith: close mode by accepting the socket and closing it with the
   * contract's code.
   */
  reject(error: GatewayError, policy: string): void {
    if (!this.#settle(true)) return;
    releaseReservations(this.#ctx, error);
    this.#conn?.abandon();
    const reason = error.reason ?? 'internal';
    this.#d.observer.rejected(this.#match.route.path, reason, 'enforced', this.#ctx.clientKey);
    this.#span.end(reason, policy);
    const rejectWith = this.#match.route.rejectWith ?? this.#d.config.server.rejectWith;
    if (rejectWith === 'close' && !error.httpOnly) {
      // Browsers cannot read a handshake status: accept, then close with the contract's code. The
      // socket stays pending until uWS is sure to have let it go (see rejectionHoldMs).
      const rejection = { code: error.closeCode, reason: closeRejectionReason(error) };
      upgradeLater(() => {
        if (this.#clientGone) return this.#leavePending();
        setTimeout(() => this.#leavePending(), this.#d.holdMs).unref();
        // A browser fails a handshake whose answer selects none of its subprotocols, and would then
        // never see the rejection code.
        this.#upgrade(
          { conn: null, rejection },
          this.#ctx.markerOffered ? this.#d.config.auth.subprotocolMarker : (this.#ctx.protocols[0] ?? ''),
        );
      });
      return;
    }
    this.#leavePending();
    if (!this.#clientGone) this.#res.cork(() => writeHttpRejection(this.#res, error));
  }

  /** uWS `onAborted`: the client went away before its answer. Neither accepted nor rejected. */
  abort(): void {
    this.#clientGone = true;
    if (!this.#settle(true)) return;
    releaseReservations(this.#ctx);
    this.#leavePending();
    this.#conn?.abandon();
    this.#span.end(CLIENT_ABORT);
  }

  /** Answers 101: the connection holds a concurrent slot from here and is no longer pending. */
  accept(conn: Connection, upstream: UpstreamConnection): void {
    if (!this.#settle(false)) return;
    this.#leavePending();
    this.#d.connections.add(conn);
    conn.accepted(this.#span.accepted());
    upgradeLater(() => {
      if (this.#clientGone) return conn.abandon();
      this.#upgrade({ conn, rejection: null }, upstream.protocol || (this.#ctx.markerOffered ? this.#d.config.auth.subprotocolMarker : ''));
    });
  }

  /** The one place the attempt ends: false when it already had. `stop`: cancel admission and the dial. */
  #settle(stop: boolean): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    clearTimeout(this.#deadline);
    this.#d.inFlight.delete(this);
    if (stop) this.#stop.stop();
    return true;
  }

  #leavePending(): void {
    if (!this.#pendingHeld) return;
    this.#pendingHeld = false;
    this.#d.pending.leave(this.#ctx.clientKey);
  }

  #upgrade(userData: UserData, protocol: string): void {
    this.#d.upgradeCorked(() =>
      this.#res.upgrade<UserData>(
        userData,
        this.#request.headers['sec-websocket-key']!,
        protocol,
        // Extensions are not negotiated: the relay forwards frames as messages, uncompressed.
        '',
        this.#socketContext,
      ),
    );
  }
}
