import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ValueType, type Attributes } from '@opentelemetry/api';
import { hrTime } from '@opentelemetry/core';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  MeterProvider,
  PeriodicExportingMetricReader,
  type CollectionResult,
  type HistogramMetricData,
  type MetricProducer,
  type MetricReader,
} from '@opentelemetry/sdk-metrics';
import type { Argv } from 'yargs';
import { RESOURCE_ATTR } from '../src/telemetry/names.ts';
import { checkNumericOptions } from './numeric-options.ts';
import { CliError } from './cli-error.ts';
import { parseDurationSec } from './common-options.ts';
import {
  CONNECT_BUCKETS_SEC,
  LOADGEN_ATTR as A,
  LOADGEN_DESCRIPTIONS as D,
  LOADGEN_DIRECTIONS,
  LOADGEN_INSTRUMENTS as I,
  LOADGEN_SCOPE,
  ROUND_TRIP_BUCKETS_SEC,
  type LoadgenInstrument,
} from './engine/live-metrics-names.ts';
import { emptyTotals, type BucketCounts, type LiveTotals } from './engine/live-totals.ts';

/** The live-metrics flags every load command takes (flood, storm, and the scenario runner). */
export function withLiveMetricsOptions<T>(y: Argv<T>) {
  return y
    .option('metrics-port', {
      type: 'number',
      description: 'Serve this run’s metrics for Prometheus on this port while it runs (/metrics; 0: any free port, printed)',
      group: 'Live metrics:',
    })
    .option('metrics-host', {
      type: 'string',
      default: '127.0.0.1',
      description: 'Address for --metrics-port (0.0.0.0 in a pod that Prometheus scrapes)',
      group: 'Live metrics:',
    })
    .option('otlp-endpoint', {
      type: 'string',
      description: 'Push this run’s metrics by OTLP/HTTP to this base URL (/v1/metrics is appended); default OTEL_EXPORTER_OTLP_*ENDPOINT',
      group: 'Live metrics:',
    })
    .option('otlp-interval', {
      type: 'string',
      default: '10s',
      description: 'How often to push by OTLP (a last push follows the end of the run)',
      group: 'Live metrics:',
    });
}

export interface LiveMetricsArgs {
  metricsPort?: number;
  metricsHost: string;
  otlpEndpoint?: string;
  otlpInterval: string;
}

export interface LiveMetricsOptions {
  runId: string;
  /** `2/4`; `1/1` for a whole run. */
  shard: string;
  metricsPort?: number;
  metricsHost: string;
  /** Base URL; undefined: the standard OTEL_EXPORTER_OTLP_METRICS_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT, if set. */
  otlpEndpoint?: string;
  otlpIntervalMs: number;
  env?: NodeJS.ProcessEnv;
}

export function liveMetricsFromArgs(
  a: LiveMetricsArgs,
  run: { runId: string; shard?: { index: number; count: number } },
): LiveMetricsOptions {
  const port = a.metricsPort;
  if (port !== undefined) checkNumericOptions({ 'metrics-port': port });
  if (a.otlpEndpoint !== undefined && !/^https?:\/\/[^/]/.test(a.otlpEndpoint))
    throw new CliError('usage', `--otlp-endpoint ${a.otlpEndpoint}: expected an http:// or https:// URL`);
  const intervalSec = parseDurationSec(a.otlpInterval, 'otlp-interval');
  if (!(intervalSec > 0)) throw new CliError('usage', `--otlp-interval ${a.otlpInterval}: must be > 0`);
  return {
    runId: run.runId,
    shard: run.shard ? `${run.shard.index}/${run.shard.count}` : '1/1',
    metricsPort: port,
    metricsHost: a.metricsHost,
    otlpEndpoint: a.otlpEndpoint,
    otlpIntervalMs: intervalSec * 1000,
  };
}

export interface LiveMetrics {
  /** Give it every running total the run reports (RunHooks.onLive). */
  readonly onLive: (t: LiveTotals) => void;
  /** `http://host:port/metrics` when --metrics-port is on. */
  readonly url: string | undefined;
  /** Pushes the final totals (OTLP) and stops serving. Idempotent. */
  close(): Promise<void>;
}

function otlpFromEnv(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED === 'true' || env.OTEL_METRICS_EXPORTER === 'none') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT);
}

/**
 * Exports a run's running totals with OpenTelemetry, the sidecar's stack: a Prometheus endpoint on
 * --metrics-port and/or OTLP push. Returns undefined when neither is asked for, so a run without
 * them records nothing extra. Counters and the gauge are observable instruments read at collection
 * time from the latest totals; the two histograms come from a MetricProducer over the recorder's own
 * explicit buckets, because OTel JS has no observable histogram and the worker threads' buckets
 * must add up in the parent.
 */
