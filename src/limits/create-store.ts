import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { GatewayObserver } from '../telemetry/observer.ts';
import type { LimitStore } from './limit-store.ts';
import { MemoryLimitStore } from './memory-store.ts';
import { RedisLimitStore } from './redis-store.ts';

/** The store `limits.store` names. A Redis store that cannot connect yet starts degraded, not failed. */
export async function createLimitStore(limits: Config['limits'], observer: GatewayObserver, logger: Logger): Promise<LimitStore> {
  if (limits.store === 'memory') return new MemoryLimitStore({ maxTrackedKeys: limits.maxTrackedKeys });
  const store = new RedisLimitStore({
    redis: limits.redis,
    expectedReplicas: limits.expectedReplicas,
    attempts: limits.attempts.onStoreError,
    concurrent: limits.concurrent.onStoreError,
    maxTrackedKeys: limits.maxTrackedKeys,
    onError: () => observer.limitStoreError('redis'),
    onDegraded: (degraded) => observer.limitStoreDegraded('redis', degraded),
    onConnectionError: (message) =>
      logger.warn({ event: 'limit_store_connection_error', store: 'redis', err: message }, 'Redis limit store connection failed'),
  });
  if (!(await store.ready()))
    logger.warn(
      { event: 'limit_store_not_ready', store: 'redis' },
      'Redis limit store not connected yet; limits follow their onStoreError until it is',
    );
  return store;
}
