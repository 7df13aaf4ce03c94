import { GatewayError } from '../errors.ts';
import { storeOutage } from './pipeline.ts';
import type { Config } from '../config/schema.ts';
import type { LimitStore } from '../limits/limit-store.ts';
import type { AdmissionPolicy } from './policy.ts';

/** Per-client connection attempts in a sliding window (seed: 10 an hour). 429 with Retry-After. */
export function attemptLimitPolicy(config: Config['limits']['attempts'], store: LimitStore): AdmissionPolicy {
  return {
    name: 'attempt_limit',
    dryRun: config.dryRun,
    outage: storeOutage,
    async check(ctx) {
      const result = await store.tryAttempt(ctx.clientKey, config.max, config.windowMs, ctx.nowMs);
      if (!result.ok) {
        throw new GatewayError(
          'attempt_limit',
          `${config.max} connection attempts in ${config.windowMs / 1000} s already made (limits.attempts.max)`,
          {
            retryAfterMs: result.retryAfterMs,
          },
        );
      }
      ctx.reservations.attempt = () => void store.releaseAttempt(ctx.clientKey, result.id);
    },
  };
}
