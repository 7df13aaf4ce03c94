import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket, us_socket_context_t } from 'uWebSockets.js';
import type { Logger } from 'pino';
import { attemptLimitPolicy } from '../admission/attempt-limit-policy.ts';
import { authPolicy } from '../admission/auth-policy.ts';
import { buildTrustList, clientKey, normalizeIp, resolveClientIp } from '../admission/client-ip.ts';
import { concurrentLimitPolicy } from '../admission/concurrent-limit-policy.ts';
import type { AdmissionContext, HandshakeRequest } from '../admission/context.ts';
import { handshakePolicy } from '../admission/handshake-policy.ts';
import { originPolicy } from '../admission/origin-policy.ts';
import { runAdmission } from '../admission/pipeline.ts';
import type { AdmissionPolicy } from '../admission/policy.ts';
import { extractToken } from '../auth/token-source.ts';
import type { TokenVerifier } from '../auth/token-verifier.ts';
import type { Config } from '../config/schema.ts';
import { GatewayError, toGatewayError } from '../errors.ts';
import type { LimitStore } from '../limits/limit-store.ts';
import type { FdBudget } from '../monitoring/fd-budget.ts';
import { Connection, type UserData } from '../relay/connection.ts';
import { CLOSE } from '../relay/close-codes.ts';
import { dialerFor } from '../relay/dialers.ts';
import type { GatewayObserver } from '../telemetry/observer.ts';
import { PendingSockets } from './pending-sockets.ts';
import { buildUpstreamHeaders } from './upstream-headers.ts';
import { UNROUTED } from '../telemetry/names.ts';
import { closeRejectionReason, writeHttpRejection } from './reject.ts';
import { buildClientBundle, serveClientBundle } from './client-asset.ts';
import { createRouter, upstreamUrl } from './routes.ts';
import { listen, uws } from './uws.ts';

export interface GatewayDeps {
  config: Config;
  store: LimitStore;
  verifier: TokenVerifier | null;
  observer: GatewayObserver;
  logger: Logger;
  /** The process's fd budget; new handshakes are shed with 503 `overloaded` when it runs low. */
  fds?: FdBudget;
}

export interface Gateway {
  readonly port: number;
  readonly listening: boolean;
  readonly draining: boolean;
  readonly connectionCount: number;
  /** Sockets held that are not admitted connections (handshakes in progress, rejection closes). */
  readonly pendingCount: number;
  /** Stops accepting, closes open connections with 1001 spread over the drain window, resolves when all are gone. */
  drain(windowMs?: number): Promise<void>;
  /** Closes everything at once. */
  close(): Promise<void>;
}

/**
 * Runs an async upgrade's `res.upgrade` on a macrotask of its own. uWS records an upgrade made while
 * its HTTP parser is running as belonging to the socket being parsed (httpContextData
 * upgradedWebSocket / isParsingHttp), and Node drains microtasks at the end of every uWS callback,
 * so an upgrade from a promise continuation could land inside another socket's parse. Measured: in
 * bench/relay.ts about one connection in 200 was dropped by uWS right after `open` (FIN, 1006,
 * nothing relayed); with this deferral none in 700.
 */
function upgradeLater(run: () => void): void {
  setImmediate(run);
}

/**
 * How long uWS keeps a socket after `ws.end()` when the client never answers the close frame: the
 * "ping timeout" part of idleTimeout (4, 8 or 16 s; uWS's calculateIdleTimeoutCompnents) plus its
 * 4 s timer granularity. JS is told nothing when that socket finally goes (the close handler runs at
 * `end()`), so a rejection socket is counted as pending for this long. Measured on the 20.30 build
 * with idleTimeout 120 and a client that ignores the close frame: FIN after 15,999 ms.
 */
export function rejectionHoldMs(idleTimeoutSec: number): number {
  let margin = 4;
  while (idleTimeoutSec - margin * 2 >= margin * 2 && margin < 16) margin *= 2;
  return (margin + 4) * 1000;
}

