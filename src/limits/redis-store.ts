import { randomBytes } from 'node:crypto';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Config } from '../config/schema.ts';
import { GatewayError } from '../errors.ts';
import { STORE_RETRY_AFTER_MS, type AttemptResult, type LimitStore, type StoreHealth } from './limit-store.ts';
import { MemoryLimitStore } from './memory-store.ts';
import { ACQUIRE, ATTEMPT, RENEW, type LuaScript } from './redis-scripts.ts';

type FailurePolicy = 'fail-open' | 'fail-closed';

export interface RedisLimitStoreOptions {
  redis: Config['limits']['redis'];
  expectedReplicas: number;
  attempts: FailurePolicy;
  concurrent: FailurePolicy;
  /** Bounds the local fallback's attempt log, as for the memory store. */
  maxTrackedKeys: number;
  /** A Redis call failed (error, deadline or open breaker). */
  onError?: () => void;
  /** The breaker opened (true) or closed again (false). */
  onDegraded?: (degraded: boolean) => void;
  /** Told the cause of a connection failure, once per outage (the degraded transitions are the observer's). */
  onConnectionError?: (message: string) => void;
}

class StoreDown extends Error {}
/** The request was sent but not answered in time: it may still run in Redis. */
class TimedOut extends StoreDown {}

/** The user and password of a URL (a cluster seed's apply to every node). */
function credentials(u: string): Pick<RedisOptions, 'username' | 'password'> {
  const url = new URL(u);
  return {
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
  };
}

/** Prefix of attempt ids recorded by the local fallback, so that releaseAttempt finds their home. */
const LOCAL = 'L';

/**
 * Per-IP limits shared by every replica through one standalone Redis. Attempts are a sliding log
 * and connections are leases (a ZSET per client key, one member per connection, scored by expiry);
 * this replica keeps its live leases in `leases`, renews them all in one pipeline per interval and
 * so re-registers them when Redis comes back empty.
 *
 * A call that errs, misses `deadlineMs` or meets the open breaker follows the limit's policy:
 * fail-open decides locally at max ÷ expectedReplicas, fail-closed throws 503 store_unavailable.
 * There is no offline queue: a disconnected client fails at once instead of queueing handshakes.
 */
export class RedisLimitStore implements LimitStore {
  readonly redis: Redis | Cluster;
  /** Redis requests sent (a pipeline is one); read by bench/limit-store-redis.ts. */
  roundTrips = 0;
  readonly #opts: RedisLimitStoreOptions;
  readonly #prefix: string;
  readonly #ttlMs: number;
  readonly #replica = randomBytes(6).toString('base64url');
  #seq = 0;
  /** This replica's live leases: client key → lease ids (Redis-admitted or admitted by the fallback). */
  readonly #leases = new Map<string, string[]>();
  /** Lease ids to ZREM at the next chance: a release that failed, or an acquire that timed out and may land late. */
  #orphans: Array<[string, string]> = [];
  readonly #fallback: MemoryLimitStore;
  #failures = 0;
  #openUntil = 0;
  #probing = false;
  #degradedNow = false;
  readonly #renewer: NodeJS.Timeout;
  #renewing: Promise<void> | null = null;
  #closed = false;

