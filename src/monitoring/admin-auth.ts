import type { AdminClaimRule } from '../telemetry/config.ts';

/**
 * Bearer authentication for the monitoring API (RFC 6750). The token is verified by the injected
 * `verifyToken` (the gateway's jose verifier in its monitoring scope: it throws on anything invalid,
 * including a token without telemetry.monitoring.audience in its aud) and must carry one of the
 * configured admin claims.
 */
export type VerifyToken = (token: string) => Promise<Record<string, unknown>>;

export type AuthResult =
  | { ok: true; claims: Record<string, unknown> }
  | { ok: false; status: 401 | 403; wwwAuthenticate: string; error: string; /** for the log only, never the response */ detail?: string };

const REALM = 'realm="wsguard-monitoring"';

/** The one claim that is a space-delimited list of words (OAuth 2.0 `scope`, RFC 8693 §4.2, RFC 6749 §3.3). */
const SPACE_DELIMITED_CLAIM = 'scope';

/**
 * Does a claim value satisfy a rule? Exactly equal, or an array that contains the value. Only `scope`
 * is split on spaces: splitting any string would let `role: "not admin"` pass a rule `role: admin`.
 */
function claimMatches(claim: string, actual: unknown, wanted: AdminClaimRule['value']): boolean {
  if (actual === wanted) return true;
  if (Array.isArray(actual)) return actual.includes(wanted);
  if (claim === SPACE_DELIMITED_CLAIM && typeof actual === 'string' && typeof wanted === 'string') {
    return actual.split(' ').includes(wanted);
  }
  return false;
}

export function isAdmin(claims: Record<string, unknown>, rules: readonly AdminClaimRule[]): boolean {
  return rules.some((r) => Object.hasOwn(claims, r.claim) && claimMatches(r.claim, claims[r.claim], r.value));
}

export function bearerToken(authorization: string | undefined): string | undefined {
  if (!authorization) return undefined;
  const m = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(authorization);
  return m?.[1];
}

export async function authenticateAdmin(
  authorization: string | undefined,
  verifyToken: VerifyToken,
  rules: readonly AdminClaimRule[],
): Promise<AuthResult> {
  const token = bearerToken(authorization);
  if (!token) {
    // RFC 6750 §3.1: no error code when the request carried no credentials at all.
    return authorization
      ? { ok: false, status: 401, wwwAuthenticate: `Bearer ${REALM}, error="invalid_request"`, error: 'invalid_request' }
      : { ok: false, status: 401, wwwAuthenticate: `Bearer ${REALM}`, error: 'unauthorized' };
  }
  let claims: Record<string, unknown>;
  try {
    claims = await verifyToken(token);
  } catch (err) {
    // Why it failed is not told to the caller (expired, bad signature, wrong issuer look the same),
    // only to the log.
    return {
      ok: false,
      status: 401,
      wwwAuthenticate: `Bearer ${REALM}, error="invalid_token"`,
      error: 'invalid_token',
      detail: err instanceof Error ? err.message : String(err),
    };
  }
  if (!isAdmin(claims, rules)) {
    return { ok: false, status: 403, wwwAuthenticate: `Bearer ${REALM}, error="insufficient_scope"`, error: 'insufficient_scope' };
  }
  return { ok: true, claims };
}
