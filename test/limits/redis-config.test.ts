import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';

function error(raw: unknown): string {
  try {
    parseConfig(raw);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected a config error');
}

describe('limits.store / limits.redis options', () => {
  it('defaults to the memory store, fail-closed limits and a 50 ms deadline, 30 s leases', () => {
    const { limits } = parseConfig({ routes: [] });
    expect(limits.store).toBe('memory');
    expect(limits.attempts.onStoreError).toBe('fail-closed');
    expect(limits.concurrent.onStoreError).toBe('fail-closed');
    expect(limits.redis).toMatchObject({ deadlineMs: 50, leaseTtlMs: 30_000, keyPrefix: 'wsguard:' });
  });

  it('names the option for a bad store, URL, policy or renewal interval', () => {
    expect(error({ limits: { store: 'etcd' } })).toContain('limits.store');
    expect(error({ limits: { redis: { url: 'http://redis:6379' } } })).toMatch(/limits\.redis\.url.*redis:\/\//s);
    expect(error({ limits: { redis: { keyPrefix: 'ws{x}:' } } })).toMatch(/limits\.redis\.keyPrefix.*hash tag/s);
    expect(error({ limits: { concurrent: { onStoreError: 'open' } } })).toContain('limits.concurrent.onStoreError');
    expect(error({ limits: { redis: { leaseTtlMs: 5_000, renewIntervalMs: 5_000 } } })).toMatch(
      /limits\.redis\.renewIntervalMs.*shorter than limits\.redis\.leaseTtlMs/s,
    );
  });
});
