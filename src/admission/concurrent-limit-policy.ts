import { GatewayError } from '../errors.ts';
import { storeOutage } from './pipeline.ts';
import type { Config } from '../config/schema.ts';
import type { LimitStore } from '../limits/limit-store.ts';
import type { AdmissionContext } from './context.ts';
import type { AdmissionPolicy } from './policy.ts';

/** Per-client open connections (seed: 5). The slot is held until the connection closes. */
export function concurrentLimitPolicy(config: Config['limits']['concurrent'], store: LimitStore): AdmissionPolicy {
  function decide(ctx: AdmissionContext, acquired: boolean): void {
    if (!acquired) {
      throw new GatewayError('conn_limit', `${config.max} connections already open (limits.concurrent.max)`, {
        retryAfterMs: config.retryAfterSec * 1000,
      });
    }
    let held = true;
    ctx.reservations.slot = () => {
      if (!held) return;
      held = false;
      void store.releaseSlot(ctx.clientKey);
    };
  }
  return {
    name: 'conn_limit',
    dryRun: config.dryRun,
    outage: storeOutage,
    check(ctx) {
      // Synchronous with the memory store, like the attempt limit.
      const acquired = store.tryAcquireSlot(ctx.clientKey, config.max);
      if (acquired instanceof Promise) return acquired.then((a) => decide(ctx, a));
      decide(ctx, acquired);
    },
  };
}
