import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.ts';
import { isGatewayError } from '../../src/errors.ts';
import { RedisLimitStore, type RedisLimitStoreOptions } from '../../src/limits/redis-store.ts';
import { waitFor } from '../helpers/wait.ts';
import { pauseClients, startRedis, type TestRedis } from '../scale/redis-server.ts';

let redis: TestRedis;
const stores: RedisLimitStore[] = [];
let prefixSeq = 0;

beforeAll(async () => {
  redis = await startRedis();
}, 20_000);
afterAll(async () => {
  await redis?.stop();
});
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  if (redis.admin.status === 'ready') await redis.admin.flushall();
});

/** A store as the config would build it; each test gets its own key prefix. */
function store(
  over: Partial<Omit<RedisLimitStoreOptions, 'redis'>> & { redis?: Partial<RedisLimitStoreOptions['redis']> } = {},
): RedisLimitStore {
  // A generous deadline unless a test is about the deadline: test files run in parallel on 2 cores.
  const limits = configSchema.parse({
    routes: [],
    limits: { redis: { url: redis.url, keyPrefix: `t${prefixSeq}:`, deadlineMs: 1_000, ...over.redis } },
  }).limits;
  const s = new RedisLimitStore({
    expectedReplicas: 1,
    attempts: 'fail-closed',
    concurrent: 'fail-closed',
    maxTrackedKeys: 1000,
    ...over,
    redis: limits.redis,
  });
  stores.push(s);
  return s;
}

