import { afterEach, describe, expect, it } from 'vitest';
import { attemptLimitPolicy } from '../../src/admission/attempt-limit-policy.ts';
import { authPolicy } from '../../src/admission/auth-policy.ts';
import { concurrentLimitPolicy } from '../../src/admission/concurrent-limit-policy.ts';
import type { AdmissionContext } from '../../src/admission/context.ts';
import { createTokenVerifier } from '../../src/auth/token-verifier.ts';
import { parseConfig } from '../../src/config/load.ts';
import { GatewayError } from '../../src/errors.ts';
import { MemoryLimitStore } from '../../src/limits/memory-store.ts';
import { admissionContext } from '../helpers/admission-context.ts';
import { signToken, TEST_SECRET } from '../helpers/tokens.ts';

const context = (token: string | null = null): AdmissionContext => admissionContext({ token });

/** The GatewayError code `check` throws synchronously; fails when it returns or hands back a Promise instead. */
function throwsNow(check: () => unknown): string {
  try {
    const result = check();
    throw new Error(`expected a synchronous refusal, got ${result instanceof Promise ? 'a Promise' : 'a pass'}`);
  } catch (err) {
    if (err instanceof GatewayError) return err.code;
    throw err;
  }
}

let store: MemoryLimitStore | null = null;
afterEach(async () => {
  await store?.close();
  store = null;
});

// Why these matter: with the memory store and a cached token every policy answers without a Promise,
// so runAdmission decides within the uWS upgrade handler (an attempt-limit 429 costs no microtask).
describe('policies answer synchronously when nothing has to wait', () => {
  it('the attempt limit: passes and refuses with no Promise over the memory store, and reserves the attempt', () => {
    const config = parseConfig({ limits: { attempts: { max: 1 } } }).limits;
    store = new MemoryLimitStore({ maxTrackedKeys: 100 });
    const policy = attemptLimitPolicy(config.attempts, store);
    const ctx = context();
    expect(policy.check(ctx)).toBeUndefined();
    expect(ctx.reservations.attempt).toBeTypeOf('function');
    expect(throwsNow(() => policy.check(context()))).toBe('attempt_limit');
  });

  it('the concurrent limit: the same, holding the slot until released', () => {
    const config = parseConfig({ limits: { concurrent: { max: 1 } } }).limits;
    store = new MemoryLimitStore({ maxTrackedKeys: 100 });
    const policy = concurrentLimitPolicy(config.concurrent, store);
    const ctx = context();
    expect(policy.check(ctx)).toBeUndefined();
    expect(throwsNow(() => policy.check(context()))).toBe('conn_limit');
    ctx.reservations.slot!();
    expect(policy.check(context())).toBeUndefined();
  });

  it('auth: waits for a token it has not verified, then passes the same token without waiting', async () => {
    const auth = parseConfig({ auth: { secret: TEST_SECRET } }).auth;
    const verifier = await createTokenVerifier(auth);
    const policy = authPolicy(auth, verifier);
    const token = await signToken({ sub: 'bob' });
    const first = context(token);
    const waited = policy.check(first);
    expect(waited).toBeInstanceOf(Promise);
    await waited;
    expect(first.claims?.sub).toBe('bob');
    const again = context(token);
    expect(policy.check(again)).toBeUndefined();
    expect(again.claims?.sub).toBe('bob');
    verifier.close();
  });
});
