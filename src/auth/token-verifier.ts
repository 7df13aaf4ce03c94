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
import { telemetrySchema } from '../telemetry/config.ts';

type AuthConfig = Config['auth'];
type VerifyKey = CryptoKey | KeyObject | Uint8Array;

export interface TokenVerifier {
  /**
   * Verifies a client's compact JWS (auth.audience, when set); throws GatewayError 'auth' or
   * 'token_expired', 'auth' for a token whose aud includes the monitoring audience, and
   * 'auth_unavailable' while no JWKS has loaded.
   */
  verify(token: string): Promise<JWTPayload>;
  /**
   * A client token's claims from the verified-token cache, judged as verify() judges them (exp, the
   * monitoring audience; it throws alike), without waiting: null when the token must go through
   * verify(), which then counts the miss. Lets a reused token pass admission synchronously.
   */
  cached(token: string): JWTPayload | null;
  /** Verifies a monitoring API token: same keys and issuer, but its aud must include the monitoring audience. */
  verifyMonitoring(token: string): Promise<JWTPayload>;
  /** True when no JWKS is configured, or a JWKS has been loaded at least once (readiness). */
  ready(): boolean;
  /** The verified-token cache (auth.verifiedCacheSize): entries held, and lookups that hit or missed since start. */
  cacheStats(): { entries: number; hits: number; misses: number };
  close(): void;
}

export interface JwksEvents {
  onRefresh?(outcome: 'success' | 'failure'): void;
  onError?(err: Error): void;
}

/** Backoff between failed fetches while no key set has loaded: doubling from min, capped at max. */
export interface JwksRetry {
  minMs: number;
  maxMs: number;
}

/**
 * JWKS kept as the last good set: jose's createRemoteJWKSet fails verification when a re-fetch after
 * cacheMaxAge fails (docs/architecture.md), which turns an IdP blip into an outage. We fetch on a timer and on
 * an unknown kid (with a cool-down), and verify against the last set that loaded.
 *
 * Until a set has loaded, handshakes never start a fetch: they wait for the one in flight, if any,
 * and are otherwise refused at once with `auth_unavailable` (503, attempt given back). Failed fetches
 * are retried in the background with exponential backoff, so an unreachable IdP sees one fetch per
 * backoff step however many clients knock (before: one fetch per handshake, each answered 401).
 */
class JwksCache {
  #getKey: JWTVerifyGetKey | null = null;
  #lastFetchMs = 0;
  #failures = 0;
  #nextRetryAtMs = 0;
  #inflight: Promise<void> | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  #closed = false;
  readonly #timer: NodeJS.Timeout;

  readonly #url: string;

  readonly #cooldownMs: number;

  readonly #retry: JwksRetry;

  readonly #events: JwksEvents;

  constructor(
    url: string,

    refreshSec: number,

    cooldownMs: number,

    retry: JwksRetry,

    events: JwksEvents,
  ) {
    this.#url = url;

    this.#cooldownMs = cooldownMs;

    this.#retry = retry;

    this.#events = events;
    this.#timer = setInterval(() => void this.refresh(), refreshSec * 1000).unref();
    void this.refresh();
  }

  get loaded(): boolean {
    return this.#getKey !== null;
  }

  refresh(): Promise<void> {
    if (this.#inflight) return this.#inflight;
    this.#lastFetchMs = Date.now();
    this.#inflight = (async () => {
      try {
        const res = await fetch(this.#url, { signal: AbortSignal.timeout(5000), headers: { accept: 'application/json' } });
        if (!res.ok) throw new Error(`JWKS ${this.#url} answered HTTP ${res.status}`);
        const jwks = (await res.json()) as JSONWebKeySet;
        if (!Array.isArray(jwks.keys)) throw new Error(`JWKS ${this.#url} has no keys array`);
        this.#getKey = createLocalJWKSet(jwks);
        this.#failures = 0;
        this.#events.onRefresh?.('success');
      } catch (err) {
        this.#failed();
        this.#events.onRefresh?.('failure');
        this.#events.onError?.(err as Error);
      } finally {
        this.#inflight = null;
      }
    })();
    return this.#inflight;
  }

