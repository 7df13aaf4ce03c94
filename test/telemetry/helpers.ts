import { Writable } from 'node:stream';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { telemetrySchema, type TelemetryConfigInput } from '../../src/telemetry/config.ts';
import { startTelemetry, type Telemetry, type TelemetryDeps } from '../../src/telemetry/start.ts';

/** Captures pino's JSON lines. */
export class LogCapture extends Writable {
  readonly lines: Array<Record<string, unknown>> = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim()) this.lines.push(JSON.parse(line) as Record<string, unknown>);
    }
    cb();
  }
  events(name: string): Array<Record<string, unknown>> {
    return this.lines.filter((l) => l.event === name);
  }
}

export interface TestTelemetry extends Telemetry {
  logs: LogCapture;
  url: string;
}

export async function startTestTelemetry(
  config: TelemetryConfigInput = {},
  deps: Partial<TelemetryDeps> & { spanProcessors?: SpanProcessor[] } = {},
): Promise<TestTelemetry> {
  const logs = new LogCapture();
  const parsed = telemetrySchema.parse({
    ...config,
    admin: { host: '127.0.0.1', port: 0, ...(config.admin ?? {}) },
    instanceId: config.instanceId ?? 'test-instance',
  });
  const t = await startTelemetry(parsed, {
    verifyToken: async () => {
      throw new Error('no verifier in this test');
    },
    readiness: () => ({ ready: true, checks: {} }),
    serviceVersion: '0.0.0-test',
    logDestination: logs,
    // Tests must not pick up a developer's OTEL_* environment.
    env: {},
    ...deps,
  });
  return Object.assign(t, { logs, url: t.admin!.url });
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Scrape {
  text: string;
  contentType: string | null;
  samples: Sample[];
  /** metric family name → TYPE */
  types: Map<string, string>;
  /** Value of the one sample matching name and (a subset of) labels; undefined if none, throws if several. */
  value(name: string, labels?: Record<string, string>): number | undefined;
  find(name: string, labels?: Record<string, string>): Sample[];
}

/** A small parser for the Prometheus text format 0.0.4, enough for exact assertions. */
export function parsePrometheus(text: string): Omit<Scrape, 'contentType'> {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    if (line.startsWith('#')) {
      const m = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (m) types.set(m[1]!, m[2]!);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable sample line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      for (const lm of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]!] = lm[2]!;
    }
    const raw = m[3]!;
    samples.push({ name: m[1]!, labels, value: raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw) });
  }
  const find = (name: string, labels: Record<string, string> = {}) =>
    samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return {
    text,
    samples,
    types,
    find,
    value(name, labels) {
      const hits = find(name, labels);
      if (hits.length > 1) throw new Error(`${hits.length} samples match ${name} ${JSON.stringify(labels)}`);
      return hits[0]?.value;
    },
  };
}

export async function scrape(baseUrl: string): Promise<Scrape> {
  const res = await fetch(`${baseUrl}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  const text = await res.text();
  return { ...parsePrometheus(text), contentType: res.headers.get('content-type') };
}
