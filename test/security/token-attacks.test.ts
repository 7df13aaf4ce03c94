import { createServer, type Server } from 'node:http';
import { Writable } from 'node:stream';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { attempt, open, rejected } from '../helpers/client.ts';
import { signToken, TEST_SECRET } from '../helpers/tokens.ts';
import { waitFor } from '../relay/upstream-servers.ts';
import { exchange, upgradeHead } from './helpers/raw.ts';
import { useRig } from './helpers/setup.ts';

const rig = useRig();
const limits = { attempts: { max: 1000 }, concurrent: { max: 100 } };
const secret = new TextEncoder().encode(TEST_SECRET);
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

async function expect401(url: string, code: 'auth' | 'token_expired', what: string): Promise<void> {
  const r = rejected(await attempt(url));
  expect(r.status, what).toBe(401);
  expect(r.headers['www-authenticate'], what).toBe('Bearer error="invalid_token"');
  expect(JSON.parse(r.body).error, what).toBe(code);
}

describe('token attacks (HS256 gateway)', () => {
  it('rejects alg none, expired, exp = now, nbf in the future, missing exp, wrong iss/aud, garbage — and relays none of them', async () => {
    const { gw, upstream } = await rig.start({
      limits,
      auth: { issuer: 'https://idp.example', audience: 'wsguard', clockToleranceSec: 0 },
    });
    const good = { iss: 'https://idp.example', aud: 'wsguard' };
    const sign = (claims: Record<string, unknown>, exp: number | null) => {
      const jwt = new SignJWT({ sub: 'u', ...good, ...claims }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt();
      if (exp !== null) jwt.setExpirationTime(exp);
      return jwt.sign(secret);
    };
    const url = (t: string) => `${gw.base}/ws/a?access_token=${encodeURIComponent(t)}`;
    // The control: a well-formed token for this issuer and audience is admitted.
    (await open(url(await sign({}, now() + 300)))).close();
    const before = upstream.handshakes.length;

    const alg = { alg: 'none', typ: 'JWT' };
    const payload = { sub: 'u', ...good, exp: now() + 300 };
    await expect401(url(`${b64(alg)}.${b64(payload)}.`), 'auth', 'alg none');
    await expect401(url(`${b64({ alg: 'None' })}.${b64(payload)}.`), 'auth', 'alg None');
    await expect401(url(`${b64({ alg: 'HS256' })}.${b64(payload)}.`), 'auth', 'HS256 without a signature');
    await expect401(url(await sign({}, now() - 10)), 'token_expired', 'expired');
    await expect401(url(await sign({}, now())), 'token_expired', 'exp = now with clockToleranceSec 0');
    await expect401(url(await sign({ nbf: now() + 120 }, now() + 300)), 'auth', 'nbf in the future');
    await expect401(url(await sign({}, null)), 'auth', 'missing exp');
    await expect401(url(await sign({ iss: 'https://evil.example' }, now() + 300)), 'auth', 'wrong iss');
    await expect401(url(await sign({ aud: 'other' }, now() + 300)), 'auth', 'wrong aud');
    await expect401(
      url(await signToken(good, 300, new TextEncoder().encode('another-secret-that-is-at-least-32-chars'))),
      'auth',
      'wrong secret',
    );
    for (const garbage of ['garbage', 'a.b.c', '...', 'eyJ.eyJ.', '%ZZ', '\u0000', 'e'.repeat(5000)])
      await expect401(url(garbage), 'auth', `garbage ${garbage.slice(0, 10)}`);
    expect(upstream.handshakes.length - before).toBe(0);
  });

  it('an oversized token: 100 KB in Authorization gets 401; past uWS’s head limit (~200 KB) TCP is closed unanswered; nothing is relayed', async () => {
    const { gw, upstream } = await rig.start({ limits });
    const big = await exchange(gw.port, upgradeHead('/ws/a', [['Authorization', `Bearer ${'a'.repeat(100_000)}`]]));
    expect(big.status).toBe(401);
    const inQuery = await exchange(gw.port, upgradeHead(`/ws/a?access_token=${'a'.repeat(7000)}`));
    expect(inQuery.status).toBe(401);
    const huge = await exchange(gw.port, upgradeHead('/ws/a', [['Authorization', `Bearer ${'a'.repeat(200_000)}`]]));
    expect(huge.status).toBeNull();
    expect(huge.closedByServer).toBe(true);
    expect(upstream.handshakes).toHaveLength(0);
  });

  it('the token never reaches the upstream (URL, headers, subprotocols) nor the log, from any source', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const { gw, upstream } = await rig.start({ limits }, pino({ level: 'trace' }, sink));
    const tokens: string[] = [];
    const fresh = async () => {
      const t = await signToken({ jti: `j${tokens.length}` });
      tokens.push(t);
      return t;
    };
    const viaHeader = await open(`${gw.base}/ws/h?keep=1`, ['chat'], { headers: { Authorization: `Bearer ${await fresh()}` } });
    const viaProtocol = await open(`${gw.base}/ws/p?keep=2`, [`bearer.${await fresh()}`, 'chat']);
    expect(viaProtocol.protocol).toBe('chat');
    const viaQuery = await open(`${gw.base}/ws/q?a=1&access_token=${await fresh()}&b=2`, ['chat']);
    // Rejected ones too: an expired token and a bad one must not be logged either.
    tokens.push(await signToken({}, -10));
    rejected(await attempt(`${gw.base}/ws/x?access_token=${tokens.at(-1)}`));
    tokens.push(`${tokens[0]!.slice(0, -4)}AAAA`);
    rejected(await attempt(`${gw.base}/ws/y`, [], { headers: { Authorization: `Bearer ${tokens.at(-1)}` } }));
    for (const ws of [viaHeader, viaProtocol, viaQuery]) ws.close();
    await waitFor(() => upstream.sockets.every((s) => s.readyState === s.CLOSED), 5000, 'upstream closes');

    expect(upstream.handshakes.map((h) => h.url)).toEqual(['/ws/h?keep=1', '/ws/p?keep=2', '/ws/q?a=1&b=2']);
    const seen = JSON.stringify(upstream.handshakes);
    const logged = lines.join('');
    expect(lines.length).toBeGreaterThan(0);
    for (const t of tokens) {
      // The signature is the secret part; the payload half may legitimately be quoted as claims.
      const signature = t.split('.')[2]!;
      expect(seen).not.toContain(signature);
      expect(logged).not.toContain(signature);
    }
    for (const h of upstream.handshakes) {
      expect(h.headers['authorization']).toBeUndefined();
      expect(h.protocol).toBe('chat');
      expect(String(h.headers['sec-websocket-protocol'])).not.toMatch(/bearer\./i);
    }
  });
});

