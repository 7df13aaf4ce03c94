import {
  createLocalJWKSet,
  decodeProtectedHeader,
  errors as joseErrors,
  importJWK,
  importSPKI,
  jwtVerify,
  type JSONWebKeySet,
  type JWK,
  type JWTPayload,
  type JWTVerifyGetKey,
  type CryptoKey,
  type KeyObject,
} from 'jose';
import { GatewayError } from '../errors.ts';
import type { Config } from '../config/schema.ts';

type AuthConfig = Config['auth'];
type VerifyKey = CryptoKey | KeyObject | Uint8Array;

export interface TokenVerifier {
  /** Verifies a compact JWS; throws GatewayError 'auth' or 'token_expired'. */
  verify(token: string): Promise<JWTPayload>;
  /** True when no JWKS is configured, or a JWKS has been loaded at least once (readiness). */
  ready(): boolean;
  close(): void;
}

export interface JwksEvents {
  onRefresh?(outcome: 'success' | 'failure'): void;
  onError?(err: Error): void;
}

/**
 * JWKS kept as the last good set: jose's createRemoteJWKSet fails verification when a re-fetch after
 * cacheMaxAge fails (design.md), which turns an IdP blip into an outage. We fetch on a timer and on
 * an unknown kid (with a cool-down), and verify against the last set that loaded.
 */
class JwksCache {
  private getKey: JWTVerifyGetKey | null = null;
  private lastFetchMs = 0;
  private inflight: Promise<void> | null = null;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly url: string,
    refreshSec: number,
    private readonly cooldownMs: number,
    private readonly events: JwksEvents,
  ) {
    this.timer = setInterval(() => void this.refresh(), refreshSec * 1000).unref();
    void this.refresh();
  }

  get loaded(): boolean {
    return this.getKey !== null;
  }

  refresh(): Promise<void> {
    if (this.inflight) return this.inflight;
    this.lastFetchMs = Date.now();
    this.inflight = (async () => {
      try {
        const res = await fetch(this.url, { signal: AbortSignal.timeout(5000), headers: { accept: 'application/json' } });
        if (!res.ok) throw new Error(`JWKS ${this.url} answered HTTP ${res.status}`);
        const jwks = (await res.json()) as JSONWebKeySet;
        if (!Array.isArray(jwks.keys)) throw new Error(`JWKS ${this.url} has no keys array`);
        this.getKey = createLocalJWKSet(jwks);
        this.events.onRefresh?.('success');
      } catch (err) {
        this.events.onRefresh?.('failure');
        this.events.onError?.(err as Error);
      } finally {
        this.inflight = null;
      }
    })();
    return this.inflight;
  }

  /** Refetches at most once per cool-down when a token names a kid the set does not have (key rotation). */
  async resolver(): Promise<JWTVerifyGetKey> {
    if (!this.getKey) await this.refresh();
    if (!this.getKey) throw new GatewayError('auth', 'JWKS not loaded');
    return this.getKey;
  }

  maybeRefreshForUnknownKid(): Promise<void> | null {
    if (Date.now() - this.lastFetchMs < this.cooldownMs) return null;
    return this.refresh();
  }

  close(): void {
    clearInterval(this.timer);
  }
}

function parseJwk(text: string, index: number): JWK {
  try {
    return JSON.parse(text) as JWK;
  } catch (err) {
    throw new Error(`auth.publicKeys.${index}: not valid JWK JSON: ${(err as Error).message}`, { cause: err });
  }
}

interface StaticKey {
  kid?: string;
  /** The JWS alg this key verifies; undefined for the HMAC secret (any pinned HS* alg). */
  alg?: string;
  key: VerifyKey;
}

/**
 * Each public key is imported once per pinned asymmetric algorithm it fits (an RSA PEM for RS256
 * and PS256, say), so a token is only ever tried against keys of its own algorithm.
 */
