import { webcrypto } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createTokenVerifier } from '../../src/auth/token-verifier.ts';
import { parseConfig } from '../../src/config/load.ts';
import { TEST_SECRET, signToken } from '../helpers/tokens.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('verification keys are imported once (issue 12)', () => {
  it('verifies HS256 tokens without importing the secret into WebCrypto per token', async () => {
    const v = await createTokenVerifier(parseConfig({ auth: { secret: TEST_SECRET } }).auth);
    // Signed first: signing imports the secret too.
    const tokens = await Promise.all([0, 1, 2, 3, 4].map((i) => signToken({ sub: `u${i}` })));
    // A pass-through spy on the real WebCrypto: it counts, the key is still imported for real.
    const imports = vi.spyOn(webcrypto.subtle, 'importKey');
    for (const [i, token] of tokens.entries()) expect((await v.verify(token)).sub).toBe(`u${i}`);
    // Before: one importKey per verification (jose imports a Uint8Array secret each time).
    expect(imports).toHaveBeenCalledTimes(0);
    v.close();
  });

  it('keeps each pinned HS* algorithm on its own key, and refuses an unpinned one as an algorithm not allowed', async () => {
    const v = await createTokenVerifier(parseConfig({ auth: { secret: TEST_SECRET, algorithms: ['HS256', 'HS512'] } }).auth);
    const key = new TextEncoder().encode(TEST_SECRET);
    const sign = (alg: string) =>
      new SignJWT({ sub: alg })
        .setProtectedHeader({ alg })
        .setExpirationTime(Math.floor(Date.now() / 1000) + 60)
        .sign(key);
    expect((await v.verify(await sign('HS256'))).sub).toBe('HS256');
    expect((await v.verify(await sign('HS512'))).sub).toBe('HS512');
    await expect(v.verify(await sign('HS384'))).rejects.toMatchObject({
      code: 'auth',
      message: expect.stringContaining('ALG_NOT_ALLOWED'),
    });
    v.close();
  });
});