  constructor(options: RedisLimitStoreOptions) {
    this.#opts = options;
    this.#prefix = options.redis.keyPrefix;
    this.#ttlMs = options.redis.leaseTtlMs;
    this.#fallback = new MemoryLimitStore({ maxTrackedKeys: options.maxTrackedKeys });
    // Reconnect quickly and keep trying: recovery is automatic, and a lost Redis must not cost a restart.
    const retry = (times: number) => Math.min(times * 100, 1_000);
    const common: RedisOptions = { maxRetriesPerRequest: 0, connectTimeout: 2_000 };
    this.redis = options.redis.cluster.length
      ? new Cluster(
          options.redis.cluster.map((u) => {
            const url = new URL(u);
            return { host: url.hostname, port: Number(url.port || 6379) };
          }),
          {
            enableOfflineQueue: false,
            enableAutoPipelining: true,
            clusterRetryStrategy: retry,
            redisOptions: { ...common, ...credentials(options.redis.cluster[0]!) },
          },
        )
      : options.redis.sentinels.length
        ? new Redis({
            ...common,
            ...credentials(options.redis.url),
            sentinels: options.redis.sentinels.map((u) => {
              const url = new URL(u);
              return { host: url.hostname, port: Number(url.port || 26379) };
            }),
            name: options.redis.sentinelName,
            ...(credentials(options.redis.sentinels[0]!).password
              ? { sentinelPassword: credentials(options.redis.sentinels[0]!).password }
              : {}),
            enableOfflineQueue: false,
            retryStrategy: retry,
            sentinelRetryStrategy: retry,
            enableAutoPipelining: true,
          })
        : new Redis(options.redis.url, {
            ...common,
            enableOfflineQueue: false,
            retryStrategy: retry,
            lazyConnect: false,
            enableAutoPipelining: true,
          });
    // Connection errors surface through the calls and the breaker; the cause is reported once per
    // outage (ioredis emits one per reconnection attempt, up to ten a second).
    let reported = false;
    this.redis.on('error', (err: Error) => {
      if (reported) return;
      reported = true;
      options.onConnectionError?.(err.message);
    });
    this.redis.on('ready', () => {
      reported = false;
      // A fresh connection answers: let the renewal through the breaker to re-register the leases now.
      this.#failures = 0;
      void this.#loadScripts().then(() => this.renew());
    });
    const interval = options.redis.renewIntervalMs ?? Math.floor(this.#ttlMs / 3);
    this.#renewer = setInterval(() => void this.renew(), interval).unref();
  }

  /** Waits (at most `timeoutMs`) for the first connection, so a fresh replica does not start degraded. */
  async ready(timeoutMs = 2_000): Promise<boolean> {
    if (this.redis.status === 'ready') return true;
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.redis.off('ready', onReady);
        resolve(ok);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.redis.on('ready', onReady);
    });
  }

  health(): StoreHealth {
    const failClosed = this.#opts.attempts === 'fail-closed' || this.#opts.concurrent === 'fail-closed';
    return { degraded: this.#degradedNow, ok: !(this.#degradedNow && failClosed) };
  }

  #key(clientKey: string, kind: 'a' | 'c'): string {
    return `${this.#prefix}{${clientKey}}:${kind}`;
  }

  #localMax(max: number): number {
    return Math.max(1, Math.floor(max / this.#opts.expectedReplicas));
  }

  #setDegraded(degraded: boolean): void {
    if (degraded === this.#degradedNow) return;
    this.#degradedNow = degraded;
    this.#opts.onDegraded?.(degraded);
  }

  /** Runs one Redis request under the deadline and the breaker. */
  async #call<T>(run: () => Promise<T>, deadlineMs = this.#opts.redis.deadlineMs): Promise<T> {
    if (this.#closed) throw new StoreDown('closed');
    const now = Date.now();
    let probe = false;
    if (this.#failures >= this.#opts.redis.breakerThreshold) {
      if (now < this.#openUntil || this.#probing) {
        this.#opts.onError?.();
        throw new StoreDown('circuit open');
      }
      this.#probing = probe = true;
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = await Promise.race([
        run(),
        new Promise<never>((_, reject) => {
          // setImmediate: when our own event loop lagged past the deadline, a reply already read from
          // the socket is handled first (poll phase before check phase) instead of counting as a miss.
          timer = setTimeout(() => setImmediate(() => reject(new TimedOut(`no answer within ${deadlineMs} ms`))), deadlineMs);
        }),
      ]);
      this.#failures = 0;
      this.#setDegraded(false);
      return result;
    } catch (err) {
      this.#failures++;
      this.#opts.onError?.();
      if (this.#failures >= this.#opts.redis.breakerThreshold) {
        this.#openUntil = Date.now() + this.#opts.redis.breakerCooldownMs;
        this.#setDegraded(true);
      }
      throw err;
    } finally {
      clearTimeout(timer);
      if (probe) this.#probing = false;
    }
  }

  /** Loads the scripts once per connection (Redis may have restarted empty), so calls are one EVALSHA each. */
  async #loadScripts(): Promise<void> {
    const nodes: Redis[] = this.redis instanceof Cluster ? this.redis.nodes('master') : [this.redis];
    await Promise.all(
      nodes.map((node) => {
        const p = node.pipeline();
        for (const s of [ATTEMPT, ACQUIRE, RENEW]) p.script('LOAD', s.source);
        this.roundTrips++;
        return p.exec().catch(() => null);
      }),
    );
  }

  async #evalScript(s: LuaScript, key: string, args: Array<string | number>): Promise<unknown> {
    this.roundTrips++;
    try {
      return await this.redis.evalsha(s.sha, 1, key, ...args);
    } catch (err) {
      if (!String((err as Error).message).includes('NOSCRIPT')) throw err;
      // Redis restarted (or flushed its scripts): EVAL runs and caches it again.
      this.roundTrips++;
      return this.redis.eval(s.source, 1, key, ...args);
    }
  }

  #unavailable(option: string): GatewayError {
    return new GatewayError('store_unavailable', `the Redis limit store did not answer (${option} is fail-closed)`, {
      retryAfterMs: STORE_RETRY_AFTER_MS,
    });
  }

  async tryAttempt(key: string, max: number, windowMs: number, nowMs: number): Promise<AttemptResult> {
    const id = `${this.#replica}:${++this.#seq}`;
    let reply: [number, number];
    try {
      reply = (await this.#call(() => this.#evalScript(ATTEMPT, this.#key(key, 'a'), [max, windowMs, id]))) as [number, number];
    } catch {
      if (this.#opts.attempts === 'fail-closed') throw this.#unavailable('limits.attempts.onStoreError');
      const local = await this.#fallback.tryAttempt(key, this.#localMax(max), windowMs, nowMs);
      return local.ok ? { ok: true, id: LOCAL + local.id } : local;
    }
    return reply[0] === 1 ? { ok: true, id } : { ok: false, retryAfterMs: Math.max(0, Number(reply[1])) };
  }

  async releaseAttempt(key: string, id: string): Promise<void> {
    if (id.startsWith(LOCAL)) return this.#fallback.releaseAttempt(key, id.slice(LOCAL.length));
    try {
      await this.#call(() => (this.roundTrips++, this.redis.zrem(this.#key(key, 'a'), id)));
    } catch {
      // The attempt stays counted until it ages out: the client pays for our outage, nobody else.
    }
  }

  #hold(key: string, id: string): void {
    const ids = this.#leases.get(key);
    if (ids) ids.push(id);
    else this.#leases.set(key, [id]);
  }

  async tryAcquireSlot(key: string, max: number): Promise<boolean> {
    const id = `${this.#replica}:${++this.#seq}`;
    let taken: boolean;
    try {
      taken = (await this.#call(() => this.#evalScript(ACQUIRE, this.#key(key, 'c'), [max, this.#ttlMs, id]))) === 1;
    } catch (err) {
      // Local decision (fail-open): this replica's own live leases against its share of the limit;
      // they are registered in Redis by the next renewal once it answers again.
      if (this.#opts.concurrent === 'fail-open' && (this.#leases.get(key)?.length ?? 0) < this.#localMax(max)) {
        this.#hold(key, id);
        return true;
      }
      // A script that missed the deadline may still run: remove that lease when Redis answers again.
      if (err instanceof TimedOut) this.#orphans.push([key, id]);
      if (this.#opts.concurrent === 'fail-closed') throw this.#unavailable('limits.concurrent.onStoreError');
      return false;
    }
    if (taken) this.#hold(key, id);
    return taken;
  }

  async releaseSlot(key: string): Promise<void> {
    const ids = this.#leases.get(key);
    const id = ids?.pop();
    if (!ids || id === undefined) return;
    if (ids.length === 0) this.#leases.delete(key);
    try {
      await this.#call(() => (this.roundTrips++, this.redis.zrem(this.#key(key, 'c'), id)));
    } catch {
      this.#orphans.push([key, id]);
    }
  }

  /**
   * One pipeline: renew every live lease (re-adding those Redis lost) and remove orphans. Also runs
   * on every (re)connection, so counts are right again as soon as Redis is back.
   */
  renew(): Promise<void> {
    if (this.#renewing || this.#closed) return this.#renewing ?? Promise.resolve();
    this.#renewing = this.#renewOnce().finally(() => (this.#renewing = null));
    return this.#renewing;
  }

  async #renewOnce(): Promise<void> {
    if (this.#leases.size === 0 && this.#orphans.length === 0) {
      // Nothing to renew, but a degraded store must find out that Redis is back by itself: a
      // fail-closed replica is not ready, so no handshake would come to probe it.
      if (this.#degradedNow) await this.#call(() => (this.roundTrips++, this.redis.ping())).catch(() => {});
      return;
    }
    const orphans = this.#orphans;
    this.#orphans = [];
    if (this.redis instanceof Cluster) return this.#renewCluster(orphans);
    const redis = this.redis;
    const build = (load: boolean) => {
      const p = redis.pipeline();
      if (load) p.script('LOAD', RENEW.source);
      for (const [key, ids] of this.#leases) p.evalsha(RENEW.sha, 1, this.#key(key, 'c'), this.#ttlMs, ...ids);
      for (const [key, id] of orphans) p.zrem(this.#key(key, 'c'), id);
      return p;
    };
    // A pipeline of every lease may take longer than one handshake call: the interval is its deadline.
    const deadline = this.#opts.redis.renewIntervalMs ?? Math.floor(this.#ttlMs / 3);
    try {
      await this.#call(async () => {
        this.roundTrips++;
        let results = (await build(false).exec()) ?? [];
        if (results.some(([err]) => err && String(err.message).includes('NOSCRIPT'))) {
          this.roundTrips++;
          results = (await build(true).exec()) ?? [];
        }
        const failed = results.find(([err]) => err);
        if (failed) throw failed[0];
      }, deadline);
    } catch {
      this.#orphans.push(...orphans);
    }
  }

  /**
   * Cluster: a pipeline must stay in one slot, so the renewal is one call per client key, sent
   * together; auto-pipelining writes them once per node per event-loop turn.
   */
  async #renewCluster(orphans: Array<[string, string]>): Promise<void> {
    const deadline = this.#opts.redis.renewIntervalMs ?? Math.floor(this.#ttlMs / 3);
    const calls = [
      ...[...this.#leases].map(
        ([key, ids]) =>
          () =>
            this.#evalScript(RENEW, this.#key(key, 'c'), [this.#ttlMs, ...ids]),
      ),
      ...orphans.map(
        ([key, id]) =>
          () =>
            this.redis.zrem(this.#key(key, 'c'), id),
      ),
    ];
    try {
      await this.#call(async () => {
        await Promise.all(calls.map((c) => c()));
      }, deadline);
    } catch {
      this.#orphans.push(...orphans);
    }
  }

  size(): number {
    return this.#leases.size;
  }

  async close(): Promise<void> {
    clearInterval(this.#renewer);
    // Hand the leases back rather than leave them to expire: a restarted replica's clients get their slots at once.
    if (this.#leases.size && this.redis.status === 'ready') {
      const released = Promise.all([...this.#leases].map(([key, ids]) => this.redis.zrem(this.#key(key, 'c'), ...ids))).catch(() => null);
      await Promise.race([released, new Promise((r) => setTimeout(r, this.#opts.redis.deadlineMs * 4))]);
    }
    this.#closed = true;
    this.#leases.clear();
    await this.#fallback.close();
    this.redis.disconnect();
  }
}
