import type { GatewayError } from '../errors.ts';
import type { AdmissionContext } from './context.ts';

/**
 * One admission step. `check` returns normally to continue or throws a GatewayError to reject;
 * it returns a Promise only when it must wait (a store or a key lookup), so cheap checks stay sync.
 */
export interface AdmissionPolicy {
  /** Policy name, reported as the deciding policy on spans and logs. */
  readonly name: string;
  /** Count what would be rejected, and let it through. */
  readonly dryRun: boolean;
  check(ctx: AdmissionContext): void | Promise<void>;
  /**
   * What a throw that is not a GatewayError means for this policy: a dependency outage, not a
   * verdict on the client (a limit store answers 503 `store_unavailable`). Absent: `internal`.
   */
  outage?(cause: unknown): GatewayError;
}
