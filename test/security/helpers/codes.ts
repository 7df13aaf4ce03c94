/**
 * The outcomes a connection may end with, derived from the code's own catalogues (src/errors.ts,
 * src/relay/close-codes.ts) rather than copied by hand, so the suite follows the contract as it changes.
 */
import { ERROR_CODES } from '../../../src/errors.ts';
import { CLOSE, upstreamCloseToClient } from '../../../src/relay/close-codes.ts';

/** Handshake statuses: every GatewayError status, plus 404 for an unrouted path (reject.ts writeNotFound). */
export const ALLOWED_STATUSES: ReadonlySet<number> = new Set([...Object.values(ERROR_CODES).map((c) => c.status), 404]);

const NEVER_ON_WIRE = new Set<number>([CLOSE.noStatus, CLOSE.abnormal, CLOSE.tlsFailure]);

/**
 * Close codes a client may receive: the gateway's own (GatewayError close codes, CLOSE) and whatever
 * the leg mapping lets through from an upstream (upstreamCloseToClient's image over 1000–4999).
 */
export const ALLOWED_CLOSE_CODES: ReadonlySet<number> = (() => {
  const set = new Set<number>();
  for (const c of Object.values(ERROR_CODES)) set.add(c.closeCode);
  for (const c of Object.values(CLOSE)) set.add(c);
  for (let code = 1000; code <= 4999; code++) set.add(upstreamCloseToClient(code));
  for (const c of NEVER_ON_WIRE) set.delete(c);
  return set;
})();

export function isAllowedClose(code: number): boolean {
  return ALLOWED_CLOSE_CODES.has(code);
}
