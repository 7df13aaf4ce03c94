import { toGatewayError, type GatewayError } from '../errors.ts';
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
      // A store or verifier failure that is not already a GatewayError is an outage, not a verdict.
      const error = toGatewayError(err, policy.name.endsWith('limit') ? 'store_unavailable' : 'internal');
      if (policy.dryRun && error.reason) {
        observer.rejected(ctx.route.path, error.reason, 'dry_run', ctx.clientKey);
        continue;
      }
      return { error, policy: policy.name };
    }
  }
  return null;
}
