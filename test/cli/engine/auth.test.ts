import { describe, expect, it } from 'vitest';
import { decodeProtectedHeader, exportPKCS8, generateKeyPair, jwtVerify } from 'jose';
import { createHandshakeAuth, createJwtMinter, unsignedToken } from '../../../cli/engine/auth.ts';

describe('auth', () => {
  it('mints RS256 and ES256 tokens per user that verify with the public key', async () => {
    for (const alg of ['RS256', 'ES256'] as const) {
      const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
      const mint = createJwtMinter({
        alg,
        privateKeyPem: await exportPKCS8(privateKey),
        claimsTemplate: '{"sub":"u{{i}}","aud":"app"}',
        expSec: 60,
        kid: 'k1',
      });
      const t = await mint(4);
      const { payload } = await jwtVerify(t, publicKey, { audience: 'app', algorithms: [alg] });
      expect(payload.sub).toBe('u4');
      expect(payload.exp! - payload.iat!).toBe(60);
      expect(decodeProtectedHeader(t).kid).toBe('k1');
      expect(await mint(4)).toBe(t);
    }
  });

  it('places the token in the header, the query or a subprotocol', async () => {
    const base = 'ws://127.0.0.1:1/ws';
    const h = await createHandshakeAuth(base, { token: 'abc', headers: { 'X-A': '1' } })(0);
    expect(h.headers).toEqual({ 'X-A': '1', Authorization: 'Bearer abc' });
    const q = await createHandshakeAuth(base, { token: 'abc', tokenIn: 'query', queryParam: 'access_token' })(0);
    expect(q.url).toBe('ws://127.0.0.1:1/ws?access_token=abc');
    const s = await createHandshakeAuth(base, { token: 'abc', tokenIn: 'subprotocol', subprotocols: ['chat'] })(0);
    expect(s.protocols).toEqual(['chat', 'bearer.abc']);
  });

  it('builds an alg=none token', () => {
    const t = unsignedToken({ sub: 'x' });
    expect(decodeProtectedHeader(t).alg).toBe('none');
    expect(t.endsWith('.')).toBe(true);
  });
});
