import { GatewayError } from '../errors.ts';
import { storeOutage } from './pipeline.ts';
import type { Config } from '../config/schema.ts';
import type { AttemptResult, LimitStore } from '../limits/limit-store.ts';
import type { AdmissionContext } from './context.ts';
import type { AdmissionPolicy } from './policy.ts';

/** Per-client connection attempts in a sliding window (seed: 10 an hour). 429 with Retry-After. */
export function attemptLimitPolicy(config: Config['limits']['attempts'], store: LimitStore): AdmissionPolicy {
  function decide(ctx: AdmissionContext, result: AttemptResult): void {
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
  }
  return {
    name: 'attempt_limit',
    dryRun: config.dryRun,
    outage: storeOutage,
    check(ctx) {
      // The memory store answers at once: then so does this policy (no Promise, runAdmission stays synchronous).
      const result = store.tryAttempt(ctx.clientKey, config.max, config.windowMs, ctx.nowMs);
      if (result instanceof Promise) return result.then((r) => decide(ctx, r));
      decide(ctx, result);
    },
  };
}
