import { createRequire } from 'node:module';
import type { Tracer } from '@opentelemetry/api';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { DestinationStream, Logger } from 'pino';
import type { VerifyToken } from '../monitoring/admin-auth.ts';
import { startAdminServer, type AdminServer, type Readiness } from '../monitoring/admin-server.ts';
import type { ClusterStats } from '../monitoring/cluster-stats.ts';
import { LiveStats } from '../monitoring/live-stats.ts';
import { resolveInstanceId, type TelemetryConfig } from './config.ts';
import { GatewayMetrics } from './gateway-metrics.ts';
import { createLogger } from './logger.ts';
import { RESOURCE_ATTR, SCOPE } from './names.ts';
import { createNoopObserver, type GatewayObserver } from './observer.ts';
import { RejectionLog } from './rejection-log.ts';
import { startRuntimeMetrics } from './runtime-metrics.ts';
import { TelemetryObserver } from './telemetry-observer.ts';

export interface TelemetryDeps {
  /** The gateway's jose verifier in its monitoring scope (aud must carry telemetry.monitoring.audience); resolves to the claims, throws on an invalid token. */
  verifyToken: VerifyToken;
  /** Readiness as the gateway sees it (listening, JWKS loaded, limit store, not draining). */
  readiness: () => Readiness;
  /** service.version; defaults to package.json's version. */
  serviceVersion?: string;
  /** Extra span processors (tests: SimpleSpanProcessor(InMemorySpanExporter)); turn tracing on by themselves. */
  spanProcessors?: SpanProcessor[];
  /** Where JSON log lines go (default stdout); ignored when `logger` is given. */
  logDestination?: DestinationStream;
  /** Use this logger instead of creating one. */
  logger?: Logger;
  /** Wall clock (ms) for the monitoring API's "today" and windows; tests pass a fake. */
  now?: () => number;
  /** Environment for OTEL_* variables (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** With limits.store=redis: the cross-replica monitoring figures (read lazily, the store starts later). */
  cluster?: () => ClusterStats | undefined;
  /** The effective limits the status page's header shows (read lazily: the final config exists later). */
  statusLimits?: () => Record<string, string | number | boolean>;
}

export interface Telemetry {
  observer: GatewayObserver;
  logger: Logger;
  /** The admin listener (undefined when telemetry is disabled). */
  admin: AdminServer | undefined;
  /** Whether spans are recorded and exported. */
  tracing: boolean;
  /** The monitoring API's local figures (undefined when telemetry is disabled). */
  stats: LiveStats | undefined;
  /** Current Prometheus exposition (what /metrics serves). */
  metricsText(): Promise<string>;
  /** Flushes logs and spans, ends open connection spans, closes the admin listener. Idempotent. */
  close(): Promise<void>;
}

function packageVersion(): string {
  try {
    return (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
  } catch (err) {
    // Only reachable when the file layout changes; the version is informational.
    return `unknown (${(err as Error).message.split('\n')[0]})`;
  }
}

/** Traces are exported over OTLP/HTTP when an endpoint is configured, in the config or the standard env. */
function otlpEndpointConfigured(config: TelemetryConfig, env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_TRACES_EXPORTER === 'none' || env.OTEL_SDK_DISABLED === 'true') return false;
  return Boolean(config.traces.otlpEndpoint || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT);
}

/**
 * Starts metrics, traces, logs and the admin listener. The providers are not registered as the
 * OpenTelemetry globals: wsguard has no auto-instrumentation to feed, and staying local lets tests
 * run several instances in one process. (NodeSDK would register globals and patch modules.)
 */
