import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { isLoopbackHost, type AdminClaimRule, type TelemetryConfig } from '../telemetry/config.ts';
import { HANDSHAKE_DURATION_BUCKETS_SEC } from '../telemetry/names.ts';
import { authenticateAdmin, type VerifyToken } from './admin-auth.ts';
import type { ClusterStats, ClusterView, LocalFigures } from './cluster-stats.ts';
import { isoSeconds, StatusSeries, type LiveStats, type MonitoringMetrics } from './live-stats.ts';
import { STATUS_ASSET_PATHS, STATUS_CSP, statusBundle, type StatusBundle } from './status/bundle.ts';
import { maskClientKey, statusTotalsFromText } from './status/sampler.ts';

/**
 * The admin listener: Prometheus scrape, liveness, readiness and the monitoring API. It is plain
 * node:http because nothing here is on the relay's hot path, and it binds to 127.0.0.1 by default:
 * expose it to the scraper, never to clients.
 */
export interface Readiness {
  ready: boolean;
  checks: Record<string, boolean>;
}

export interface AdminServerOptions {
  host: string;
  port: number;
  /** Prometheus text exposition of the current metrics. */
  metricsText: () => Promise<string>;
  readiness: () => Readiness;
  verifyToken: VerifyToken;
  adminClaims: readonly AdminClaimRule[];
  stats: LiveStats;
  /** With limits.store=redis: the figures across replicas (read lazily: the store starts after the admin listener). */
  cluster?: () => ClusterStats | undefined;
  logger: Logger;
  /** The status page (docs/status-page.md); absent means 'off'. */
  statusPage?: TelemetryConfig['monitoring']['statusPage'];
  /** Shown in the status page's header. */
  serviceVersion?: string;
  /** The effective limits, shown in the status page's header (read on each poll). */
  statusLimits?: () => Record<string, string | number | boolean>;
}

export interface AdminServer {
  readonly host: string;
  readonly port: number;
  /** e.g. http://127.0.0.1:9464 */
  readonly url: string;
  close(): Promise<void>;
}

import { MONITORING_PATHS } from './paths.ts';

export { MONITORING_PATHS };

/** The status page's series: 15 minutes of one-second samples; latency percentiles over the trailing 10 s. */
export const STATUS_HISTORY_SEC = 900;
export const STATUS_LATENCY_WINDOW_SEC = 10;
const STATUS_SAMPLE_MS = 1000;
/**
 * With no viewer (no series request for a minute) the sampler keeps a coarse history, one sample in
 * ten seconds: a sample reads and parses the whole /metrics exposition (about 1.6 ms of CPU on a quiet
 * machine, 4.4 ms on a loaded one; BENCHMARKS.md), which a sidecar should not spend every second for
 * a page nobody has open.
 */
const STATUS_IDLE_SAMPLE_MS = 10_000;
const STATUS_WATCH_MS = 60_000;
const STATUS_TOP_OFFENDERS = 10;

/** Prometheus text format 0.0.4 (what Prometheus negotiates by default). */
const PROM_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
const DEFAULT_TOP_OFFENDERS = 20;

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/** Django-style paths end in '/'; accept the form without it too. */
function normalisePath(pathname: string): string {
  return pathname.startsWith('/api/') && !pathname.endsWith('/') ? `${pathname}/` : pathname;
}

/** What the metrics endpoint adds with the Redis store (docs/monitoring-api.md, "Across replicas"). */
export interface ClusterFields {
  /** "cluster" when active_connections and connections_today are sums over the live replicas, "local" when Redis did not answer. */
  scope: 'cluster' | 'local';
  local: LocalFigures;
  cluster: ClusterView;
}

/**
 * The metrics answer: the reference guide's seven fields, unchanged with the memory store. With the
 * Redis store it adds `scope`, `local` and `cluster`; the two cross-replica fields are then the
 * cluster sums, or this replica's own when Redis does not answer (`scope: "local"`).
 */
