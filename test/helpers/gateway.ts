import pino from 'pino';
import { onTestFinished } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import type { RawConfig } from '../../src/config/schema.ts';
import { startServer, type Server, type StartOptions } from '../../src/main.ts';
import { scrape, type Scrape } from '../telemetry/helpers.ts';
import { TEST_SECRET } from './tokens.ts';
import { startEchoUpstream, type TestUpstream } from './upstream.ts';

export interface TestGateway {
  server: Server;
  port: number;
  /** ws://127.0.0.1:PORT */
  base: string;
  close(): Promise<void>;
}

/** A deep merge good enough for test configs (objects merge, arrays and scalars replace). */
function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && prev && typeof prev === 'object' && !Array.isArray(prev)
        ? merge(prev as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** Starts wsguard on 127.0.0.1:0 with an HS256 test secret, relaying /ws/ to `upstreamUrl`/ws/. */
export async function startTestGateway(upstreamUrl: string, overrides: RawConfig = {}, options: StartOptions = {}): Promise<TestGateway> {
  const raw = merge(
    {
      server: { host: '127.0.0.1', port: 0, drainWindowMs: 200 },
      // Test files run in parallel: the admin listener must not take the default 9464 either.
      telemetry: { admin: { port: 0 } },
      routes: [{ path: '/ws/', upstream: `${upstreamUrl}/ws/` }],
      auth: { secret: TEST_SECRET },
    },
    overrides as Record<string, unknown>,
  );
  const server = await startServer(parseConfig(raw), { logger: pino({ level: 'silent' }), ...options });
  const port = server.gateway.port;
  return { server, port, base: `ws://127.0.0.1:${port}`, close: () => server.close() };
}

export interface UseGatewayOptions {
  /** Config on top of startTestGateway's defaults (port 0, admin port 0, the test secret, one /ws/ route). */
  config?: RawConfig;
  /** The upstream base URL; by default an echo upstream is started for this test and stopped after it. */
  upstream?: string;
  start?: StartOptions;
  /**
   * Where /metrics is served when `start.observer` replaces the gateway's own telemetry (for example
   * startTestTelemetry's url, to record spans too); by default the gateway's own admin listener.
   */
  metricsUrl?: string;
}

export interface UsedGateway extends TestGateway {
  /** The echo upstream started for this test (null when `upstream` was given). */
  upstream: TestUpstream | null;
  /** One scrape of /metrics, parsed: compare two with `delta`. */
  metrics(): Promise<Scrape>;
}

/**
 * A gateway (and, unless one is given, an echo upstream) for the current test only, both stopped by
 * vitest's onTestFinished whatever the outcome. Call it inside a test, not in beforeAll: a gateway
 * shared by tests leaves counters and limit state behind that the next test would have to discount,
 * and makes a test pass or fail depending on which tests ran before it.
 */
export async function useGateway(options: UseGatewayOptions = {}): Promise<UsedGateway> {
  let upstream: TestUpstream | null = null;
  if (options.upstream === undefined) {
    const started = await startEchoUpstream();
    upstream = started;
    onTestFinished(() => started.close());
  }
  const g = await startTestGateway(options.upstream ?? upstream!.url, options.config ?? {}, options.start ?? {});
  // Registered after the upstream's: onTestFinished runs in reverse, so the gateway stops first.
  onTestFinished(() => g.close());
  const metricsUrl = options.metricsUrl ?? g.server.telemetry?.admin?.url;
  return {
    ...g,
    upstream,
    metrics() {
      if (!metricsUrl) throw new Error('no /metrics to read: telemetry is disabled or replaced; pass metricsUrl');
      return scrape(metricsUrl);
    },
  };
}

/**
 * How far one sample moved between two scrapes (a sample absent from a scrape counts as 0, as a
 * counter not yet incremented is absent). `labels` may be a subset; it must match one sample.
 */
export function delta(before: Scrape, after: Scrape, name: string, labels: Record<string, string> = {}): number {
  return (after.value(name, labels) ?? 0) - (before.value(name, labels) ?? 0);
}
