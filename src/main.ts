import pino, { type Logger } from 'pino';
import { createTokenVerifier, type TokenVerifier } from './auth/token-verifier.ts';
import { parseConfig } from './config/load.ts';
import type { Config } from './config/schema.ts';
import { startDemoUpstream, type DemoUpstream } from './demo/demo-upstream.ts';
import { startGateway, type Gateway } from './gateway/gateway.ts';
import { MemoryLimitStore } from './limits/memory-store.ts';
import type { LimitStore } from './limits/limit-store.ts';
import { createNoopObserver, type GatewayObserver } from './telemetry/observer.ts';

export interface Server {
  config: Config;
  gateway: Gateway;
  /** The built-in demo upstream, when no route was configured. */
  demo: DemoUpstream | null;
  verifier: TokenVerifier | null;
  /** Graceful stop: readiness false, stop listening, 1001s over the drain window, then release everything. */
  drain(windowMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface StartOptions {
  observer?: GatewayObserver;
  logger?: Logger;
  store?: LimitStore;
}

/** With no route configured, wsguard fronts its own demo upstream and admits anonymous clients. */
function withDemoRoute(config: Config, demoPort: number): Config {
  return parseConfig({
    ...config,
    routes: [{ path: '/ws/', upstream: `ws://127.0.0.1:${demoPort}/ws/`, allowAnonymous: true }],
  });
}

/** load config → start telemetry → start gateway; signals are the CLI's business (cli/commands/serve.ts). */
export async function startServer(input: Config, options: StartOptions = {}): Promise<Server> {
  const logger = options.logger ?? pino({ level: 'info', redact: ['req.headers.authorization', 'token'] });
  const demo = input.routes.length === 0 ? await startDemoUpstream() : null;
  const config = demo ? withDemoRoute(input, demo.port) : input;
  const hasKeys = Boolean(config.auth.secret || config.auth.publicKeys.length || config.auth.jwksUrl);
  const verifier = hasKeys
    ? await createTokenVerifier(config.auth, {
        onError: (err) => logger.warn({ err: err.message }, 'JWKS refresh failed; keeping the last good key set'),
      })
    : null;
  const store = options.store ?? new MemoryLimitStore();
  const observer = options.observer ?? createNoopObserver();
  let gateway: Gateway;
  try {
    gateway = await startGateway({ config, store, verifier, observer, logger });
  } catch (err) {
    demo?.close();
    verifier?.close();
    await store.close();
    throw err;
  }
  const release = async () => {
    demo?.close();
    verifier?.close();
    await store.close();
  };
  return {
    config,
    gateway,
    demo,
    verifier,
    async drain(windowMs) {
      await gateway.drain(windowMs);
      await release();
    },
    async close() {
      await gateway.close();
      await release();
    },
  };
}