async function monitoringMetrics(stats: LiveStats, cluster: ClusterStats | undefined): Promise<MonitoringMetrics & Partial<ClusterFields>> {
  const snap = stats.snapshot();
  if (!cluster) return snap;
  const local = { active_connections: snap.active_connections, connections_today: snap.connections_today };
  const view = await cluster.view();
  if (!view.available) return { ...snap, scope: 'local', local, cluster: view };
  return {
    ...snap,
    active_connections: view.active_connections,
    connections_today: view.connections_today,
    scope: 'cluster',
    local,
    cluster: view,
  };
}

function sendAsset(
  req: IncomingMessage,
  res: ServerResponse,
  type: string,
  body: string,
  etag: string,
  extra: Record<string, string> = {},
): void {
  const tag = `"${etag}"`;
  const headers = { etag: tag, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff', ...extra };
  if (req.headers['if-none-match'] === tag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

/** The status page's source of truth: a one-second sampler of the /metrics exposition into a short ring. */
function startStatusSampler(
  metricsText: () => Promise<string>,
  logger: Logger,
): { series: StatusSeries; watched: () => void; stop: () => void } {
  const series = new StatusSeries({
    capacity: STATUS_HISTORY_SEC,
    latencyWindowSec: STATUS_LATENCY_WINDOW_SEC,
    latencyBounds: HANDSHAKE_DURATION_BUCKETS_SEC,
  });
  let busy = false;
  let failedAt = 0;
  let watchedAt = -Infinity;
  let sampledAt = -Infinity;
  const sample = async () => {
    const now = Date.now();
    if (busy || (now - watchedAt > STATUS_WATCH_MS && now - sampledAt < STATUS_IDLE_SAMPLE_MS)) return;
    busy = true;
    sampledAt = now;
    try {
      series.record(Date.now(), statusTotalsFromText(await metricsText()));
    } catch (err) {
      // Once a minute at most: a broken sampler must not flood the log.
      if (Date.now() - failedAt > 60_000) {
        failedAt = Date.now();
        logger.error({ event: 'status_sample_failed', err }, 'status page sample failed');
      }
    } finally {
      busy = false;
    }
  };
  void sample();
  const timer = setInterval(() => void sample(), STATUS_SAMPLE_MS);
  timer.unref();
  return {
    series,
    watched: () => {
      watchedAt = Date.now();
    },
    stop: () => clearInterval(timer),
  };
}

export async function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  const statusMode = opts.statusPage ?? 'off';
  // Built before listening: a page that cannot be built is a start-up error, not a 500 later.
  const bundle: StatusBundle | undefined = statusMode === 'off' ? undefined : await statusBundle();
  const startedAt = Date.now();
  const status = bundle ? startStatusSampler(opts.metricsText, opts.logger) : undefined;

  /** Checks the admin JWT; on failure answers 401/403 with the challenge, logs why, and returns false. */
  const admitAdmin = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> => {
    const auth = await authenticateAdmin(req.headers.authorization, opts.verifyToken, opts.adminClaims);
    if (auth.ok) return true;
    opts.logger.info(
      { event: 'monitoring_auth_failed', path, status: auth.status, error: auth.error, detail: auth.detail },
      'monitoring API request refused',
    );
    sendJson(res, auth.status, { error: auth.error }, { 'www-authenticate': auth.wwwAuthenticate });
    return false;
  };

  const seriesAnswer = (since: number, masked: boolean) => {
    const series = status!.series;
    const now = Date.now();
    const r = opts.readiness();
    let limits: Record<string, string | number | boolean> = {};
    try {
      limits = opts.statusLimits?.() ?? {};
    } catch (err) {
      opts.logger.warn({ event: 'status_limits_failed', err }, 'status page could not read the effective limits');
    }
    const rejections = opts.stats.rejections(STATUS_TOP_OFFENDERS);
    return {
      now,
      history_sec: STATUS_HISTORY_SEC,
      masked,
      info: {
        version: opts.serviceVersion ?? 'unknown',
        started_at: isoSeconds(startedAt),
        uptime_sec: Math.floor((now - startedAt) / 1000),
        ready: r.ready,
        checks: r.checks,
        draining: r.checks.draining === true,
        limits,
      },
      latency: series.latency(),
      rejections_total: rejections.total,
      top_offenders: masked ? rejections.top_offenders.map((o) => ({ ...o, client: maskClientKey(o.client) })) : rejections.top_offenders,
      samples: series.since(since),
    };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://admin.invalid');
    const path = normalisePath(url.pathname);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, { error: 'method_not_allowed' }, { allow: 'GET, HEAD' });
      return;
    }
    if (bundle) {
      if (path === STATUS_ASSET_PATHS.page || path === `${STATUS_ASSET_PATHS.page}/`) {
        sendAsset(req, res, 'text/html; charset=utf-8', bundle.html, bundle.etag, {
          'content-security-policy': STATUS_CSP,
          'referrer-policy': 'no-referrer',
          'x-frame-options': 'DENY',
        });
        return;
      }
      if (path === STATUS_ASSET_PATHS.js) return sendAsset(req, res, 'text/javascript; charset=utf-8', bundle.js, bundle.etag);
      if (path === STATUS_ASSET_PATHS.css) return sendAsset(req, res, 'text/css; charset=utf-8', bundle.css, bundle.etag);
      if (path === MONITORING_PATHS.series) {
        // statusPage: local admits a loopback viewer without credentials, and then shows shortened client keys only.
        const local = statusMode === 'local' && !req.headers.authorization && isLoopbackHost(req.socket.remoteAddress ?? '');
        if (!local) {
          if (!(await admitAdmin(req, res, path))) return;
        }
        const since = Number(url.searchParams.get('since') ?? 0);
        status!.watched();
        sendJson(res, 200, seriesAnswer(Number.isFinite(since) ? since : 0, local));
        return;
      }
    }
    switch (path) {
      case '/metrics': {
        const text = await opts.metricsText();
        res.writeHead(200, { 'content-type': PROM_CONTENT_TYPE, 'content-length': Buffer.byteLength(text) });
        res.end(text);
        return;
      }
      case '/healthz':
        sendJson(res, 200, { status: 'ok' });
        return;
      case '/readyz': {
        const r = opts.readiness();
        sendJson(res, r.ready ? 200 : 503, { ready: r.ready, checks: r.checks });
        return;
      }
      case MONITORING_PATHS.metrics:
      case MONITORING_PATHS.activeConnections:
      case MONITORING_PATHS.rejections: {
        if (!(await admitAdmin(req, res, path))) return;
        if (path === MONITORING_PATHS.metrics) {
          sendJson(res, 200, await monitoringMetrics(opts.stats, opts.cluster?.()));
        } else if (path === MONITORING_PATHS.activeConnections) {
          const m = await monitoringMetrics(opts.stats, opts.cluster?.());
          sendJson(
            res,
            200,
            m.local
              ? { active_connections: m.active_connections, scope: m.scope, local: { active_connections: m.local.active_connections } }
              : { active_connections: m.active_connections },
          );
        } else {
          const top = Number.parseInt(url.searchParams.get('top') ?? '', 10);
          sendJson(res, 200, opts.stats.rejections(Number.isFinite(top) && top > 0 ? top : DEFAULT_TOP_OFFENDERS));
        }
        return;
      }
      default:
        sendJson(res, 404, { error: 'not_found' });
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      opts.logger.error({ event: 'admin_request_failed', path: req.url?.split('?')[0], err }, 'admin request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal' });
      else res.destroy();
    });
  });
  // Scrapers keep connections alive; do not let them hold shutdown open.
  server.keepAliveTimeout = 5_000;

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    status?.stop();
    throw err;
  }
  const address = server.address() as AddressInfo;
  const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    host: address.address,
    port: address.port,
    url: `http://${hostForUrl}:${address.port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        status?.stop();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
