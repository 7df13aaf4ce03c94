import { readFileSync } from 'node:fs';
import { SignJWT, importPKCS8, type CryptoKey as JoseKey } from 'jose';
import { CliError } from '../cli-error.ts';

/** How the engine authenticates each virtual user. */
export interface JwtSpec {
  alg: 'HS256' | 'RS256' | 'ES256';
  /** HS256 shared secret. */
  secret?: string;
  /** RS256/ES256 private key, PKCS#8 PEM text (the CLI reads it from --jwt-key-file). */
  privateKeyPem?: string;
  /** JSON claims template; every `{{i}}` becomes the virtual user's index. */
  claimsTemplate?: string;
  /** Lifetime in seconds; negative values mint already-expired tokens (probe uses that). */
  expSec: number;
  kid?: string;
}

export interface AuthOptions {
  /** Static headers sent on every upgrade request. */
  headers?: Record<string, string>;
  /** A fixed token; ignored when `jwt` is set. */
  token?: string;
  jwt?: JwtSpec;
  /** Where the token goes; `header` means `Authorization: Bearer <token>`. */
  tokenIn?: 'header' | 'query' | 'subprotocol';
  /** Query parameter name for tokenIn=query. */
  queryParam?: string;
  /** Subprotocol entry is `<prefix><token>` for tokenIn=subprotocol. */
  subprotocolPrefix?: string;
  /** Application subprotocols offered besides a token entry. */
  subprotocols?: string[];
}

/**
 * The query parameter `--token-in query` uses: the sidecar's `auth.queryParam` default, so the
 * toolkit and `wsguard serve` agree out of the box (it used to send `?token=`, which serve ignored).
 */
export const DEFAULT_TOKEN_QUERY_PARAM = 'access_token';

export interface HandshakeAuth {
  url: string;
  headers: Record<string, string>;
  protocols: string[];
}

type Minter = (userIndex: number) => Promise<string>;

/** Re-mint a cached token this long before it expires so a long run never sends a stale one. */
const REMINT_MARGIN_SEC = 10;

export function createJwtMinter(spec: JwtSpec): Minter {
  let keyPromise: Promise<JoseKey | Uint8Array> | undefined;
  const key = (): Promise<JoseKey | Uint8Array> => {
    if (keyPromise) return keyPromise;
    if (spec.alg === 'HS256') {
      if (!spec.secret) throw new CliError('config', '--jwt-secret is required for --jwt-alg HS256');
      keyPromise = Promise.resolve(new TextEncoder().encode(spec.secret));
    } else {
      if (!spec.privateKeyPem) throw new CliError('config', `--jwt-key-file is required for --jwt-alg ${spec.alg}`);
      keyPromise = importPKCS8(spec.privateKeyPem, spec.alg);
    }
    return keyPromise;
  };
  const cache = new Map<number, { token: string; exp: number }>();
  return async (i) => {
    const nowSec = Math.floor(Date.now() / 1000);
    const hit = cache.get(i);
    if (hit && (spec.expSec < 0 || hit.exp - REMINT_MARGIN_SEC > nowSec)) return hit.token;
    const claims = renderClaims(spec.claimsTemplate, i);
    const exp = nowSec + spec.expSec;
    const header: { alg: string; typ: string; kid?: string } = { alg: spec.alg, typ: 'JWT' };
    if (spec.kid) header.kid = spec.kid;
    const token = await new SignJWT(claims)
      .setProtectedHeader(header)
      .setIssuedAt(nowSec)
      .setExpirationTime(exp)
      .sign(await key());
    cache.set(i, { token, exp });
    return token;
  };
}

export function renderClaims(template: string | undefined, i: number): Record<string, unknown> {
  const text = (template ?? '{"sub":"user-{{i}}"}').replaceAll('{{i}}', String(i));
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new CliError('config', `--jwt-claims is not valid JSON after substituting {{i}}: ${(err as Error).message}`, { cause: err });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new CliError('config', '--jwt-claims must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

/** Reads a PEM key file for the CLI, naming the option on failure. */
export function readKeyFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError('config', `--jwt-key-file ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Builds the per-user handshake (URL, headers, subprotocols) from the auth options. */
export function createHandshakeAuth(baseUrl: string, opts: AuthOptions = {}): (userIndex: number) => Promise<HandshakeAuth> {
  const minter: Minter | undefined = opts.jwt
    ? createJwtMinter(opts.jwt)
    : opts.token !== undefined
      ? async () => opts.token as string
      : undefined;
  const tokenIn = opts.tokenIn ?? 'header';
  return async (i) => {
    const headers = { ...(opts.headers ?? {}) };
    const protocols = [...(opts.subprotocols ?? [])];
    let url = baseUrl;
    if (minter) {
      const token = await minter(i);
      if (tokenIn === 'header') headers.Authorization = `Bearer ${token}`;
      else if (tokenIn === 'query') {
        const u = new URL(baseUrl);
        u.searchParams.set(opts.queryParam ?? DEFAULT_TOKEN_QUERY_PARAM, token);
        url = u.toString();
      } else protocols.push(`${opts.subprotocolPrefix ?? 'bearer.'}${token}`);
    }
    return { url, headers, protocols };
  };
}

/** An unsigned token (alg "none"), for probing that the server refuses it. */
export function unsignedToken(claims: Record<string, unknown>): string {
  const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
}
