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
}
