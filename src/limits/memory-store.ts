import { GatewayError } from '../errors.ts';
import type { AttemptResult, LimitStore } from './limit-store.ts';

/** How often keys whose attempts all aged out are swept; also the Retry-After of a refusal at the cap. */
const SWEEP_INTERVAL_MS = 60_000;
/** First capacity of a key's attempt log (attempts, not numbers); it doubles up to `max`. */
const INITIAL_CAPACITY = 2;

/** A double (non-integer) fill makes V8 allocate a packed-double array at once: 8 bytes a number, no later transition. */
function doubles(n: number): number[] {
  return new Array<number>(n).fill(0.5);
}

/**
 * One client key's state: a slot counter and a sliding log of attempts kept as a ring of [at, id]
 * pairs in one plain number array, oldest first from `head`. Measured with bench/limit-store-memory.ts
 * (100k keys, heap bytes per key): an array of {at, id: string} objects cost 341 B at one attempt and
 * 1061 B at ten; this ring 173 B and 301 B. A Float64Array ring cost more at one attempt (325 B): each
 * typed array carries its own ArrayBuffer, and past 64 bytes an off-heap backing store.
 */
class Entry {
  slots = 0;
  head = 0;
  count = 0;
  log = doubles(INITIAL_CAPACITY * 2);

  get #capacity(): number {
    return this.log.length / 2;
  }

  #index(i: number): number {
    return ((this.head + i) % this.#capacity) * 2;
  }

  at(i: number): number {
    return this.log[this.#index(i)]!;
  }

  /** Drops the attempts at or before `cutoffMs` (the log is in time order). */
  expire(cutoffMs: number): void {
    while (this.count > 0 && this.log[this.head * 2]! <= cutoffMs) {
      this.head = (this.head + 1) % this.#capacity;
      this.count--;
    }
  }

  push(at: number, id: number, max: number): void {
    if (this.count === this.#capacity) this.#grow(Math.min(Math.max(max, this.count + 1), this.#capacity * 2));
    const j = this.#index(this.count);
    this.log[j] = at;
    this.log[j + 1] = id;
    this.count++;
  }

  remove(id: number): void {
    let i = 0;
    while (i < this.count && this.log[this.#index(i) + 1] !== id) i++;
    if (i === this.count) return;
    for (; i < this.count - 1; i++) {
      const to = this.#index(i);
      const from = this.#index(i + 1);
      this.log[to] = this.log[from]!;
      this.log[to + 1] = this.log[from + 1]!;
    }
    this.count--;
  }

  #grow(capacity: number): void {
    const log = doubles(capacity * 2);
    for (let i = 0; i < this.count; i++) {
      const j = this.#index(i);
      log[i * 2] = this.log[j]!;
      log[i * 2 + 1] = this.log[j + 1]!;
    }
    this.log = log;
    this.head = 0;
  }
}

export interface MemoryLimitStoreOptions {
  /** limits.maxTrackedKeys: a key not yet tracked is refused (503 store_full) once this many are. */
  maxTrackedKeys: number;
}

/**
 * In-process limit state: a sliding log per client key (at most `max` attempts) and a slot counter.
 * Keys with nothing left are deleted, so the map holds only clients that are connected or recently
 * attempted, and never more than `maxTrackedKeys` of them. At the cap, tracked keys keep working and
 * a new key is refused: nothing is evicted, since evicting a key would reset that client's limits
 * and let a flood of fresh keys wipe an attacker's record.
 */
export class MemoryLimitStore implements LimitStore {
  readonly #entries = new Map<string, Entry>();
  readonly #maxKeys: number;
  #nextId = 0;
  #windowMs = 0;
  /** Keys whose attempts all aged out and that hold no slot are swept, so idle clients cost nothing. */
  readonly #sweeper = setInterval(() => this.sweep(Date.now()), SWEEP_INTERVAL_MS).unref();

  constructor(options: MemoryLimitStoreOptions) {
    this.#maxKeys = options.maxTrackedKeys;
  }

  /**
   * Measured at 100k keys (bench/limit-store-memory.ts, 2-core VM): 10–30 ms when every key stays,
   * 50–110 ms when every key has aged out and is deleted. Once a minute, so not worth slicing.
   */
  sweep(nowMs: number): void {
    const cutoff = nowMs - this.#windowMs;
    for (const [key, e] of this.#entries) {
      e.expire(cutoff);
      this.#prune(key, e);
    }
  }

  #entry(key: string): Entry {
    let e = this.#entries.get(key);
    if (!e) {
      if (this.#entries.size >= this.#maxKeys) {
        throw new GatewayError('store_full', `the limit store tracks limits.maxTrackedKeys (${this.#maxKeys}) clients`, {
          retryAfterMs: SWEEP_INTERVAL_MS,
        });
      }
      e = new Entry();
      this.#entries.set(key, e);
    }
    return e;
  }

  #prune(key: string, e: Entry): void {
    if (e.count === 0 && e.slots === 0) this.#entries.delete(key);
  }

  tryAttempt(key: string, max: number, windowMs: number, nowMs: number): AttemptResult {
    this.#windowMs = Math.max(this.#windowMs, windowMs);
    const e = this.#entry(key);
    e.expire(nowMs - windowMs);
    if (e.count >= max) {
      return { ok: false, retryAfterMs: e.at(e.count - max) + windowMs - nowMs };
    }
    const id = ++this.#nextId;
    e.push(nowMs, id, max);
    return { ok: true, id: String(id) };
  }

  async releaseAttempt(key: string, id: string): Promise<void> {
    const e = this.#entries.get(key);
    if (!e) return;
    e.remove(Number(id));
    this.#prune(key, e);
  }

  tryAcquireSlot(key: string, max: number): boolean {
    const e = this.#entry(key);
    if (e.slots >= max) {
      this.#prune(key, e);
      return false;
    }
    e.slots++;
    return true;
  }

  async releaseSlot(key: string): Promise<void> {
    const e = this.#entries.get(key);
    if (!e) return;
    e.slots = Math.max(0, e.slots - 1);
    this.#prune(key, e);
  }

  size(): number {
    return this.#entries.size;
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#entries.clear();
  }
}
