import { createServer, type Server } from 'node:http';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWK } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { createTokenVerifier } from '../../src/auth/token-verifier.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { RawConfig } from '../../src/config/schema.ts';
import { GatewayError } from '../../src/errors.ts';
import { TEST_SECRET, signToken } from '../helpers/tokens.ts';
import { waitFor } from '../helpers/wait.ts';

const now = () => Math.floor(Date.now() / 1000);
const authConfig = (auth: NonNullable<RawConfig['auth']>) => parseConfig({ auth }).auth;

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    return err.code;
  }
}

const closers: Array<() => void> = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

describe('HS256 secret', () => {
  it('accepts a valid token and returns its claims', async () => {
    const v = await createTokenVerifier(authConfig({ secret: TEST_SECRET }));
    expect((await v.verify(await signToken({ sub: 'bob' }))).sub).toBe('bob');
  });

  it('requires exp, pins the algorithm, refuses alg=none, and reports expiry as its own code', async () => {
    const v = await createTokenVerifier(authConfig({ secret: TEST_SECRET }));
    const key = new TextEncoder().encode(TEST_SECRET);
    const hs384 = await new SignJWT({ sub: 'x' })
      .setProtectedHeader({ alg: 'HS384' })
      .setExpirationTime(now() + 60)
      .sign(key);
    const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(`{"sub":"x","exp":${now() + 60}}`).toString('base64url')}.`;
    expect(await codeOf(v.verify(await signToken({}, null)))).toBe('auth');
    expect(await codeOf(v.verify(hs384))).toBe('auth');
    expect(await codeOf(v.verify(none))).toBe('auth');
    expect(await codeOf(v.verify(await signToken({}, -5)))).toBe('token_expired');
  });

  it('checks iss and aud when configured, and honours clock tolerance', async () => {
    const v = await createTokenVerifier(
      authConfig({ secret: TEST_SECRET, issuer: 'https://idp', audience: 'wsguard', clockToleranceSec: 30 }),
    );
    expect(await codeOf(v.verify(await signToken({ iss: 'https://idp', aud: 'wsguard' })))).toBe('ok');
    expect(await codeOf(v.verify(await signToken({ iss: 'https://idp', aud: 'other' })))).toBe('auth');
    expect(await codeOf(v.verify(await signToken({ iss: 'https://evil', aud: 'wsguard' })))).toBe('auth');
    expect(await codeOf(v.verify(await signToken({ iss: 'https://idp', aud: 'wsguard' }, -10)))).toBe('ok');
    expect(await codeOf(v.verify(await signToken({ iss: 'https://idp', aud: 'wsguard' }, -60)))).toBe('token_expired');
  });
});

describe('public keys', () => {
  it('verifies RS256 from PEM and ES256 from a JWK, and rejects an HS token signed with the public key bytes', async () => {
    const rsa = await generateKeyPair('RS256', { extractable: true });
    const ec = await generateKeyPair('ES256', { extractable: true });
    const ecJwk = { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256' };
    const pem = await exportSPKI(rsa.publicKey);
    const v = await createTokenVerifier(authConfig({ publicKeys: [pem, JSON.stringify(ecJwk)], algorithms: ['RS256', 'ES256'] }));
    const rs = await new SignJWT({ sub: 'r' })
      .setProtectedHeader({ alg: 'RS256' })
      .setExpirationTime(now() + 60)
      .sign(rsa.privateKey);
    const es = await new SignJWT({ sub: 'e' })
      .setProtectedHeader({ alg: 'ES256', kid: 'ec-1' })
      .setExpirationTime(now() + 60)
      .sign(ec.privateKey);
    expect((await v.verify(rs)).sub).toBe('r');
    expect((await v.verify(es)).sub).toBe('e');
    // The classic key-confusion attack: HS256 with the public PEM as the secret.
    const confused = await new SignJWT({ sub: 'x' })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime(now() + 60)
      .sign(new TextEncoder().encode(pem));
    expect(await codeOf(v.verify(confused))).toBe('auth');
  });

  it('names the option when a key cannot be imported', async () => {
    await expect(
      createTokenVerifier(authConfig({ publicKeys: ['-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----'] })),
    ).rejects.toThrow(/auth\.publicKeys\.0/);
  });
});

describe('JWKS URL', () => {
  async function jwksServer(): Promise<{ url: string; keys: JWK[]; fail: { on: boolean }; hits: { n: number }; server: Server }> {
    const keys: JWK[] = [];
    const fail = { on: false };
    const hits = { n: 0 };
    const server = createServer((_req, res) => {
      hits.n++;
      if (fail.on) {
        res.writeHead(503).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    closers.push(() => server.close());
    return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks.json`, keys, fail, hits, server };
  }

  async function keyWithKid(kid: string) {
    const pair = await generateKeyPair('ES256', { extractable: true });
    const sign = (sub: string) =>
      new SignJWT({ sub })
        .setProtectedHeader({ alg: 'ES256', kid })
        .setExpirationTime(now() + 60)
        .sign(pair.privateKey);
    return { jwk: { ...(await exportJWK(pair.publicKey)), kid, alg: 'ES256' }, sign };
  }

  /** A JWKS server publishing ES256 key k1, and a verifier on it (closed after the test). */
  async function verifierOnKeySet(auth: Omit<NonNullable<RawConfig['auth']>, 'jwksUrl' | 'algorithms'>) {
    const s = await jwksServer();
    const k1 = await keyWithKid('k1');
    s.keys.push(k1.jwk);
    const v = await createTokenVerifier(authConfig({ jwksUrl: s.url, algorithms: ['ES256'], ...auth }));
    closers.push(() => v.close());
    return { s, k1, v };
  }

  it('keeps the last good key set when a refresh fails, and picks up a rotated key', async () => {
    const { s, k1, v } = await verifierOnKeySet({ jwksCooldownSec: 0 });
    expect((await v.verify(await k1.sign('a'))).sub).toBe('a');
    expect(v.ready()).toBe(true);

    // The IdP goes down: tokens signed with the known key still verify.
    s.fail.on = true;
    const k2 = await keyWithKid('k2');
    expect(await codeOf(v.verify(await k2.sign('b')))).toBe('auth');
    expect((await v.verify(await k1.sign('c'))).sub).toBe('c');

    // It comes back with a rotated key: an unknown kid triggers a re-fetch.
    s.fail.on = false;
    s.keys.push(k2.jwk);
    expect((await v.verify(await k2.sign('d'))).sub).toBe('d');
  });

  it('forgets remembered tokens when a key set loads, so a withdrawn key stops verifying', async () => {
    const { s, k1, v } = await verifierOnKeySet({ jwksRefreshSec: 1 });
    const token = await k1.sign('a');
    expect((await v.verify(token)).sub).toBe('a');
    expect((await v.verify(token)).sub).toBe('a');
    expect(v.cacheStats()).toMatchObject({ entries: 1, hits: 1 });

    // The IdP withdraws k1: after the next scheduled load the remembered token is checked again, and fails.
    s.keys.splice(0, 1, (await keyWithKid('k2')).jwk);
    const fetched = s.hits.n;
    await waitFor(() => s.hits.n > fetched && v.cacheStats().entries === 0, { what: 'a JWKS reload emptying the cache' });
    expect(await codeOf(v.verify(token))).toBe('auth');
  });

  it('answers auth_unavailable with Retry-After while no set has loaded, and leaves fetching to the backoff timer', async () => {
    const s = await jwksServer();
    s.fail.on = true;
    const k1 = await keyWithKid('k1');
    const v = await createTokenVerifier(
      authConfig({ jwksUrl: s.url, algorithms: ['ES256'], jwksRetryMinMs: 60_000, jwksRetryMaxMs: 60_000 }),
    );
    closers.push(() => v.close());
    const errors: GatewayError[] = [];
    for (let i = 0; i < 10; i++) {
      try {
        await v.verify(await k1.sign('a'));
      } catch (err) {
        errors.push(err as GatewayError);
      }
    }
    expect(errors.map((e) => e.code)).toEqual(Array(10).fill('auth_unavailable'));
    expect(errors[9]!.retryAfterMs).toBeGreaterThan(50_000);
    // The first token waited for the fetch started at construction; none started one of its own.
    expect(s.hits.n).toBe(1);
    // A token that cannot be one of ours is still the client's fault.
    expect(await codeOf(v.verify('abc.def.ghi'))).toBe('auth');
    expect(await codeOf(v.verify(await signToken()))).toBe('auth');
  });

  it('is not ready until a key set has loaded', async () => {
    const s = await jwksServer();
    s.fail.on = true;
    let failedFetch!: () => void;
    const failed = new Promise<void>((r) => (failedFetch = r));
    const v = await createTokenVerifier(authConfig({ jwksUrl: s.url, algorithms: ['ES256'] }), {
      onRefresh: (outcome) => outcome === 'failure' && failedFetch(),
    });
    closers.push(() => v.close());
    // After a fetch has actually failed, not after a guessed 100 ms (which may come before the fetch does).
    await failed;
    expect(v.ready()).toBe(false);
    expect(s.hits.n).toBeGreaterThan(0);
  });
});

