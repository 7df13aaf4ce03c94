import { describe, expect, it } from 'vitest';
import { delayBounds, nextDelay, withHint, type BackoffPolicy } from '../../src/client/backoff.ts';

/** Deterministic PRNG (mulberry32) so distribution checks are reproducible. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const N = 5_000;

describe('backoff policies (shared by wsguard/client and the CLI storm)', () => {
  it('immediate and fixed are constant', () => {
    expect(nextDelay({ kind: 'immediate' }, 3, 0)).toBe(0);
    expect(nextDelay({ kind: 'fixed', delayMs: 250 }, 9, 0)).toBe(250);
  });

  it('exponential without jitter doubles up to the cap', () => {
    const p: BackoffPolicy = { kind: 'exponential', baseMs: 100, capMs: 1000, jitter: 'none' };
    expect([1, 2, 3, 4, 5, 6].map((a) => nextDelay(p, a, 0))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  for (const jitter of ['full', 'equal'] as const) {
    it(`${jitter} jitter stays within its bounds and spreads over them`, () => {
      const p: BackoffPolicy = { kind: 'exponential', baseMs: 100, capMs: 5000, jitter };
      const r = rng(7);
      for (const attempt of [1, 3, 6, 10]) {
        const [lo, hi] = delayBounds(p, attempt, 0);
        const xs = Array.from({ length: N }, () => nextDelay(p, attempt, 0, r));
        expect(Math.min(...xs)).toBeGreaterThanOrEqual(lo);
        expect(Math.max(...xs)).toBeLessThanOrEqual(hi);
        const mean = xs.reduce((a, b) => a + b, 0) / N;
        // Uniform over [lo, hi]: mean within 3% of the midpoint, and both ends reached.
        expect(Math.abs(mean - (lo + hi) / 2)).toBeLessThan((hi - lo) * 0.03 + 1e-9);
        expect(Math.min(...xs)).toBeLessThan(lo + (hi - lo) * 0.01 + 1e-9);
        expect(Math.max(...xs)).toBeGreaterThan(hi - (hi - lo) * 0.01 - 1e-9);
      }
    });
  }

  it('decorrelated jitter draws between base and 3× the previous delay, capped', () => {
    const p: BackoffPolicy = { kind: 'exponential', baseMs: 100, capMs: 2000, jitter: 'decorrelated' };
    const r = rng(11);
    let prev = 100;
    for (let i = 1; i <= N; i++) {
      const [lo, hi] = delayBounds(p, i, prev);
      const d = nextDelay(p, i, prev, r);
      expect(d).toBeGreaterThanOrEqual(lo);
      expect(d).toBeLessThanOrEqual(hi);
      prev = d;
    }
    expect(delayBounds(p, 1, 1500)).toEqual([100, 2000]);
  });

  it('a server hint is a floor when honoured and ignored otherwise', () => {
    expect(withHint(50, 1000, true)).toBe(1000);
    expect(withHint(1500, 1000, true)).toBe(1500);
    expect(withHint(50, 1000, false)).toBe(50);
    expect(withHint(50, undefined, true)).toBe(50);
  });
});
