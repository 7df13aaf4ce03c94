/**
 * Bounded heavy-hitter counting (Metwally et al., "Efficient Computation of Frequent and Top-k
 * Elements in Data Streams", 2005: the space-saving algorithm). Offending client keys (IPs) live
 * only here, in process memory, behind the admin API: never in a metric label.
 *
 * With capacity k, any key seen more than N/k times of N offences is guaranteed to be present, and
 * each reported count overestimates the true count by at most its `error`.
 */
export interface HeavyHitter {
  key: string;
  count: number;
  /** Upper bound of the overestimate: the true count is within [count - error, count]. */
  error: number;
}

export class SpaceSaving {
  readonly capacity: number;
  #entries = new Map<string, { count: number; error: number }>();
  #total = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer');
    this.capacity = capacity;
  }

  /** Offences counted since creation (or the last clear). */
  get total(): number {
    return this.#total;
  }

  add(key: string, weight = 1): void {
    this.#total += weight;
    const hit = this.#entries.get(key);
    if (hit) {
      hit.count += weight;
      return;
    }
    if (this.#entries.size < this.capacity) {
      this.#entries.set(key, { count: weight, error: 0 });
      return;
    }
    // Evict the minimum; the newcomer inherits its count as error (space-saving's replacement step).
    // O(k) scan: offences are rare next to messages and k is small (default 100).
    let minKey = '';
    let min = Infinity;
    for (const [k, v] of this.#entries) {
      if (v.count < min) {
        min = v.count;
        minKey = k;
      }
    }
    this.#entries.delete(minKey);
    this.#entries.set(key, { count: min + weight, error: min });
  }

  /** The `n` largest counts, largest first. */
  top(n = this.capacity): HeavyHitter[] {
    return [...this.#entries]
      .map(([key, v]) => ({ key, count: v.count, error: v.error }))
      .sort((a, b) => b.count - a.count || a.key.localeCompare(b.key))
      .slice(0, n);
  }

  clear(): void {
    this.#entries.clear();
    this.#total = 0;
  }
}