describe('verified-token cache (auth.verifiedCacheSize)', () => {
  it('verifies a token once and serves the same text from the cache; any other text is verified', async () => {
    const v = await createTokenVerifier(authConfig({ secret: TEST_SECRET }));
    const token = await signToken({ sub: 'bob' });
    expect((await v.verify(token)).sub).toBe('bob');
    expect(v.cacheStats()).toEqual({ entries: 1, hits: 0, misses: 1 });
    const again = await v.verify(token);
    expect(again.sub).toBe('bob');
    expect(Object.isFrozen(again)).toBe(true);
    expect(v.cacheStats()).toEqual({ entries: 1, hits: 1, misses: 1 });
    // The same claims under a forged signature are another text: verified, and refused.
    const [head, body] = token.split('.');
    expect(await codeOf(v.verify(`${head}.${body}.${Buffer.alloc(32).toString('base64url')}`))).toBe('auth');
    expect(v.cacheStats()).toEqual({ entries: 1, hits: 1, misses: 2 });
  });

  it('cached() answers a verified token without waiting, judges it as verify() does, and leaves a miss to verify()', async () => {
    const v = await createTokenVerifier(authConfig({ secret: TEST_SECRET }));
    const token = await signToken({ sub: 'bob' });
    expect(v.cached(token)).toBeNull();
    // cached() left the miss uncounted: verify() counts it, once.
    expect((await v.verify(token)).sub).toBe('bob');
    expect(v.cacheStats()).toEqual({ entries: 1, hits: 0, misses: 1 });
    expect(v.cached(token)?.sub).toBe('bob');
    expect(v.cacheStats()).toEqual({ entries: 1, hits: 1, misses: 1 });
    // A monitoring token is refused from the cache as verify() refuses it.
    const monitoring = await signToken({ sub: 'ops', aud: 'wsguard-monitoring' });
    expect(await codeOf(v.verifyMonitoring(monitoring))).toBe('ok');
    expect(await codeOf(v.verify(monitoring))).toBe('auth');
    expect(() => v.cached(monitoring)).toThrow(expect.objectContaining({ code: 'auth' }));
  });

  it('checks exp on every use: a remembered token is refused with token_expired once it expires', async () => {
    const v = await createTokenVerifier(authConfig({ secret: TEST_SECRET }));
    const exp = now() + 1;
    const token = await new SignJWT({ sub: 'soon' })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime(exp)
      .sign(new TextEncoder().encode(TEST_SECRET));
    expect(await codeOf(v.verify(token))).toBe('ok');
    expect(await codeOf(v.verify(token))).toBe('ok');
    await waitFor(() => now() >= exp, { what: 'the token to expire' });
    expect(await codeOf(v.verify(token))).toBe('token_expired');
    expect(v.cacheStats().entries).toBe(0);
  });

  it('holds at most verifiedCacheSize tokens, forgetting the oldest; 0 remembers none', async () => {
    const v = await createTokenVerifier(authConfig({ secret: TEST_SECRET, verifiedCacheSize: 2 }));
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((sub) => signToken({ sub })));
    for (const t of [a!, b!, c!]) await v.verify(t);
    expect(v.cacheStats()).toEqual({ entries: 2, hits: 0, misses: 3 });
    await v.verify(c!);
    await v.verify(a!);
    expect(v.cacheStats()).toEqual({ entries: 2, hits: 1, misses: 4 });

    const off = await createTokenVerifier(authConfig({ secret: TEST_SECRET, verifiedCacheSize: 0 }));
    await off.verify(a!);
    await off.verify(a!);
    expect(off.cacheStats()).toEqual({ entries: 0, hits: 0, misses: 0 });
  });

  it('keeps client and monitoring verdicts apart: a client token never opens the monitoring API from the cache', async () => {
    const v = await createTokenVerifier(authConfig({ secret: TEST_SECRET }));
    const token = await signToken({ sub: 'app-user' });
    expect(await codeOf(v.verify(token))).toBe('ok');
    expect(await codeOf(v.verifyMonitoring(token))).toBe('auth');
    expect(await codeOf(v.verifyMonitoring(token))).toBe('auth');
    const monitoring = await signToken({ sub: 'sre', aud: 'wsguard-monitoring' });
    expect(await codeOf(v.verifyMonitoring(monitoring))).toBe('ok');
    expect(await codeOf(v.verify(monitoring))).toBe('auth');
    expect(await codeOf(v.verify(monitoring))).toBe('auth');
  });
});