export async function startLiveMetrics(o: LiveMetricsOptions): Promise<LiveMetrics | undefined> {
  const env = o.env ?? process.env;
  const otlp = o.otlpEndpoint !== undefined || otlpFromEnv(env);
  if (o.metricsPort === undefined && !otlp) return undefined;

  let totals = emptyTotals();
  const base: Attributes = { [A.runId]: o.runId, [A.shard]: o.shard };
  const startTime = hrTime();
  const resource = resourceFromAttributes({ [RESOURCE_ATTR.serviceName]: LOADGEN_SCOPE });
  const histograms: MetricProducer = {
    collect: async (): Promise<CollectionResult> => ({
      resourceMetrics: {
        resource,
        scopeMetrics: [
          {
            scope: { name: LOADGEN_SCOPE },
            metrics: [
              histogram('roundTrip', ROUND_TRIP_BUCKETS_SEC, totals.rtt, base, startTime),
              histogram('connectDuration', CONNECT_BUCKETS_SEC, totals.connect, base, startTime),
            ],
          },
        ],
      },
      errors: [],
    }),
  };

  const readers: MetricReader[] = [];
  let prometheus: PrometheusExporter | undefined;
  if (o.metricsPort !== undefined) {
    prometheus = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true, metricProducers: [histograms] });
    readers.push(prometheus);
  }
  if (otlp) {
    // No url: the exporter reads OTEL_EXPORTER_OTLP_METRICS_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT and headers itself.
    const url = o.otlpEndpoint === undefined ? undefined : `${o.otlpEndpoint.replace(/\/+$/, '')}/v1/metrics`;
    readers.push(
      new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter(url ? { url } : {}),
        exportIntervalMillis: o.otlpIntervalMs,
        exportTimeoutMillis: Math.min(o.otlpIntervalMs, 10_000),
        metricProducers: [histograms],
      }),
    );
  }
  const provider = new MeterProvider({ resource, readers });
  const meter = provider.getMeter(LOADGEN_SCOPE);
  const counter = (k: LoadgenInstrument) => meter.createObservableCounter(I[k], { description: D[k], valueType: ValueType.INT });
  const attempts = counter('attempts');
  const opened = counter('opened');
  const outcomes = counter('outcomes');
  const messages = counter('messages');
  const lost = counter('messagesLost');
  const bytes = counter('bytes');
  const open = meter.createObservableGauge(I.open, { description: D.open, valueType: ValueType.INT });
  meter.addBatchObservableCallback(
    (r) => {
      const t = totals;
      r.observe(attempts, t.attempts, base);
      r.observe(opened, t.opened, base);
      for (const [outcome, n] of Object.entries(t.outcomes)) r.observe(outcomes, n, { ...base, [A.outcome]: outcome });
      r.observe(messages, t.sent, { ...base, [A.direction]: LOADGEN_DIRECTIONS.sent });
      r.observe(messages, t.received, { ...base, [A.direction]: LOADGEN_DIRECTIONS.received });
      r.observe(lost, t.lost, base);
      r.observe(bytes, t.bytesOut, { ...base, [A.direction]: LOADGEN_DIRECTIONS.sent });
      r.observe(bytes, t.bytesIn, { ...base, [A.direction]: LOADGEN_DIRECTIONS.received });
      r.observe(open, t.open, base);
    },
    [attempts, opened, outcomes, messages, lost, bytes, open],
  );

  let server: Server | undefined;
  let url: string | undefined;
  if (prometheus) {
    const exporter = prometheus;
    const serializer = new PrometheusSerializer(undefined, false, undefined, false, true);
    server = createServer((req, res) => {
      if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') return void res.writeHead(404).end();
      exporter.collect().then(
        ({ resourceMetrics }) =>
          res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }).end(serializer.serialize(resourceMetrics)),
        (err: unknown) => res.writeHead(500).end(`metric collection failed: ${(err as Error).message}\n`),
      );
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject).listen(o.metricsPort, o.metricsHost, () => resolve());
      });
    } catch (err) {
      await provider.shutdown();
      const e = err as NodeJS.ErrnoException;
      throw new CliError(
        'usage',
        `--metrics-port ${o.metricsPort} on ${o.metricsHost}: ${e.code === 'EADDRINUSE' ? 'the port is already in use' : e.message}`,
      );
    }
    const addr = server.address() as AddressInfo;
    url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}/metrics`;
  }

  let closing: Promise<void> | undefined;
  return {
    onLive: (t) => (totals = t),
    url,
    close() {
      closing ??= (async () => {
        // shutdown() runs a last export on the periodic reader: the OTLP collector gets the final totals.
        await Promise.allSettled([
          provider.shutdown(),
          server && new Promise<void>((resolve) => server!.close(() => resolve()).closeAllConnections()),
        ]);
      })();
      return closing;
    },
  };
}

function histogram(
  k: LoadgenInstrument,
  bounds: readonly number[],
  b: BucketCounts,
  attributes: Attributes,
  startTime: [number, number],
): HistogramMetricData {
  return {
    descriptor: { name: I[k], description: D[k], unit: 's', valueType: ValueType.DOUBLE },
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.HISTOGRAM,
    dataPoints: [
      {
        startTime,
        endTime: hrTime(),
        attributes,
        value: {
          buckets: { boundaries: [...bounds], counts: b.counts.length > 0 ? b.counts : new Array<number>(bounds.length + 1).fill(0) },
          sum: b.sum,
          count: b.count,
        },
      },
    ],
  };
}
