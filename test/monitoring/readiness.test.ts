import { describe, expect, it } from 'vitest';
import { readinessFrom } from '../../src/monitoring/readiness.ts';

describe('readiness', () => {
  it('is ready only when listening, JWKS loaded, store usable, fds to spare and not draining', () => {
    const parts = { listening: true, draining: false, jwksLoaded: true, storeOk: true };
    const r = readinessFrom(() => parts);
    expect(r()).toEqual({ ready: true, checks: { listening: true, jwks: true, store: true, fds: true, draining: false } });
    for (const flip of [{ listening: false }, { jwksLoaded: false }, { storeOk: false }, { fdsOk: false }, { draining: true }]) {
      expect(readinessFrom(() => ({ ...parts, ...flip }))().ready, JSON.stringify(flip)).toBe(false);
    }
  });

  it('is not ready before the gateway exists or when reading fails', () => {
    expect(readinessFrom(() => undefined)()).toEqual({ ready: false, checks: { started: false } });
    const errors: unknown[] = [];
    const r = readinessFrom(
      () => {
        throw new Error('boom');
      },
      (err) => errors.push(err),
    )();
    expect(r).toEqual({ ready: false, checks: { readable: false } });
    expect(errors).toHaveLength(1);
  });
});
