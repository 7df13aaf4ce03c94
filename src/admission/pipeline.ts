import { GatewayError, isGatewayError, toGatewayError } from '../errors.ts';
import { STORE_RETRY_AFTER_MS } from '../limits/limit-store.ts';
import type { GatewayObserver } from '../telemetry/observer.ts';
import type { AdmissionContext } from './context.ts';
import type { AdmissionPolicy } from './policy.ts';

export interface Rejection {
  error: GatewayError;
  policy: string;
}

/**
 * Runs the policies in order and stops at the first rejection (the Envoy filter-chain shape). A
 * dry-run policy's rejection is counted and the chain goes on. Returns null when admitted.
 */
export async function runAdmission(
  policies: readonly AdmissionPolicy[],
  ctx: AdmissionContext,
  observer: GatewayObserver,
): Promise<Rejection | null> {
  for (const policy of policies) {
    try {
      const pending = policy.check(ctx);
      if (pending) await pending;
    } catch (err) {
      // A store or verifier failure that is not already a GatewayError is an outage, not a verdict:
      // a limit store that throws anything else fails closed with 503 and a short Retry-After (the
      // Redis store applies the configured onStoreError itself and throws a GatewayError).
      const error = isGatewayError(err)
        ? err
        : policy.name.endsWith('limit')
          ? new GatewayError('store_unavailable', 'limit store unavailable', { retryAfterMs: STORE_RETRY_AFTER_MS, cause: err })
          : toGatewayError(err);
      if (policy.dryRun && error.reason) {
        observer.rejected(ctx.route.path, error.reason, 'dry_run', ctx.clientKey);
        continue;
      }
      return { error, policy: policy.name };
    }
  }
  return null;
}