async function importStaticKeys(config: AuthConfig, algorithms: string[]): Promise<StaticKey[]> {
  const keys: StaticKey[] = [];
  if (config.secret) keys.push({ key: new TextEncoder().encode(config.secret) });
  const asymmetric = algorithms.filter((a) => !a.startsWith('HS'));
  for (const [i, text] of config.publicKeys.entries()) {
    const jwk = text.trim().startsWith('{') ? parseJwk(text, i) : null;
    const candidates = jwk?.alg ? [jwk.alg] : asymmetric;
    const errors: string[] = [];
    for (const alg of candidates) {
      try {
        const key = jwk ? await importJWK(jwk, alg) : await importSPKI(text, alg);
        keys.push({ kid: jwk?.kid, alg, key: key as VerifyKey });
      } catch (err) {
        errors.push(`${alg}: ${(err as Error).message}`);
      }
    }
    if (errors.length === candidates.length) {
      throw new Error(`auth.publicKeys.${i}: cannot import key for ${candidates.join(', ') || 'any pinned algorithm'} (${errors.join('; ')})`);
    }
  }
  return keys;
}

function classify(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  if (err instanceof joseErrors.JWTExpired) return new GatewayError('token_expired', 'token expired', { cause: err });
  if (err instanceof joseErrors.JOSEError) return new GatewayError('auth', `invalid token (${err.code})`, { cause: err });
  return new GatewayError('auth', 'invalid token', { cause: err });
}

export async function createTokenVerifier(config: AuthConfig, events: JwksEvents = {}): Promise<TokenVerifier> {
  const algorithms = config.algorithms ?? (config.secret ? ['HS256'] : ['RS256']);
  const staticKeys = await importStaticKeys(config, algorithms);
  const jwks = config.jwksUrl ? new JwksCache(config.jwksUrl, config.jwksRefreshSec, config.jwksCooldownSec * 1000, events) : null;
  const options = {
    algorithms,
    // jose accepts a token without exp unless told otherwise (design.md).
    requiredClaims: ['exp'],
    clockTolerance: config.clockToleranceSec,
    ...(config.issuer ? { issuer: config.issuer } : {}),
    ...(config.audience ? { audience: config.audience } : {}),
  };

  async function verifyWithStatic(token: string): Promise<JWTPayload | null> {
    const { kid, alg } = decodeProtectedHeader(token);
    // An HMAC secret only verifies HS* tokens and a public key only asymmetric ones; jose would throw
    // a key-type error instead of a signature mismatch if we tried the wrong kind.
    const symmetric = typeof alg === 'string' && alg.startsWith('HS');
    const candidates = staticKeys.filter(
      (k) => (symmetric ? k.key instanceof Uint8Array : k.alg === alg) && (!kid || !k.kid || k.kid === kid),
    );
    let lastError: unknown = null;
    for (const { key } of candidates) {
      try {
        return (await jwtVerify(token, key, options)).payload;
      } catch (err) {
        // A signature mismatch means "try the next key"; any claim failure is final.
        if (!(err instanceof joseErrors.JWSSignatureVerificationFailed)) throw err;
        lastError = err;
      }
    }
    if (lastError && !jwks) throw lastError;
    return null;
  }

  async function verifyWithJwks(token: string, cache: JwksCache): Promise<JWTPayload> {
    try {
      return (await jwtVerify(token, await cache.resolver(), options)).payload;
    } catch (err) {
      if (!(err instanceof joseErrors.JWKSNoMatchingKey)) throw err;
      const refreshing = cache.maybeRefreshForUnknownKid();
      if (!refreshing) throw err;
      await refreshing;
      return (await jwtVerify(token, await cache.resolver(), options)).payload;
    }
  }

  return {
    async verify(token) {
      try {
        if (staticKeys.length) {
          const payload = await verifyWithStatic(token);
          if (payload) return payload;
        }
        if (jwks) return await verifyWithJwks(token, jwks);
        throw new GatewayError('auth', 'no key can verify this token');
      } catch (err) {
        throw classify(err);
      }
    },
    ready: () => !jwks || jwks.loaded,
    close: () => jwks?.close(),
  };
}
