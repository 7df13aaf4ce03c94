import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import { isoSeconds } from './live-stats.ts';

/**
 * Cluster-wide monitoring figures with limits.store=redis (docs/monitoring-api.md, "Across replicas").
 *
 * Each replica writes its own `active_connections` and `connections_today` every `intervalMs` to one
 * key with a TTL of `ttlMs` (3 × the interval: one lost report does not drop a live replica), and
 * adds the key's name to an index set. A reader sums the reports whose keys are still alive; a
 * replica killed without a chance to say goodbye drops out when its key expires, and a replica that
 * stops cleanly deletes its key at once. All keys share the `{monitor}` hash tag, so on a Redis
 * Cluster the index and the reports live in one slot and one MGET reads them all. Client keys are
 * IPs or IPv6 prefixes, so the tag cannot meet a limit key.
 *
 * Redis trouble never breaks the API: every call has a deadline, and a failed read answers
 * `{ available: false }` so the API falls back to this replica's own figures.
 */
export interface LocalFigures {
  active_connections: number;
  connections_today: number;
}

export interface ReplicaReport extends LocalFigures {
  instance: string;
  /** ISO-8601 UTC, whole seconds: when the replica last published (for this replica: now). */
  reported_at: string;
}

export type ClusterView = ({ available: true; replicas: ReplicaReport[] } & LocalFigures) | { available: false; error: string };

export interface ClusterStatsOptions {
  redis: Redis | Cluster;
  /** limits.redis.keyPrefix */
  keyPrefix: string;
  /** telemetry's resolveInstanceId: the replica's name in the list. */
  instance: string;
  local: () => LocalFigures;
  intervalMs?: number;
  /** Deadline of each Redis call; a monitoring read is not on the handshake path, so it may wait longer than limits.redis.deadlineMs. */
  deadlineMs?: number;
  now?: () => number;
  logger?: Logger;
}

export const CLUSTER_REPORT_INTERVAL_MS = 2_000;
/** A report outlives three intervals: one lost report does not drop a live replica. */
export const CLUSTER_REPORT_TTL_FACTOR = 3;
const DEFAULT_DEADLINE_MS = 500;

interface StoredReport extends LocalFigures {
  /** ms since the epoch, the publishing replica's clock */
  t: number;
}

function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer from Redis within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function isFigure(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export class ClusterStats {
  readonly #opts: Required<Omit<ClusterStatsOptions, 'logger'>> & { logger?: Logger };
  readonly #index: string;
  readonly #own: string;
  readonly #ttlMs: number;
  readonly #timer: NodeJS.Timeout;
  #failing = false;
  #stopped = false;

  constructor(opts: ClusterStatsOptions) {
    this.#opts = { intervalMs: CLUSTER_REPORT_INTERVAL_MS, deadlineMs: DEFAULT_DEADLINE_MS, now: Date.now, ...opts };
    this.#index = `${opts.keyPrefix}{monitor}:replicas`;
    this.#own = this.#reportKey(opts.instance);
    this.#ttlMs = this.#opts.intervalMs * CLUSTER_REPORT_TTL_FACTOR;
    this.#timer = setInterval(() => void this.publish(), this.#opts.intervalMs).unref();
    void this.publish();
  }

  #reportKey(instance: string): string {
    return `${this.#opts.keyPrefix}{monitor}:r:${instance}`;
  }

  /** Writes this replica's figures; failures are logged once per outage and otherwise ignored. */
  async publish(): Promise<void> {
    if (this.#stopped) return;
    const report: StoredReport = { ...this.#opts.local(), t: this.#opts.now() };
    try {
      await withDeadline(
        this.#opts.redis.multi().set(this.#own, JSON.stringify(report), 'PX', this.#ttlMs).sadd(this.#index, this.#opts.instance).exec(),
        this.#opts.deadlineMs,
      );
      if (this.#failing) this.#opts.logger?.info({ event: 'cluster_stats_recovered' }, 'cluster monitoring reports reach Redis again');
      this.#failing = false;
    } catch (err) {
      if (!this.#failing) {
        this.#opts.logger?.warn(
          { event: 'cluster_stats_publish_failed', err: (err as Error).message },
          'cluster monitoring report not written to Redis',
        );
      }
      this.#failing = true;
    }
  }

  /** The live replicas' reports and their sums; this replica's entry is its current local figures. */
  async view(): Promise<ClusterView> {
    const now = this.#opts.now();
    const local = this.#opts.local();
    try {
      // One deadline for both reads, so that a hanging Redis delays an answer by deadlineMs at most.
      const read = async () => {
        const instances = (await this.#opts.redis.smembers(this.#index)).sort().filter((i) => i !== this.#opts.instance);
        return {
          others: instances,
          values: instances.length ? await this.#opts.redis.mget(...instances.map((i) => this.#reportKey(i))) : [],
        };
      };
      const { others, values } = await withDeadline(read(), this.#opts.deadlineMs);
      const replicas: ReplicaReport[] = [{ instance: this.#opts.instance, ...local, reported_at: isoSeconds(now) }];
      const gone: string[] = [];
      others.forEach((instance, n) => {
        const raw = values[n];
        if (raw == null) {
          gone.push(instance);
          return;
        }
        let r: Partial<StoredReport>;
        try {
          r = JSON.parse(raw) as Partial<StoredReport>;
        } catch {
          return;
        }
        if (!isFigure(r.active_connections) || !isFigure(r.connections_today) || !isFigure(r.t)) return;
        replicas.push({
          instance,
          active_connections: r.active_connections,
          connections_today: r.connections_today,
          reported_at: isoSeconds(r.t),
        });
      });
      // Expired reports leave their name in the index; tidy up in passing (a replica that comes back re-adds itself).
      if (gone.length) void withDeadline(this.#opts.redis.srem(this.#index, ...gone), this.#opts.deadlineMs).catch(() => {});
      replicas.sort((a, b) => a.instance.localeCompare(b.instance));
      return {
        available: true,
        active_connections: replicas.reduce((s, r) => s + r.active_connections, 0),
        connections_today: replicas.reduce((s, r) => s + r.connections_today, 0),
        replicas,
      };
    } catch (err) {
      return { available: false, error: `limit store unavailable: ${(err as Error).message}` };
    }
  }

  /** Stops publishing and removes this replica's report, so that it leaves the sums at once. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    if (this.#opts.redis.status !== 'ready') return;
    await withDeadline(this.#opts.redis.multi().del(this.#own).srem(this.#index, this.#opts.instance).exec(), this.#opts.deadlineMs).catch(
      () => {},
    );
  }
}
