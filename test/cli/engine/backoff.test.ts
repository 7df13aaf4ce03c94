import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../../cli/engine/backoff.ts';

// The policies' distributions are tested with wsguard/client, which owns them (test/client/backoff.test.ts).
describe('--policy parsing', () => {
  it('parses policy strings', () => {
    expect(parsePolicy('immediate')).toEqual({ kind: 'immediate' });
    expect(parsePolicy('fixed:500')).toEqual({ kind: 'fixed', delayMs: 500 });
    expect(parsePolicy('exp:100:30000:decorrelated')).toEqual({ kind: 'exponential', baseMs: 100, capMs: 30000, jitter: 'decorrelated' });
    expect(() => parsePolicy('exp:100:50:full')).toThrow(/base <= cap/);
    expect(() => parsePolicy('linear')).toThrow(/expected immediate/);
  });
});
