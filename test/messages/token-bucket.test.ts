import { describe, expect, it } from 'vitest';
import { checkRate, createRateState } from '../../src/messages/rate-policy.ts';
import { createBucket, take } from '../../src/messages/token-bucket.ts';

describe('token bucket (fake clock)', () => {
  it('allows a burst of capacity, then refills at the rate', () => {
    const b = createBucket(3, 0);
    const perMs = 1 / 1000; // one token a second
    expect([take(b, 1, 3, perMs, 0), take(b, 1, 3, perMs, 0), take(b, 1, 3, perMs, 0)]).toEqual([0, 0, 0]);
    expect(take(b, 1, 3, perMs, 0)).toBe(1000);
    expect(take(b, 1, 3, perMs, 999)).toBe(1);
    expect(take(b, 1, 3, perMs, 1000)).toBe(0);
    // Long idle refills to capacity, not beyond.
    expect([0, 0, 0, 0].map(() => take(b, 1, 3, perMs, 60_000))).toEqual([0, 0, 0, 1000]);
  });
});

describe('message rate policy (seed default 60/min)', () => {
  const config = { perMinute: 60, burst: 60, action: 'close' as const, notice: true };

  it('passes 60 back to back, rejects the 61st, and passes one more each second', () => {
    const s = createRateState(config, 0);
    const verdicts = Array.from({ length: 61 }, () => checkRate(s, config, 10, 0));
    expect(verdicts.slice(0, 60).every((v) => v === 'pass')).toBe(true);
    expect(verdicts[60]).toBe('close');
    expect(checkRate(s, config, 10, 1000)).toBe('pass');
    expect(checkRate(s, config, 10, 1000)).toBe('close');
  });

  it('applies the optional byte rate, and the configured action', () => {
    const bytes = { ...config, action: 'drop' as const, bytesPerSecond: 1000 };
    const s = createRateState(bytes, 0);
    expect(checkRate(s, bytes, 600, 0)).toBe('pass');
    expect(checkRate(s, bytes, 600, 0)).toBe('drop');
    expect(checkRate(s, bytes, 600, 1000)).toBe('pass');
    expect(checkRate(s, bytes, 5000, 10_000)).toBe('drop');
  });
});