  #failed(): void {
    this.#failures++;
    const delay = Math.min(this.#retry.maxMs, this.#retry.minMs * 2 ** Math.min(this.#failures - 1, 30));
    this.#nextRetryAtMs = Date.now() + delay;
    // With a last good set the regular refresh timer is enough; without one, nothing can be verified.
    if (this.#getKey || this.#closed) return;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      void this.refresh();
    }, delay).unref();
  }

  /** The loaded set; without one, waits for a fetch in flight and otherwise fails with auth_unavailable. */
  async resolver(): Promise<JWTVerifyGetKey> {
    if (!this.#getKey && this.#inflight) await this.#inflight;
    if (!this.#getKey) {
      throw new GatewayError('auth_unavailable', 'no JWKS key set has loaded yet', {
        // Retry-After is sent in whole seconds: at least one.
        retryAfterMs: Math.max(1000, this.#nextRetryAtMs - Date.now()),
      });
    }
    return this.#getKey;
  }

  /** Refetches at most once per cool-down when a token names a kid the set does not have (key rotation). */
  maybeRefreshForUnknownKid(): Promise<void> | null {
    if (Date.now() - this.#lastFetchMs < this.#cooldownMs) return null;
    return this.refresh();
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
  }
}

/**
 * Tokens that verified, by their exact text: a byte-identical token has the same signature verdict,
 * so only the time claims can change, and of those only `exp` can turn (`nbf` passed once stays
 * passed). Envoy's jwt_authn keeps the same kind of cache (jwt_cache_config). Why: jose verifies
 * through WebCrypto, a job on libuv's thread pool per token, and that hand-off dominated an
 * admitted upgrade (HS256 828 µs of gateway CPU against 361 µs anonymous, bench/compare.ts
 * handshake rows). Failures are never cached. Insertion order is eviction order (the oldest first).
 */
class VerifiedTokens {
  readonly #max: number;
  readonly #entries = new Map<string, JWTPayload>();
  hits = 0;
  misses = 0;

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * The claims of a token verified before, or null; throws token_expired (and forgets it) once its
   * exp has passed. `countMiss` false: the caller asks again on a miss, and that lookup counts it.
   */
  get(token: string, toleranceSec: number, countMiss = true): JWTPayload | null {
    if (this.#max === 0) return null;
    const payload = this.#entries.get(token);
    if (payload === undefined) {
      if (countMiss) this.misses++;
      return null;
    }
    // jose's rule (jwt_claims_set.ts): expired when exp <= now - tolerance, in whole seconds.
    if ((payload.exp as number) <= Math.floor(Date.now() / 1000) - toleranceSec) {
      this.#entries.delete(token);
      throw new GatewayError('token_expired', 'token expired');
    }
    this.hits++;
    return payload;
  }

  add(token: string, payload: JWTPayload): void {
    if (this.#max === 0) return;
    if (this.#entries.size >= this.#max) this.#entries.delete(this.#entries.keys().next().value!);
    // Shared by every connection that presents this token: nobody may change it.
    this.#entries.set(token, Object.freeze(payload));
  }

  clear(): void {
    this.#entries.clear();
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
  /** The JWS alg this key verifies; undefined for the raw HMAC secret kept for HS* algs that are not pinned. */
  alg?: string;
  hmac: boolean;
  key: VerifyKey;
}

const HMAC_HASH: Record<string, string> = { HS256: 'SHA-256', HS384: 'SHA-384', HS512: 'SHA-512' };

/**
 * Each public key is imported once per pinned asymmetric algorithm it fits (an RSA PEM for RS256
 * and PS256, say), so a token is only ever tried against keys of its own algorithm.
 */
async function importStaticKeys(config: AuthConfig, algorithms: string[]): Promise<StaticKey[]> {
  const keys: StaticKey[] = [];
  if (config.secret) {
    const raw = new TextEncoder().encode(config.secret);
    // Imported once per pinned HS* alg: jose imports a Uint8Array secret into WebCrypto on every
    // verification (crypto.subtle.importKey): 60–77 µs of CPU per HS256 verification before, 33–39 µs
    // after (bench/token-verify.ts, 2 busy cores).
    for (const alg of algorithms.filter((a) => a in HMAC_HASH)) {
      const key = await crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: HMAC_HASH[alg]! }, false, ['verify']);
      keys.push({ alg, hmac: true, key });
    }
    // A token under an HS* alg that is not pinned still meets the secret, so that jose refuses it as
    // an algorithm not allowed rather than as a missing key.
    keys.push({ hmac: true, key: raw });
  }
  const asymmetric = algorithms.filter((a) => !a.startsWith('HS'));
  for (const [i, text] of config.publicKeys.entries()) {
    const jwk = text.trim().startsWith('{') ? parseJwk(text, i) : null;
    const candidates = jwk?.alg ? [jwk.alg] : asymmetric;
    const errors: string[] = [];
    for (const alg of candidates) {
      try {
        const key = jwk ? await importJWK(jwk, alg) : await importSPKI(text, alg);
        keys.push({ kid: jwk?.kid, alg, hmac: false, key: key as VerifyKey });
      } catch (err) {
        errors.push(`${alg}: ${(err as Error).message}`);
      }
    }
    if (errors.length === candidates.length) {
      throw new Error(
        `auth.publicKeys.${i}: cannot import key for ${candidates.join(', ') || 'any pinned algorithm'} (${errors.join('; ')})`,
      );
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

/** Which audience marks a token as the monitoring API's (telemetry.monitoring.audience). */
export interface TokenScope {
  monitoringAudience: string;
}

function audiences(payload: JWTPayload): string[] {
  return typeof payload.aud === 'string' ? [payload.aud] : Array.isArray(payload.aud) ? payload.aud : [];
}

/** The schema's default monitoring audience, for callers that verify client tokens only (tests, tools). */
const DEFAULT_SCOPE: TokenScope = { monitoringAudience: telemetrySchema.parse({}).monitoring.audience };

export async function createTokenVerifier(
  config: AuthConfig,
  events: JwksEvents = {},
  scope: TokenScope = DEFAULT_SCOPE,
): Promise<TokenVerifier> {
  const algorithms = config.algorithms ?? (config.secret ? ['HS256'] : ['RS256']);
  const staticKeys = await importStaticKeys(config, algorithms);
  const pinnedHmac = new Set(staticKeys.filter((k) => k.hmac && k.alg).map((k) => k.alg));
  // One per audience rule: a token verified for client routes says nothing about the monitoring API.
  const verifiedClient = new VerifiedTokens(config.verifiedCacheSize);
  const verifiedMonitoring = new VerifiedTokens(config.verifiedCacheSize);
  const jwks = config.jwksUrl
    ? new JwksCache(
        config.jwksUrl,
        config.jwksRefreshSec,
        config.jwksCooldownSec * 1000,
        { minMs: config.jwksRetryMinMs, maxMs: config.jwksRetryMaxMs },
        {
          ...events,
          onRefresh(outcome) {
            // A new key set may have dropped the key a remembered token was verified with.
            if (outcome === 'success') {
              verifiedClient.clear();
              verifiedMonitoring.clear();
            }
            events.onRefresh?.(outcome);
          },
        },
      )
    : null;
  const common = {
    algorithms,
    // jose accepts a token without exp unless told otherwise (docs/architecture.md).
    requiredClaims: ['exp'],
    clockTolerance: config.clockToleranceSec,
    ...(config.issuer ? { issuer: config.issuer } : {}),
  };
  const clientOptions = { ...common, ...(config.audience ? { audience: config.audience } : {}) };
  const monitoringOptions = { ...common, audience: scope.monitoringAudience };
  type Options = typeof clientOptions;

  async function verifyWithStatic(token: string, options: Options): Promise<JWTPayload | null> {
    const { kid, alg } = decodeProtectedHeader(token);
    // An HMAC secret only verifies HS* tokens and a public key only asymmetric ones; jose would throw
    // a key-type error instead of a signature mismatch if we tried the wrong kind.
    const symmetric = typeof alg === 'string' && alg.startsWith('HS');
    const candidates = staticKeys.filter(
      (k) =>
        (symmetric ? k.hmac && (k.alg === alg || (k.alg === undefined && !pinnedHmac.has(alg))) : k.alg === alg) &&
        (!kid || !k.kid || k.kid === kid),
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

  async function verifyWithJwks(token: string, cache: JwksCache, options: Options): Promise<JWTPayload> {
    // A malformed token or an algorithm we do not accept is the client's fault whether or not keys
    // are available: judge that before waiting for (or failing on) the key set.
    const { alg } = decodeProtectedHeader(token);
    if (typeof alg !== 'string' || !(algorithms as readonly string[]).includes(alg))
      throw new GatewayError('auth', 'token algorithm not accepted');
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

  async function verifyWith(token: string, options: Options, verified: VerifiedTokens): Promise<JWTPayload> {
    const known = verified.get(token, config.clockToleranceSec);
    if (known) return known;
    try {
      let payload = staticKeys.length ? await verifyWithStatic(token, options) : null;
      if (!payload && jwks) payload = await verifyWithJwks(token, jwks, options);
      if (!payload) throw new GatewayError('auth', 'no key can verify this token');
      verified.add(token, payload);
      return payload;
    } catch (err) {
      throw classify(err);
    }
  }

  /**
   * Same keys and issuer sign both kinds of token: the audience is what keeps a monitoring token from
   * opening a client route (and auth.audience, when set, a client token from the API).
   */
  function clientVerdict(payload: JWTPayload): JWTPayload {
    if (audiences(payload).includes(scope.monitoringAudience)) {
      throw new GatewayError('auth', 'a monitoring API token cannot open a client connection');
    }
    return payload;
  }

  return {
    verify: async (token) => clientVerdict(await verifyWith(token, clientOptions, verifiedClient)),
    cached(token) {
      const known = verifiedClient.get(token, config.clockToleranceSec, false);
      return known && clientVerdict(known);
    },
    verifyMonitoring: (token) => verifyWith(token, monitoringOptions, verifiedMonitoring),
    ready: () => !jwks || jwks.loaded,
    cacheStats: () => ({
      entries: verifiedClient.size + verifiedMonitoring.size,
      hits: verifiedClient.hits + verifiedMonitoring.hits,
      misses: verifiedClient.misses + verifiedMonitoring.misses,
    }),
    close: () => jwks?.close(),
  };
}
