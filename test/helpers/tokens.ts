import { SignJWT, type JWTPayload } from 'jose';

export const TEST_SECRET = 'test-secret-that-is-at-least-32-characters-long';
const key = new TextEncoder().encode(TEST_SECRET);

/** A real HS256 token; `expiresInSec` may be negative for an expired one. */
export async function signToken(claims: JWTPayload = {}, expiresInSec: number | null = 300, secret: Uint8Array = key): Promise<string> {
  const jwt = new SignJWT({ sub: 'user-1', ...claims }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt();
  if (expiresInSec !== null) jwt.setExpirationTime(Math.floor(Date.now() / 1000) + expiresInSec);
  return jwt.sign(secret);
}
