import pino, { type Logger } from 'pino';
import { createTokenVerifier, type TokenVerifier } from './auth/token-verifier.ts';
import type { Config } from './config/schema.ts';
import { configWarnings } from './config/warnings.ts';
import { demoConfig } from './demo/demo-config.ts';
import { startDemoUpstream, type DemoUpstream } from './demo/demo-upstream.ts';
import { startGateway, type Gateway } from './gateway/gateway.ts';
import { createLimitStore } from './limits/create-store.ts';
import { RedisLimitStore } from './limits/redis-store.ts';
import { ClusterStats } from './monitoring/cluster-stats.ts';
import { startFdBudget } from './monitoring/fd-budget.ts';
import type { LimitStore } from './limits/limit-store.ts';
import { readinessFrom } from './monitoring/readiness.ts';
import { effectiveLimits } from './monitoring/status/limits-summary.ts';
import { resolveInstanceId } from './telemetry/config.ts';
import { createNoopObserver, type GatewayObserver } from './telemetry/observer.ts';
import { startTelemetry, type Telemetry } from './telemetry/start.ts';

export interface Server {
  config: Config;
  gateway: Gateway;
  /** The built-in demo upstream (StartOptions.demo). */
  demo: DemoUpstream | null;
  verifier: TokenVerifier | null;
  /** Metrics, traces, logs and the admin listener; null when the caller passed its own observer. */
  telemetry: Telemetry | null;
  /** Graceful stop: readiness false, stop listening, 1001s over the drain window, then release everything. */
  drain(windowMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface StartOptions {
  observer?: GatewayObserver;
  logger?: Logger;
  store?: LimitStore;
  /** Front the built-in demo upstream (`serve --demo`, `npm start`) instead of configured routes. */
  demo?: boolean;
}

function storeHealth(store: LimitStore | undefined): { storeOk?: boolean; storeDegraded?: boolean } {
  const health = store?.health?.();
  return health ? { storeOk: health.ok, storeDegraded: health.degraded } : {};
}

/** load config → start telemetry → start gateway; signals are the CLI's business (cli/commands/serve.ts). */
export async function startServer(input: Config, options: StartOptions = {}): Promise<Server> {
  // Telemetry first: the gateway reports into it from its first handshake. The readiness and token
  // callbacks read the gateway and verifier lazily, as they exist only later.
  let gateway: Gateway | undefined;
  let verifier: TokenVerifier | null = null;
  let storeRef: LimitStore | undefined;
  let clusterStats: ClusterStats | undefined;
  let effective: Config | undefined;
  const fds = startFdBudget({ minFree: input.server.minFreeFds });
  const telemetry = options.observer
    ? null
    : await startTelemetry(input.telemetry, {
        verifyToken: async (token) => {
          if (!verifier) throw new Error('no verification keys configured');
          return (await verifier.verifyMonitoring(token)) as Record<string, unknown>;
        },
        readiness: readinessFrom(() =>
          gateway
            ? {
                listening: gateway.listening,
                draining: gateway.draining,
                jwksLoaded: verifier?.ready() ?? true,
                fdsOk: !fds.exhausted(),
                ...storeHealth(storeRef),
              }
            : undefined,
        ),
        ...(options.logger ? { logger: options.logger } : {}),
        cluster: () => clusterStats,
        statusLimits: () => effectiveLimits(effective ?? input),
      });
  const logger = options.logger ?? telemetry?.logger ?? pino({ level: 'info', redact: ['req.headers.authorization', 'token'] });
  const observer = options.observer ?? telemetry?.observer ?? createNoopObserver();
  // The operator's config, not the demo route added below (that one is loopback-only by design).
  for (const warning of configWarnings(input)) logger.warn({ event: 'config_warning' }, warning);
  if (!options.demo && input.routes.length === 0) {
    fds.stop();
    await telemetry?.close();
    // Silently fronting the demo (which admits anyone) was the old behaviour of a config that lost its routes.
    throw new Error(
      'no routes configured: add routes (a config file, WSGUARD_ROUTES or --route PATH=URL), or run --demo for the built-in demo',
    );
  }
  const demo = options.demo ? await startDemoUpstream() : null;
  const config = demo ? demoConfig(input, demo.port) : input;
  effective = config;
  const hasKeys = Boolean(config.auth.secret || config.auth.publicKeys.length || config.auth.jwksUrl);
  try {
    verifier = hasKeys
      ? await createTokenVerifier(
          config.auth,
          {
            onRefresh: (outcome) => observer.jwksRefreshed(outcome),
            onError: (err) => logger.warn({ err: err.message }, 'JWKS refresh failed; keeping the last good key set'),
          },
          { monitoringAudience: config.telemetry.monitoring.audience },
        )
      : null;
  } catch (err) {
    fds.stop();
    demo?.close();
    await telemetry?.close();
    throw err;
  }
  const store = options.store ?? (await createLimitStore(config.limits, observer, logger));
  storeRef = store;
  // Each replica publishes its monitoring figures through the shared Redis, so the API can sum them.
  const liveStats = telemetry?.stats;
  if (store instanceof RedisLimitStore && liveStats) {
    clusterStats = new ClusterStats({
      redis: store.redis,
      keyPrefix: config.limits.redis.keyPrefix,
      instance: resolveInstanceId(config.telemetry),
      local: () => {
        const s = liveStats.snapshot();
        return { active_connections: s.active_connections, connections_today: s.connections_today };
      },
      logger,
    });
  }
  observer.trackedClientsSource(() => store.size());
  observer.gatewayStateSource(() => {
    const { open, limit } = fds.sample();
    return { handshakesPending: gateway?.pendingCount ?? 0, fdOpen: open, fdLimit: limit };
  });
  try {
    gateway = await startGateway({ config, store, verifier, observer, logger, fds });
  } catch (err) {
    fds.stop();
    demo?.close();
    verifier?.close();
    await clusterStats?.stop();
    await store.close();
    await telemetry?.close();
    throw err;
  }
  const release = async () => {
    fds.stop();
    demo?.close();
    verifier?.close();
    await clusterStats?.stop();
    await store.close();
    await telemetry?.close();
  };
  const started = gateway;
  return {
    config,
    gateway: started,
    demo,
    verifier,
    telemetry,
    async drain(windowMs) {
      await started.drain(windowMs);
      await release();
    },
    async close() {
      await started.close();
      await release();
    },
  };
}