const until = (check: () => boolean | Promise<boolean>, timeoutMs = 10_000) => waitFor(check, { timeoutMs });

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('RedisLimitStore against a real redis-server', () => {
  it('shares the attempt window between replicas, with the memory store Retry-After', async () => {
    prefixSeq++;
    const a = store();
    const b = store();
    await Promise.all([a.ready(), b.ready()]);
    expect((await a.tryAttempt('1.2.3.4', 3, 10_000, 0)).ok).toBe(true);
    expect((await b.tryAttempt('1.2.3.4', 3, 10_000, 0)).ok).toBe(true);
    expect((await a.tryAttempt('1.2.3.4', 3, 10_000, 0)).ok).toBe(true);
    const refused = await b.tryAttempt('1.2.3.4', 3, 10_000, 0);
    // The oldest of the three must age out: a whole window minus the few ms since it was made.
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.retryAfterMs).toBeGreaterThan(9_000);
    if (!refused.ok) expect(refused.retryAfterMs).toBeLessThanOrEqual(10_000);
    expect((await a.tryAttempt('5.6.7.8', 3, 10_000, 0)).ok).toBe(true);
    // Each client key's state is in one hash slot: {clientKey}.
    expect(await redis.admin.exists(`t${prefixSeq}:{1.2.3.4}:a`)).toBe(1);
  });

  it('releases an attempt so that it no longer counts', async () => {
    prefixSeq++;
    const a = store();
    await a.ready();
    const first = await a.tryAttempt('k', 1, 60_000, 0);
    expect((await a.tryAttempt('k', 1, 60_000, 0)).ok).toBe(false);
    if (first.ok) await a.releaseAttempt('k', first.id);
    expect((await a.tryAttempt('k', 1, 60_000, 0)).ok).toBe(true);
  });

  it('counts concurrent leases across replicas and frees one on release', async () => {
    prefixSeq++;
    const a = store();
    const b = store();
    await Promise.all([a.ready(), b.ready()]);
    expect(await a.tryAcquireSlot('ip', 2)).toBe(true);
    expect(await b.tryAcquireSlot('ip', 2)).toBe(true);
    expect(await a.tryAcquireSlot('ip', 2)).toBe(false);
    await b.releaseSlot('ip');
    expect(await a.tryAcquireSlot('ip', 2)).toBe(true);
    const key = `t${prefixSeq}:{ip}:c`;
    expect(await redis.admin.zcard(key)).toBe(2);
    // Lease expiry is a score from Redis TIME plus the TTL (30 s default).
    const [, score] = await redis.admin.zrange(key, '0', '0', 'WITHSCORES');
    const [sec] = await redis.admin.time();
    expect(Number(score) - Number(sec) * 1000).toBeGreaterThan(25_000);
  });

  it('renews all live leases in one pipeline and re-registers them after Redis restarts empty', async () => {
    prefixSeq++;
    // A TTL well above the renewal interval, so that a busy machine's stalls do not expire the leases.
    const a = store({ redis: { leaseTtlMs: 3_000, renewIntervalMs: 200 } });
    const b = store({ redis: { leaseTtlMs: 3_000, renewIntervalMs: 200 } });
    await Promise.all([a.ready(), b.ready()]);
    for (let i = 0; i < 3; i++) expect(await a.tryAcquireSlot(`ip${i}`, 1)).toBe(true);
    const before = a.roundTrips;
    await a.renew();
    expect(a.roundTrips - before).toBe(1);
    await redis.kill();
    await redis.restart();
    await until(async () => (await redis.admin.zcard(`t${prefixSeq}:{ip0}:c`).catch(() => 0)) === 1);
    await until(() => a.health().degraded === false);
    // b saw the outage too (its renewal timer probes): it answers again once it has reconnected.
    await until(() => b.health().degraded === false);
    expect(await b.tryAcquireSlot('ip0', 1)).toBe(false);
    expect(await b.tryAcquireSlot('ip2', 1)).toBe(false);
  }, 20_000);

  it('fail-closed: Redis down is 503 store_unavailable naming the option, and not ready', async () => {
    prefixSeq++;
    const transitions: boolean[] = [];
    const a = store({ onDegraded: (d) => transitions.push(d) });
    await a.ready();
    await redis.kill();
    try {
      for (let i = 0; i < 3; i++) {
        const err = await rejection(a.tryAttempt('k', 10, 60_000, 0));
        expect(isGatewayError(err) && err.code).toBe('store_unavailable');
        expect((err as Error).message).toContain('limits.attempts.onStoreError');
      }
      const err = await rejection(a.tryAcquireSlot('k', 5));
      expect(isGatewayError(err) && err.code).toBe('store_unavailable');
      expect(a.health()).toEqual({ degraded: true, ok: false });
    } finally {
      await redis.restart();
    }
    await until(() => a.health().degraded === false, 8_000);
    expect(transitions).toEqual([true, false]);
  }, 20_000);

  it('a degraded store with no connections finds out by itself that Redis is back', async () => {
    prefixSeq++;
    const a = store({ redis: { renewIntervalMs: 200, breakerCooldownMs: 100 } });
    await a.ready();
    await redis.kill();
    try {
      for (let i = 0; i < 3; i++) await rejection(a.tryAttempt('k', 10, 60_000, 0));
      expect(a.health().degraded).toBe(true);
    } finally {
      await redis.restart();
    }
    // No handshake reaches a fail-closed replica that is not ready: the renewal timer must probe.
    await until(() => a.health().degraded === false, 8_000);
  }, 20_000);

  it('reports the cause of a connection failure once per outage, not once per reconnection attempt', async () => {
    const { closedPort } = await import('../helpers/upstream.ts');
    const causes: string[] = [];
    const a = store({ redis: { url: `redis://127.0.0.1:${await closedPort()}` }, onConnectionError: (m) => causes.push(m) });
    let reconnects = 0;
    a.redis.on('reconnecting', () => reconnects++);
    await until(() => reconnects >= 3, 10_000);
    expect(causes).toHaveLength(1);
    expect(causes[0]).toMatch(/ECONNREFUSED/);
  }, 20_000);

  it('fail-open: Redis down counts locally at max ÷ expectedReplicas and stays ready', async () => {
    prefixSeq++;
    const a = store({ attempts: 'fail-open', concurrent: 'fail-open', expectedReplicas: 2 });
    await a.ready();
    await redis.kill();
    try {
      const attempts = [];
      for (let i = 0; i < 4; i++) attempts.push((await a.tryAttempt('k', 4, 60_000, Date.now())).ok);
      expect(attempts).toEqual([true, true, false, false]);
      const slots = [];
      for (let i = 0; i < 3; i++) slots.push(await a.tryAcquireSlot('k', 5));
      expect(slots).toEqual([true, true, false]);
      expect(a.health()).toEqual({ degraded: true, ok: true });
    } finally {
      await redis.restart();
    }
    // The two leases admitted while Redis was away are registered once it is back.
    await until(async () => (await redis.admin.zcard(`t${prefixSeq}:{k}:c`).catch(() => 0)) === 2, 8_000);
  }, 20_000);

  it('does not count its own event-loop lag as a deadline miss when the reply is already there', async () => {
    prefixSeq++;
    const a = store({ redis: { deadlineMs: 50 } });
    await a.ready();
    const pending = a.tryAttempt('k', 5, 60_000, 0);
    await new Promise((r) => setImmediate(r)); // the auto-pipeline has written the command
    const end = performance.now() + 150; // the loop is busy past the deadline while Redis answers
    while (performance.now() < end);
    expect((await pending).ok).toBe(true);
  });

  it('answers within the deadline while Redis stalls, and the open breaker fails fast without a round trip', async () => {
    prefixSeq++;
    const a = store({ redis: { deadlineMs: 50, breakerCooldownMs: 60_000 } });
    await a.ready();
    const stallMs = 3_000;
    const stall = await pauseClients(redis.admin, stallMs);
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const err = await rejection(a.tryAcquireSlot('k', 5));
      const took = performance.now() - t0;
      expect(isGatewayError(err) && err.code).toBe('store_unavailable');
      // The 50 ms deadline, not the stall: half the stall leaves a busy 2-core machine 1.4 s of slack.
      expect(took).toBeLessThan(stallMs / 2);
    }
    const trips = a.roundTrips;
    await rejection(a.tryAttempt('k', 5, 1000, 0));
    expect(a.roundTrips).toBe(trips);
    await stall.ended;
    // The acquires that timed out may have landed after the sleep: they are orphans, removed by the next renewal.
    expect(a.health().degraded).toBe(true);
  }, 20_000);
});
