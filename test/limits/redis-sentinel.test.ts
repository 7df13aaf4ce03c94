import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.ts';
import { RedisLimitStore } from '../../src/limits/redis-store.ts';
import { startRedis, startSentinel, type TestRedis } from '../scale/redis-server.ts';

let master: TestRedis;
let sentinel: Awaited<ReturnType<typeof startSentinel>>;

beforeAll(async () => {
  master = await startRedis();
  sentinel = await startSentinel(master.port);
}, 30_000);
afterAll(async () => {
  await sentinel?.stop();
  await master?.stop();
});

describe('RedisLimitStore through Redis Sentinel', () => {
  it('finds the master through the sentinel and shares the limits there', async () => {
    // limits.redis.url points nowhere: only the sentinel knows where the master is.
    const limits = configSchema.parse({
      routes: [],
      limits: { redis: { url: 'redis://127.0.0.1:1', sentinels: [sentinel.url], sentinelName: 'mymaster', deadlineMs: 1_000 } },
    }).limits;
    const opts = {
      redis: limits.redis,
      expectedReplicas: 1,
      attempts: 'fail-closed' as const,
      concurrent: 'fail-closed' as const,
      maxTrackedKeys: 100,
    };
    const a = new RedisLimitStore(opts);
    const b = new RedisLimitStore(opts);
    try {
      expect(await a.ready(10_000)).toBe(true);
      expect(await b.ready(10_000)).toBe(true);
      expect(await a.tryAcquireSlot('ip', 1)).toBe(true);
      expect(await b.tryAcquireSlot('ip', 1)).toBe(false);
      expect(await master.admin.zcard('wsguard:{ip}:c')).toBe(1);
    } finally {
      await a.close();
      await b.close();
    }
  }, 30_000);

  it('refuses cluster and sentinels together, naming both options', () => {
    const r = configSchema.safeParse({ limits: { redis: { cluster: ['redis://a:1'], sentinels: ['redis://b:2'] } } });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toContain('set limits.redis.cluster or limits.redis.sentinels, not both');
  });
});
