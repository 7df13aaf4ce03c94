import { GatewayError } from '../errors.ts';
import type { TokenVerifier } from '../auth/token-verifier.ts';
import type { Config } from '../config/schema.ts';
import type { AdmissionPolicy } from './policy.ts';

/**
 * JWT check. The token was already located and cut out of the relayed request (auth/token-source.ts).
 * A route with allowAnonymous admits a missing token, but never an invalid one.
 */
export function authPolicy(config: Config['auth'], verifier: TokenVerifier | null): AdmissionPolicy {
  return {
    name: 'auth',
    dryRun: config.dryRun,
    check(ctx) {
      if (ctx.tokenInSubprotocol && !ctx.markerOffered && ctx.protocols.length === 0) {
        // Nothing could be selected: the token entry is never echoed, so browsers and `ws` would fail
        // the handshake (1006) after it was counted as accepted.
        throw new GatewayError(
          'bad_request',
          `a token sent as a subprotocol needs the subprotocol '${config.subprotocolMarker}' offered beside it (auth.subprotocolMarker)`,
        );
      }
      if (ctx.token === null) {
        if (ctx.route.allowAnonymous) return;
        throw new GatewayError('token_missing', 'a token is required');
      }
      if (!verifier) {
        if (ctx.route.allowAnonymous) return;
        throw new GatewayError('auth', 'no verification key is configured');
      }
      // A token verified before passes without waiting (the verified-token cache), so admission stays synchronous.
      const known = verifier.cached(ctx.token);
      if (known) {
        ctx.claims = known;
        return;
      }
      return verifier.verify(ctx.token).then((claims) => {
        ctx.claims = claims;
      });
    },
  };
}
