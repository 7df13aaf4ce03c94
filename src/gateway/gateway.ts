import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket, us_socket_context_t } from 'uWebSockets.js';
import type { Logger } from 'pino';
import { attemptLimitPolicy } from '../admission/attempt-limit-policy.ts';
import { authPolicy } from '../admission/auth-policy.ts';
import { buildTrustList, clientKey, normalizeIp, resolveClientIp } from '../admission/client-ip.ts';
import { concurrentLimitPolicy } from '../admission/concurrent-limit-policy.ts';
import { AttemptStop } from '../admission/attempt-stop.ts';
import type { AdmissionContext, HandshakeRequest } from '../admission/context.ts';
import { handshakePolicy } from '../admission/handshake-policy.ts';
import { originPolicy } from '../admission/origin-policy.ts';
import type { AdmissionPolicy } from '../admission/policy.ts';
import { extractToken } from '../auth/token-source.ts';
import type { TokenVerifier } from '../auth/token-verifier.ts';
import type { Config } from '../config/schema.ts';
import { GatewayError } from '../errors.ts';
import type { LimitStore } from '../limits/limit-store.ts';
import type { FdBudget } from '../monitoring/fd-budget.ts';
import type { Connection, UserData } from '../relay/connection.ts';
import { CLOSE } from '../relay/close-codes.ts';
import { dialerFor } from '../relay/dialers.ts';
import type { GatewayObserver } from '../telemetry/observer.ts';
import { PendingSockets } from './pending-sockets.ts';
import { HandshakeAttempt, type AttemptDeps } from './handshake-attempt.ts';
import { UNROUTED } from '../telemetry/names.ts';
import { closeRejectionReason, writeHttpRejection } from './reject.ts';
import { createRouter } from './routes.ts';
import { buildClientBundle, serveClientBundle } from './client-asset.ts';
import { listen, listenShared, uws } from './uws.ts';
import { TlsListener } from './tls-listener.ts';
import { CorkAnchor } from './cork-anchor.ts';
import { upstreamTlsOptions } from './tls.ts';
import type { TlsReloadOutcome } from '../telemetry/names.ts';

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
  /** True when the public listener serves wss:// (server.tls). */
  readonly tls: boolean;
  /** Re-reads the certificate files and swaps them in if they changed and are valid (SIGHUP); 'unchanged' without server.tls. */
  reloadTls(): Promise<TlsReloadOutcome>;
  /** Stops accepting, closes open connections with 1001 spread over the drain window, resolves when all are gone. */
  drain(windowMs?: number): Promise<void>;
  /** Closes everything at once. */
  close(): Promise<void>;
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
  const dial = dialerFor(config.upstream.client, upstreamTlsOptions(config.upstream.tls));
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
  const inFlight = new Set<HandshakeAttempt>();
  let draining = false;
  let listenSocket: us_listen_socket | null = null;
  const anchor = await CorkAnchor.start(logger);

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

  const attemptDeps: AttemptDeps = {
    config,
    policies,
    observer,
    logger,
    dial,
    pending,
    holdMs,
    inFlight,
    connections,
    isDraining: () => draining,
    upgradeCorked: (upgrade) => anchor.run(upgrade),
  };

  function upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): Promise<void> {
    // HttpRequest is valid only in this synchronous part (docs/architecture.md): copy first, then go async.
    const request = readRequest(res, req);
    const match = route(request.path);
    if (!match) {
      refuseEarly(res, UNROUTED, keyOf(request), new GatewayError('not_found', 'no route for this path'));
      return Promise.resolve();
    }
    const routePath = match.route.path;
    const clientIp = resolveClientIp(request.peerIp, request.headers['x-forwarded-for'] ?? '', trusted);
    const source = extractToken(
      request.headers['authorization'] ?? '',
      request.headers['sec-websocket-protocol'] ?? '',
      request.query,
      config.auth,
    );
    const stop = new AttemptStop();
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
      stop,
      reservations: {},
    };
    const span = observer.handshakeStarted(routePath, request.headers['traceparent'], request.headers['tracestate']);

    // Checked before anything async, so that neither costs more than this synchronous answer.
    const shed = fds?.exhausted()
      ? new GatewayError('overloaded', 'the gateway is short of file descriptors', { retryAfterMs: 5_000 })
      : !pending.tryEnter(ctx.clientKey)
        ? new GatewayError('pending_limit', 'too many handshakes in progress from this client', { retryAfterMs: 1_000 })
        : null;
    if (shed) {
      span.end(shed.reason ?? 'internal', 'gateway');
      refuseEarly(res, routePath, ctx.clientKey, shed);
      return Promise.resolve();
    }
    return new HandshakeAttempt(attemptDeps, res, context, ctx, match, span, stop).run();
  }

  const maxBackpressure = config.backpressure.maxBufferedBytes;
  const clientBundle = config.client.serve ? await buildClientBundle() : null;
  /** Attaches every route to `app` (or to one SNI domain of it: uWS routes each SNI name through its own router). */
  function addRoutes(app: TemplatedApp): void {
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
    if (clientBundle) serveClientBundle(app, clientBundle);
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
  }

  const tlsConfig = config.server.tls;
  let bound: { socket: us_listen_socket; port: number };
  let tlsListener: TlsListener | null = null;
  try {
    if (tlsConfig) {
      tlsListener = new TlsListener({
        config: tlsConfig,
        addRoutes,
        observer,
        logger,
        // Rotation binds the new listener on this port before closing the old one (SO_REUSEPORT).
        listen: (app, port) => listenShared(app, config.server.host, port ?? config.server.port, 'server.port', port !== undefined),
        swapped: (socket) => {
          const old = listenSocket;
          listenSocket = socket;
          if (old) uws.us_listen_socket_close(old);
        },
        isListening: () => listenSocket !== null,
      });
      bound = await tlsListener.start();
    } else {
      const app: TemplatedApp = uws.App();
      addRoutes(app);
      bound = await listen(app, config.server.host, config.server.port, 'server.port');
    }
  } catch (err) {
    anchor.close();
    throw err;
  }
  listenSocket = bound.socket;
  logger.info(
    { host: config.server.host, port: bound.port, tls: Boolean(tlsConfig), routes: config.routes.map((r) => r.path) },
    'gateway listening',
  );

  function stopListening(): void {
    tlsListener?.stop();
    if (listenSocket) uws.us_listen_socket_close(listenSocket);
    listenSocket = null;
  }

  /** Answers every handshake still in admission or dialling with 503 draining + Retry-After. */
  function failInFlight(): void {
    const error = new GatewayError('draining', 'the gateway is shutting down', { retryAfterMs: config.server.drainWindowMs });
    for (const attempt of [...inFlight]) attempt.reject(error, 'drain');
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
    tls: tlsListener !== null,
    reloadTls: () => tlsListener?.reload() ?? Promise.resolve('unchanged'),
    async drain(windowMs = config.server.drainWindowMs) {
      draining = true;
      stopListening();
      failInFlight();
      const open = [...connections];
      logger.info({ connections: open.length, windowMs }, 'draining');
      // Spread the 1001s over the window so that clients do not all reconnect elsewhere at once, and
      // announce the window (retry_ms) so that a client that listens spreads its reconnect too.
      // A drain with no window (everyone at once) announces none: clients then use their own spread.
      const reason = closeRejectionReason(
        new GatewayError('draining', 'the gateway is draining', windowMs >= 1 ? { retryAfterMs: windowMs } : undefined),
      );
      // Connection i is due at t0 + i·step and each wake-up closes every one that is due. One timer
      // per close stretched a 1 s window over 1,000 connections to about 12 s on a loaded 2-core
      // machine: each timer fired late and the lateness added up.
      const step = open.length > 1 ? windowMs / open.length : 0;
      const t0 = performance.now();
      let i = 0;
      while (i < open.length) {
        const now = performance.now();
        while (i < open.length && t0 + i * step <= now) open[i++]!.close(CLOSE.goingAway, reason, 'gateway');
        if (i < open.length) await new Promise((r) => setTimeout(r, Math.max(1, t0 + i * step - performance.now())));
      }
      await waitUntilEmpty(2_000);
      anchor.close();
    },
    async close() {
      draining = true;
      stopListening();
      failInFlight();
      for (const c of [...connections]) c.close(CLOSE.goingAway, 'server shutting down', 'gateway');
      await waitUntilEmpty(1_000);
      anchor.close();
    },
  };
}
