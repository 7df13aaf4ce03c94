import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from 'ioredis';
import { configSchema } from '../../src/config/schema.ts';
import { RedisLimitStore } from '../../src/limits/redis-store.ts';
import { waitFor } from '../helpers/wait.ts';
import { redisNowMs, startRedisCluster, type TestRedisCluster } from '../scale/redis-server.ts';

let cluster: TestRedisCluster;
const stores: RedisLimitStore[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster();
}, 60_000);
afterAll(async () => {
  for (const s of stores) await s.close();
  await cluster?.stop();
});

function store(): RedisLimitStore {
  const limits = configSchema.parse({
    routes: [],
    limits: { redis: { cluster: cluster.urls, leaseTtlMs: 2_000, renewIntervalMs: 300, deadlineMs: 1_000 } },
  }).limits;
  const s = new RedisLimitStore({
    redis: limits.redis,
    expectedReplicas: 1,
    attempts: 'fail-closed',
    concurrent: 'fail-closed',
    maxTrackedKeys: 1000,
  });
  stores.push(s);
  return s;
}

describe('RedisLimitStore on a three-master Redis Cluster', () => {
  it('shares attempts and leases across replicas for keys on every master, one slot per client key', async () => {
    const a = store();
    const b = store();
    expect(await a.ready(10_000)).toBe(true);
    expect(await b.ready(10_000)).toBe(true);
    // 30 client keys spread over the 16,384 slots, so over all three masters.
    const keys = Array.from({ length: 30 }, (_, i) => `10.0.0.${i}`);
    for (const k of keys) {
      expect((await a.tryAttempt(k, 2, 60_000, 0)).ok).toBe(true);
      expect((await b.tryAttempt(k, 2, 60_000, 0)).ok).toBe(true);
      expect((await a.tryAttempt(k, 2, 60_000, 0)).ok).toBe(false);
      expect(await a.tryAcquireSlot(k, 1)).toBe(true);
      expect(await b.tryAcquireSlot(k, 1)).toBe(false);
    }
    const admin = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })));
    try {
      const slots = new Set<number>();
      for (const k of keys.slice(0, 5)) {
        const [sa, sc] = await Promise.all([admin.cluster('KEYSLOT', `wsguard:{${k}}:a`), admin.cluster('KEYSLOT', `wsguard:{${k}}:c`)]);
        expect(sa).toBe(sc);
        slots.add(Number(sa));
      }
      expect(slots.size).toBeGreaterThan(1);
      // Renewal keeps the leases past their 2 s TTL on every master. Wait, on Redis's own clock, until
      // the expiry each lease was first given has passed (a fixed 2.5 s sleep measured nothing itself),
      // then each is still there with a later expiry: renewed, not merely not yet swept.
      const expiry = async (k: string) => {
        const scores = (await admin.zrange(`wsguard:{${k}}:c`, '0', '-1', 'WITHSCORES')).filter((_, i) => i % 2 === 1);
        expect(scores).toHaveLength(1);
        return Number(scores[0]);
      };
      const first = new Map<string, number>();
      for (const k of keys) first.set(k, await expiry(k));
      const latest = Math.max(...first.values());
      await waitFor(async () => (await redisNowMs(admin)) > latest, { timeoutMs: 15_000, what: 'the first lease expiries' });
      for (const k of keys) expect(await expiry(k)).toBeGreaterThan(first.get(k)!);
      for (const k of keys) await a.releaseSlot(k);
      for (const k of keys) expect(await b.tryAcquireSlot(k, 1)).toBe(true);
    } finally {
      admin.disconnect();
    }
  }, 30_000);
});
