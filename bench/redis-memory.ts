/**
 * Redis memory per tracked client key for the Redis limit store: fills a private redis-server with
 * 20,000 client keys (each with `attempts` attempts in the window and one open-connection lease)
 * and prints the used_memory delta per key, for sizing Redis (docs/scaling.md).
 *
 * Usage: npx tsx bench/redis-memory.ts
 */
import { RedisLimitStore } from '../src/limits/redis-store.ts';
import { configSchema } from '../src/config/schema.ts';
import { startRedis } from '../test/scale/redis-server.ts';
const redis = await startRedis();
const limits = configSchema.parse({ routes: [], limits: { redis: { url: redis.url } } }).limits;
const s = new RedisLimitStore({
  redis: { ...limits.redis, deadlineMs: 5000 },
  expectedReplicas: 1,
  attempts: 'fail-closed',
  concurrent: 'fail-closed',
  maxTrackedKeys: 1e6,
});
await s.ready();
const mem = async () => Number((await redis.admin.info('memory')).match(/used_memory:(\d+)/)![1]);
const keys = 20000;
for (const attempts of [1, 10]) {
  await redis.admin.flushall();
  const before = await mem();
  const ps = [];
  for (let i = 0; i < keys; i++) {
    const k = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    for (let a = 0; a < attempts; a++) ps.push(s.tryAttempt(k, 10, 3_600_000, 0));
    ps.push(s.tryAcquireSlot(k, 5));
    if (ps.length > 2000) await Promise.all(ps.splice(0));
  }
  await Promise.all(ps);
  console.log(`attempts ${attempts} + 1 lease per key: ${((await mem()) - before) / keys} B per client key`);
}
await s.close();
await redis.stop();