/** `wsguard_upstream_errors_total{kind}` for a failed dial: refused (nothing listens), timeout, or a bad handshake. */
function dialFailureKind(error: GatewayError): string {
  if (error.code === 'upstream_timeout') return 'timeout';
  const cause = error.cause as NodeJS.ErrnoException | undefined;
  return cause?.code === 'ECONNREFUSED' ? 'refused' : 'handshake';
}

/** The error and its cause's message, for a log line. */
function errorText(error: Error): string {
  const cause = error.cause instanceof Error ? error.cause.message : undefined;
  return cause && !error.message.includes(cause) ? `${error.message}: ${cause}` : error.message;
}

/** Rejections always answered over HTTP, even in rejectWith: close mode: accepting a socket is what they refuse. */
const HTTP_ONLY: ReadonlySet<string> = new Set(['pending_limit', 'overloaded']);

/** uWS hard cap: a frame over it drops TCP (docs/architecture.md), so it sits above messages.maxBytes to let us answer 1009. */
function uwsPayloadCap(maxBytes: number): number {
  return Math.min(2 ** 31 - 1, Math.max(maxBytes * 2, maxBytes + 65_536));
}

export async function startGateway(deps: GatewayDeps): Promise<Gateway> {
  const { config, store, verifier, observer, logger, fds } = deps;
  const pending = new PendingSockets(config.server.maxPendingPerClient);
  const holdMs = rejectionHoldMs(config.server.idleTimeoutSec);
  const route = createRouter(config.routes);
  const trusted = buildTrustList(config.server.trustedProxies);
  const dial = dialerFor(config.upstream.client);
  const policies: AdmissionPolicy[] = [
    handshakePolicy(),
    originPolicy(config.origins),
    attemptLimitPolicy(config.limits.attempts, store),
    concurrentLimitPolicy(config.limits.concurrent, store),
    authPolicy(config.auth, verifier),
  ];
  // Every configured route's series exist from start-up (at 0), not from its first connection.
  for (const r of config.routes) observer.routeCounters(r.path);
  const connections = new Set<Connection>();
  /** Handshakes not yet answered: drain() fails them with 503 instead of leaving them to a bare hang-up. */
  const inFlight = new Set<(error: GatewayError) => void>();
  let draining = false;
  let listenSocket: us_listen_socket | null = null;

  function readRequest(res: HttpResponse, req: HttpRequest): HandshakeRequest {
    const headers: Record<string, string> = {};
    const duplicates: string[] = [];
    req.forEach((k, v) => {
      if (headers[k] === undefined) headers[k] = v;
      // RFC 9110 §5.3: repeated list headers combine in order; X-Forwarded-For is one when proxies
      // append a line each.
      else if (k === 'x-forwarded-for') headers[k] += `, ${v}`;
      else {
        // Any other repeat is refused for the headers that decide admission (handshake policy): which
        // copy would be judged must never depend on header order.
        headers[k] = v;
        duplicates.push(k);
      }
    });
    const peerText = Buffer.from(res.getRemoteAddressAsText()).toString();
    return {
      method: req.getMethod(),
      path: req.getUrl(),
      query: req.getQuery() ?? '',
      headers,
      duplicates,
      peerIp: normalizeIp(peerText) ?? peerText,
    };
  }

  /** Answers a request refused before admission starts (no route, not an upgrade), counted like any rejection. */
  function refuseEarly(res: HttpResponse, routeLabel: string, key: string, error: GatewayError): void {
    observer.rejected(routeLabel, error.reason ?? 'internal', 'enforced', key);
    writeHttpRejection(res, error);
  }

  /** The key per-client limits count a request under (the client as resolved through trusted proxies). */
  function keyOf(request: HandshakeRequest): string {
    return clientKey(resolveClientIp(request.peerIp, request.headers['x-forwarded-for'] ?? '', trusted), config.server.ipv6PrefixLength);
  }

  async function upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): Promise<void> {
    // HttpRequest is valid only in this synchronous part (docs/architecture.md): copy first, then go async.
    const request = readRequest(res, req);
    const match = route(request.path);
    if (!match) {
      refuseEarly(res, UNROUTED, keyOf(request), new GatewayError('not_found', 'no route for this path'));
      return;
    }
    const routePath = match.route.path;
    const clientIp = resolveClientIp(request.peerIp, request.headers['x-forwarded-for'] ?? '', trusted);
    const source = extractToken(
      request.headers['authorization'] ?? '',
      request.headers['sec-websocket-protocol'] ?? '',
      request.query,
      config.auth,
    );
    const ctx: AdmissionContext = {
      request,
      route: match.route,
      clientIp,
      clientKey: clientKey(clientIp, config.server.ipv6PrefixLength),
      nowMs: Date.now(),
      token: source.token,
      protocols: source.protocols,
      markerOffered: source.markerOffered,
      tokenInSubprotocol: source.tokenInSubprotocol,
      relayQuery: source.query,
      claims: null,
      reservations: {},
    };
    const span = observer.handshakeStarted(routePath, request.headers['traceparent'], request.headers['tracestate']);
    const rejectWith = match.route.rejectWith ?? config.server.rejectWith;

    // Checked before anything async, so that neither costs more than this synchronous answer.
    const shed = fds?.exhausted()
      ? new GatewayError('overloaded', 'the gateway is short of file descriptors', { retryAfterMs: 5_000 })
      : !pending.tryEnter(ctx.clientKey)
        ? new GatewayError('pending_limit', 'too many handshakes in progress from this client', { retryAfterMs: 1_000 })
        : null;
    if (shed) {
      span.end(shed.reason ?? 'internal', 'gateway');
      refuseEarly(res, routePath, ctx.clientKey, shed);
      return;
    }
    let pendingHeld = true;
    const leavePending = () => {
      if (!pendingHeld) return;
      pendingHeld = false;
      pending.leave(ctx.clientKey);
    };

    let settled = false;
    let conn: Connection | null = null;
    // Aborted when the handshake ends without the dial's result (deadline, client abort, drain), so
    // the upstream sees its half-open TCP connection closed instead of holding it until dialTimeoutMs.
    const dialAbort = new AbortController();
    const deadline = setTimeout(
      () => fail(new GatewayError('handshake_timeout', 'handshake deadline passed'), 'deadline'),
      config.server.handshakeTimeoutMs,
    );
    const onDrain = (error: GatewayError) => fail(error, 'drain');
    inFlight.add(onDrain);

    let aborted = false;
    res.onAborted(() => {
      aborted = true;
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      inFlight.delete(onDrain);
      dialAbort.abort();
      releaseOnFailure(true);
      leavePending();
      conn?.abandon();
      span.end('client_abort');
    });

    function releaseOnFailure(releaseAttempt: boolean): void {
      ctx.reservations.slot?.();
      if (releaseAttempt) ctx.reservations.attempt?.();
    }

    function fail(error: GatewayError, policy: string): void {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      inFlight.delete(onDrain);
      dialAbort.abort();
      // An attempt stays counted when the client was at fault (bad token, bad origin); it is given
      // back when the gateway or the upstream failed, so an outage does not burn the client's budget.
      const clientAtFault = error.status === 401 || error.status === 400 || error.status === 403;
      releaseOnFailure(!clientAtFault);
      conn?.abandon();
      const reason = error.reason ?? 'internal';
      observer.rejected(routePath, reason, 'enforced', ctx.clientKey);
      span.end(reason, policy);
      if (rejectWith === 'close' && error.status !== 400 && error.status !== 426 && !HTTP_ONLY.has(error.code)) {
        // Browsers cannot read a handshake status: accept, then close with the contract's code. The
        // socket stays pending until uWS is sure to have let it go (see rejectionHoldMs).
        const rejection = { code: error.closeCode, reason: closeRejectionReason(error) };
        upgradeLater(() => {
          if (aborted) return leavePending();
          setTimeout(leavePending, holdMs).unref();
          res.cork(() =>
            res.upgrade<UserData>(
              { conn: null, rejection },
              request.headers['sec-websocket-key']!,
              // A browser fails a handshake whose answer selects none of its subprotocols, and would then
              // never see the rejection code.
              ctx.markerOffered ? config.auth.subprotocolMarker : (ctx.protocols[0] ?? ''),
              '',
              context,
            ),
          );
        });
        return;
      }
      leavePending();
      res.cork(() => writeHttpRejection(res, error));
    }

    try {
      if (match.kind === 'refused') throw new GatewayError('bad_request', match.message);
      if (draining) throw new GatewayError('draining', 'the gateway is shutting down', { retryAfterMs: config.server.drainWindowMs });
      const rejection = await runAdmission(policies, ctx, observer);
      if (rejection) return fail(rejection.error, rejection.policy);
      if (settled) return releaseOnFailure(false);

      const tokenExp = typeof ctx.claims?.exp === 'number' ? ctx.claims.exp * 1000 : null;
      conn = new Connection({
        config,
        route: routePath,
        counters: observer.routeCounters(routePath),
        observer,
        handshake: span,
        release: () => ctx.reservations.slot?.(),
        tokenExpiresAtMs: tokenExp,
        onEnded: (c) => connections.delete(c),
      });
      const url = upstreamUrl(match, ctx.relayQuery);
      span.dialStarted();
      let upstream;
      try {
        upstream = await dial(
          {
            url,
            headers: { ...buildUpstreamHeaders(ctx, config), ...span.upstreamHeaders() },
            protocols: ctx.protocols,
            timeoutMs: config.upstream.dialTimeoutMs,
            maxPayloadBytes: config.messages.maxBytes,
            controlFramesPerSec: config.messages.controlFramesPerSec,
            signal: dialAbort.signal,
            highWaterBytes: config.backpressure.highWaterBytes,
          },
          conn.upstreamHandlers,
        );
        span.dialEnded();
      } catch (err) {
        const error = toGatewayError(err, 'upstream_unavailable');
        span.dialEnded(error.code);
        // A dial cancelled because the handshake already ended is not an upstream failure.
        if (settled) return;
        const kind = dialFailureKind(error);
        observer.upstreamError(routePath, kind);
        // The client is told the reason only (reject.ts); the operator gets where and why, never the query.
        logger.warn(
          { event: 'upstream_dial_failed', route: routePath, upstream: `${url.origin}${url.pathname}`, kind, err: errorText(error) },
          'upstream dial failed',
        );
        return fail(error, 'upstream');
      }
      conn.upstream = upstream;
      if (!settled && !upstream.protocol && ctx.tokenInSubprotocol && !ctx.markerOffered) {
        // The client offered app subprotocols beside its token and the upstream selected none: the
        // answer would select nothing and the client would fail the handshake. (fail() closes the leg.)
        return fail(
          new GatewayError(
            'bad_request',
            `the upstream selected none of the offered subprotocols; offer '${config.auth.subprotocolMarker}' beside the token entry (auth.subprotocolMarker)`,
          ),
          'upstream',
        );
      }
      if (settled) {
        // Aborted or timed out while dialling: the upstream leg must not linger.
        upstream.close(CLOSE.goingAway, 'client went away');
        return;
      }
      settled = true;
      clearTimeout(deadline);
      inFlight.delete(onDrain);
      // From here the connection holds a concurrent slot: it is no longer pending.
      leavePending();
      connections.add(conn);
      span.end('accepted');
      const accepted = conn;
      upgradeLater(() => {
        if (aborted) {
          accepted.abandon();
          return;
        }
        res.cork(() => {
          res.upgrade<UserData>(
            { conn: accepted, rejection: null },
            request.headers['sec-websocket-key']!,
            upstream.protocol || (ctx.markerOffered ? config.auth.subprotocolMarker : ''),
            // Extensions are not negotiated: the relay forwards frames as messages, uncompressed.
            '',
            context,
          );
        });
      });
    } catch (err) {
      fail(toGatewayError(err), 'gateway');
    }
  }

  const app: TemplatedApp = uws.App();
  const maxBackpressure = config.backpressure.maxBufferedBytes;
  app.ws<UserData>('/*', {
    compression: uws.DISABLED,
    maxPayloadLength: uwsPayloadCap(config.messages.maxBytes),
    idleTimeout: config.server.idleTimeoutSec,
    sendPingsAutomatically: true,
    maxBackpressure,
    // Typed as a number in this build's d.ts; 0 = off. Over maxBackpressure, send() reports 2 (dropped) and the relay closes.
    closeOnBackpressureLimit: 0,
    upgrade: (res, req, context) => {
      upgrade(res, req, context).catch((err: unknown) => logger.error({ err }, 'upgrade handler failed'));
    },
    open: (ws) => {
      const data = ws.getUserData();
      if (data.rejection) {
        ws.end(data.rejection.code, data.rejection.reason);
        return;
      }
      data.conn?.attach(ws);
    },
    message: (ws, message, isBinary) => ws.getUserData().conn?.fromClient(message, isBinary),
    drain: (ws) => ws.getUserData().conn?.clientDrained(),
    // uWS answers pings itself; these only count them against messages.controlFramesPerSec.
    ping: (ws) => ws.getUserData().conn?.controlFromClient(),
    pong: (ws) => ws.getUserData().conn?.controlFromClient(),
    close: (ws, code, message) => ws.getUserData().conn?.clientClosed(code, Buffer.from(message).toString()),
  });
  if (config.client.serve) serveClientBundle(app, await buildClientBundle());
  // A plain HTTP request on a WebSocket path is a malformed handshake (400), anything else 404.
  app.any('/*', (res, req) => {
    const request = readRequest(res, req);
    const match = route(request.path);
    if (!match) return refuseEarly(res, UNROUTED, keyOf(request), new GatewayError('not_found', 'no route for this path'));
    refuseEarly(
      res,
      match.route.path,
      keyOf(request),
      new GatewayError('bad_request', match.kind === 'refused' ? match.message : 'expected a WebSocket upgrade'),
    );
  });

  const bound = await listen(app, config.server.host, config.server.port, 'server.port');
  listenSocket = bound.socket;
  logger.info({ host: config.server.host, port: bound.port, routes: config.routes.map((r) => r.path) }, 'gateway listening');

  function stopListening(): void {
    if (listenSocket) uws.us_listen_socket_close(listenSocket);
    listenSocket = null;
  }

  /** Answers every handshake still in admission or dialling with 503 draining + Retry-After. */
  function failInFlight(): void {
    const error = new GatewayError('draining', 'the gateway is shutting down', { retryAfterMs: config.server.drainWindowMs });
    for (const failOne of [...inFlight]) failOne(error);
  }

  async function waitUntilEmpty(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (connections.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  }

  return {
    port: bound.port,
    get listening() {
      return listenSocket !== null;
    },
    get draining() {
      return draining;
    },
    get connectionCount() {
      return connections.size;
    },
    get pendingCount() {
      return pending.size;
    },
    async drain(windowMs = config.server.drainWindowMs) {
      draining = true;
      stopListening();
      failInFlight();
      const open = [...connections];
      logger.info({ connections: open.length, windowMs }, 'draining');
      // Spread the 1001s over the window so that clients do not all reconnect elsewhere at once.
      const step = open.length > 1 ? windowMs / open.length : 0;
      for (const [i, c] of open.entries()) {
        if (i > 0 && step >= 1) await new Promise((r) => setTimeout(r, step));
        c.close(CLOSE.goingAway, 'server draining', 'gateway');
      }
      await waitUntilEmpty(2_000);
    },
    async close() {
      draining = true;
      stopListening();
      failInFlight();
      for (const c of [...connections]) c.close(CLOSE.goingAway, 'server shutting down', 'gateway');
      await waitUntilEmpty(1_000);
    },
  };
}