export async function startTelemetry(config: TelemetryConfig, deps: TelemetryDeps): Promise<Telemetry> {
  const instanceId = resolveInstanceId(config);
  const logger = deps.logger ?? createLogger({ ...config, instanceId }, deps.logDestination);
  if (!config.enabled) {
    return {
      observer: createNoopObserver(),
      logger,
      admin: undefined,
      stats: undefined,
      tracing: false,
      metricsText: async () => '',
      close: async () => {},
    };
  }
  const env = deps.env ?? process.env;
  const now = deps.now ?? Date.now;
  const version = deps.serviceVersion ?? packageVersion();
  const resource = resourceFromAttributes({
    [RESOURCE_ATTR.serviceName]: config.serviceName,
    [RESOURCE_ATTR.serviceVersion]: version,
    [RESOURCE_ATTR.serviceInstanceId]: instanceId,
  });

  // The exporter is used as a pull reader only: /metrics is served by our own admin listener.
  const exporter = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true });
  const serializer = new PrometheusSerializer(undefined, false, undefined, false, true);
  const meterProvider = new MeterProvider({ resource, readers: [exporter] });
  const meter = meterProvider.getMeter(SCOPE, version);

  const processors: SpanProcessor[] = [...(deps.spanProcessors ?? [])];
  if (otlpEndpointConfigured(config, env)) {
    // url undefined: the exporter reads OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT and headers itself.
    processors.push(new BatchSpanProcessor(new OTLPTraceExporter(config.traces.otlpEndpoint ? { url: config.traces.otlpEndpoint } : {})));
  }
  const tracerProvider =
    processors.length > 0
      ? new BasicTracerProvider({
          resource,
          sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.traces.sampleRatio) }),
          spanProcessors: processors,
        })
      : undefined;
  const tracer: Tracer | undefined = tracerProvider?.getTracer(SCOPE, version);

  const metrics = new GatewayMetrics(meter);
  const runtime = startRuntimeMetrics(meter);
  const stats = new LiveStats({
    timeZone: config.monitoring.timeZone,
    messagesPerMinuteWindowSec: config.monitoring.messagesPerMinuteWindowSec,
    topOffendersCapacity: config.monitoring.topOffendersCapacity,
    now,
    totals: () => metrics.totals(),
    activeConnections: () => metrics.totals().active,
  });
  const sampler = setInterval(() => {
    try {
      stats.tick();
    } catch (err) {
      logger.error({ event: 'stats_tick_failed', err }, 'monitoring stats sample failed');
    }
  }, 1000);
  sampler.unref();

  const rejectionLog = new RejectionLog(logger, {
    intervalMs: config.logs.rejectionSummaryIntervalMs,
    linesPerInterval: config.logs.rejectionLinesPerInterval,
  });
  const observer = new TelemetryObserver({
    metrics,
    stats,
    rejectionLog,
    logger,
    tracer,
    violationEventsPerSec: config.traces.violationEventsPerSec,
  });

  const metricsText = async (): Promise<string> => {
    const { resourceMetrics, errors } = await exporter.collect();
    if (errors.length > 0) logger.warn({ event: 'metrics_collect_errors', errors: errors.map(String) }, 'metric collection had errors');
    return serializer.serialize(resourceMetrics);
  };

  let admin: AdminServer;
  try {
    admin = await startAdminServer({
      host: config.admin.host,
      port: config.admin.port,
      metricsText,
      readiness: deps.readiness,
      verifyToken: deps.verifyToken,
      adminClaims: config.monitoring.adminClaims,
      stats,
      ...(deps.cluster ? { cluster: deps.cluster } : {}),
      logger,
      statusPage: config.monitoring.statusPage,
      serviceVersion: version,
      ...(deps.statusLimits ? { statusLimits: deps.statusLimits } : {}),
    });
  } catch (err) {
    clearInterval(sampler);
    runtime.stop();
    await Promise.allSettled([meterProvider.shutdown(), tracerProvider?.shutdown()]);
    const code = (err as NodeJS.ErrnoException).code;
    const hint =
      code === 'EADDRINUSE' ? `port ${config.admin.port} is already in use; choose another telemetry.admin.port` : (err as Error).message;
    throw new Error(`telemetry admin listener could not bind ${config.admin.host}:${config.admin.port}: ${hint}`, {
      cause: err,
    });
  }
  logger.info(
    { event: 'telemetry_started', admin: admin.url, tracing: tracer !== undefined, time_zone: config.monitoring.timeZone },
    'telemetry started',
  );

  let closing: Promise<void> | undefined;
  return {
    observer,
    logger,
    admin,
    stats,
    tracing: tracer !== undefined,
    metricsText,
    close() {
      closing ??= (async () => {
        clearInterval(sampler);
        rejectionLog.flush();
        observer.endOpenSpans();
        runtime.stop();
        const results = await Promise.allSettled([admin.close(), tracerProvider?.shutdown(), meterProvider.shutdown()]);
        for (const r of results) {
          if (r.status === 'rejected') logger.warn({ event: 'telemetry_close_failed', err: r.reason }, 'telemetry shutdown step failed');
        }
        logger.flush();
      })();
      return closing;
    },
  };
}
