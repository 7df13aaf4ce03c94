export interface WaitOptions {
  /** A bound for a hang, not a measurement: generous, since a loaded 2-core machine can stall a poll for a second. */
  timeoutMs?: number;
  intervalMs?: number;
  /** Named in the timeout error. */
  what?: string;
}

/** What a check returns once it holds: `cond && value` waits for cond and yields value. */
export type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>;

/**
 * Polls `check` until it returns a truthy value, and returns that value. A check that throws (an
 * `expect` inside it) counts as not yet; at the deadline the last error is rethrown, so a failing
 * assertion reports its own diff rather than a bare timeout.
 */
export async function waitFor<T>(check: () => T | Promise<T>, options: WaitOptions = {}): Promise<Truthy<T>> {
  const { timeoutMs = 10_000, intervalMs = 20, what = 'condition' } = options;
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    let last: unknown;
    let failed = false;
    try {
      const value = await check();
      if (value) return value as Truthy<T>;
      last = value;
    } catch (err) {
      failed = true;
      last = err;
    }
    if (performance.now() > deadline) {
      if (failed) throw last;
      throw new Error(`${what} not met within ${timeoutMs} ms (last value: ${String(last)})`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
