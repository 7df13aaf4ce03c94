import { GatewayError, keepsAttempt, toGatewayError } from '../errors.ts';
import { STORE_RETRY_AFTER_MS } from '../limits/limit-store.ts';
import type { GatewayObserver } from '../telemetry/observer.ts';
import type { AdmissionContext } from './context.ts';
import type { AdmissionPolicy } from './policy.ts';

export interface Rejection {
  error: GatewayError;
  policy: string;
}

/** How admission ended: every policy passed, one rejected, or the handshake ended first (ctx.stop). */
export type AdmissionResult = { verdict: 'admitted' } | ({ verdict: 'rejected' } & Rejection) | { verdict: 'aborted' };

/**
 * A limit store that throws anything but a GatewayError is out: fail closed with 503 and a short
 * Retry-After (the Redis store applies the configured onStoreError itself and throws a GatewayError).
 */
export function storeOutage(cause: unknown): GatewayError {
  return new GatewayError('store_unavailable', 'limit store unavailable', { retryAfterMs: STORE_RETRY_AFTER_MS, cause });
}

const ADMITTED: AdmissionResult = Object.freeze({ verdict: 'admitted' });
const ABORTED: AdmissionResult = Object.freeze({ verdict: 'aborted' });

/**
 * Runs the policies in order and stops at the first rejection (the Envoy filter-chain shape). A
 * dry-run policy's rejection is counted and the chain goes on. Checks `ctx.stop` before each policy
 * and after each wait, so an aborted handshake runs no further policy; reservations already taken
 * stay in `ctx.reservations` for the caller to release (releaseReservations).
 *
 * Synchronous until a policy returns a Promise: a chain that never waits (the memory store, a cached
 * token, an attempt-limit 429) is decided within the uWS upgrade handler, with no microtask per
 * policy. Only the rest of the chain runs after a wait.
 */
export function runAdmission(
  policies: readonly AdmissionPolicy[],
  ctx: AdmissionContext,
  observer: GatewayObserver,
): AdmissionResult | Promise<AdmissionResult> {
  return runFrom(0, policies, ctx, observer);
}

function runFrom(
  first: number,
  policies: readonly AdmissionPolicy[],
  ctx: AdmissionContext,
  observer: GatewayObserver,
): AdmissionResult | Promise<AdmissionResult> {
  for (let i = first; i < policies.length; i++) {
    if (ctx.stop.stopped) return ABORTED;
    const policy = policies[i]!;
    let pending: void | Promise<void>;
    try {
      pending = policy.check(ctx);
    } catch (err) {
      const verdict = judge(policy, err, ctx, observer);
      if (verdict) return verdict;
      continue;
    }
    if (pending) {
      const next = i + 1;
      return pending.then(
        () => runFrom(next, policies, ctx, observer),
        (err: unknown) => judge(policy, err, ctx, observer) ?? runFrom(next, policies, ctx, observer),
      );
    }
  }
  return ctx.stop.stopped ? ABORTED : ADMITTED;
}

/** What a policy's throw means: the attempt's end if it ended meanwhile, a rejection, or null for a dry run (go on). */
function judge(policy: AdmissionPolicy, err: unknown, ctx: AdmissionContext, observer: GatewayObserver): AdmissionResult | null {
  if (ctx.stop.stopped) return ABORTED;
  const error = err instanceof GatewayError ? err : policy.outage ? policy.outage(err) : toGatewayError(err);
  if (policy.dryRun && error.reason) {
    observer.rejected(ctx.route.path, error.reason, 'dry_run', ctx.clientKey);
    return null;
  }
  return { verdict: 'rejected', error, policy: policy.name };
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
