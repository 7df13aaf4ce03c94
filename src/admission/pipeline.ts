import { GatewayError, keepsAttempt, toGatewayError } from '../errors.ts';
import { STORE_RETRY_AFTER_MS } from '../limits/limit-store.ts';
import type { GatewayObserver } from '../telemetry/observer.ts';
import type { AdmissionContext } from './context.ts';
import type { AdmissionPolicy } from './policy.ts';

export interface Rejection {
  error: GatewayError;
  policy: string;
}

/** How admission ended: every policy passed, one rejected, or the handshake ended first (ctx.signal). */
export type AdmissionResult = { verdict: 'admitted' } | ({ verdict: 'rejected' } & Rejection) | { verdict: 'aborted' };

/**
 * A limit store that throws anything but a GatewayError is out: fail closed with 503 and a short
 * Retry-After (the Redis store applies the configured onStoreError itself and throws a GatewayError).
 */
export function storeOutage(cause: unknown): GatewayError {
  return new GatewayError('store_unavailable', 'limit store unavailable', { retryAfterMs: STORE_RETRY_AFTER_MS, cause });
}

/**
 * Runs the policies in order and stops at the first rejection (the Envoy filter-chain shape). A
 * dry-run policy's rejection is counted and the chain goes on. Checks `ctx.signal` before each
 * policy and after each wait, so an aborted handshake runs no further policy; reservations already
 * taken stay in `ctx.reservations` for the caller to release (releaseReservations).
 */
export async function runAdmission(
  policies: readonly AdmissionPolicy[],
  ctx: AdmissionContext,
  observer: GatewayObserver,
): Promise<AdmissionResult> {
  for (const policy of policies) {
    if (ctx.signal.aborted) return { verdict: 'aborted' };
    try {
      const pending = policy.check(ctx);
      if (pending) await pending;
    } catch (err) {
      if (ctx.signal.aborted) return { verdict: 'aborted' };
      const error = err instanceof GatewayError ? err : policy.outage ? policy.outage(err) : toGatewayError(err);
      if (policy.dryRun && error.reason) {
        observer.rejected(ctx.route.path, error.reason, 'dry_run', ctx.clientKey);
        continue;
      }
      return { verdict: 'rejected', error, policy: policy.name };
    }
  }
  return ctx.signal.aborted ? { verdict: 'aborted' } : { verdict: 'admitted' };
}

/**
 * Gives back what the policies reserved for a handshake that did not become a connection: the
 * concurrent slot always, the attempt unless `error` was the client's fault (src/errors.ts blame;
 * no error: the client aborted or the gateway gave up). Each release runs once, however often this
 * is called, so a reservation taken by a policy that finished after the handshake ended is caught by
 * a second call.
 */
export function releaseReservations(ctx: AdmissionContext, error?: GatewayError): void {
  const { slot, attempt } = ctx.reservations;
  ctx.reservations.slot = undefined;
  slot?.();
  if (error && keepsAttempt(error.code)) return;
  ctx.reservations.attempt = undefined;
  attempt?.();
}