describe('token attacks (RS256 gateway)', () => {
  it('HS256 signed with the RS public key (key confusion) is rejected; an RS256 token passes', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    const pem = await exportSPKI(publicKey);
    const { gw, upstream } = await rig.start({ limits, auth: { secret: undefined, publicKeys: [pem], algorithms: ['RS256'] } });
    const ok = await new SignJWT({ sub: 'u' })
      .setProtectedHeader({ alg: 'RS256' })
      .setExpirationTime(now() + 300)
      .sign(privateKey);
    (await open(`${gw.base}/ws/a?access_token=${ok}`)).close();
    const before = upstream.handshakes.length;
    for (const keyText of [pem, pem.trim(), Buffer.from(pem).toString('base64')]) {
      const forged = await new SignJWT({ sub: 'admin' })
        .setProtectedHeader({ alg: 'HS256' })
        .setExpirationTime(now() + 300)
        .sign(new TextEncoder().encode(keyText));
      await expect401(`${gw.base}/ws/a?access_token=${forged}`, 'auth', 'HS256 with the public key as secret');
    }
    expect(upstream.handshakes.length - before).toBe(0);
  });

  it('a flood of unknown kids against a JWKS causes bounded fetches (the cool-down), and every one is rejected', async () => {
    const { publicKey } = await generateKeyPair('RS256', { extractable: true });
    const attacker = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'real', alg: 'RS256', use: 'sig' };
    let fetches = 0;
    const jwks: Server = createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', () => r()));
    rig.defer(() => new Promise<void>((r) => jwks.close(() => r())));
    const { port } = jwks.address() as { port: number };
    const { gw, upstream } = await rig.start({
      limits: { attempts: { max: 10_000 }, concurrent: { max: 100 } },
      auth: { secret: undefined, jwksUrl: `http://127.0.0.1:${port}/jwks.json`, algorithms: ['RS256'], jwksCooldownSec: 30 },
    });
    await waitFor(() => fetches >= 1, 5000, 'the first JWKS fetch');
    const before = fetches;
    const kids = 60;
    await Promise.all(
      Array.from({ length: kids }, async (_, i) => {
        const t = await new SignJWT({ sub: 'u' })
          .setProtectedHeader({ alg: 'RS256', kid: `kid-${i}` })
          .setExpirationTime(now() + 300)
          .sign(attacker.privateKey);
        await expect401(`${gw.base}/ws/a?access_token=${t}`, 'auth', `kid-${i}`);
      }),
    );
    // At most one re-fetch per cool-down (30 s), however many distinct kids arrive.
    expect(fetches - before).toBeLessThanOrEqual(1);
    expect(upstream.handshakes).toHaveLength(0);
  });
});
