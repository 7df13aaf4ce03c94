/**
 * A token bucket as plain state plus a clock reading: no timers, no allocation per call, so it can
 * run on every message. Refill is computed lazily from the time since the last take.
 */
export interface Bucket {
  tokens: number;
  updatedMs: number;
}

export function createBucket(capacity: number, nowMs: number): Bucket {
  return { tokens: capacity, updatedMs: nowMs };
}

/**
 * Takes `cost` tokens if the bucket holds them. Returns 0 on success, otherwise the milliseconds
 * until enough tokens will have refilled (the bucket is left untouched but for the refill).
 */
export function take(bucket: Bucket, cost: number, capacity: number, refillPerMs: number, nowMs: number): number {
  const elapsed = nowMs - bucket.updatedMs;
  if (elapsed > 0) {
    bucket.tokens = Math.min(capacity, bucket.tokens + elapsed * refillPerMs);
    bucket.updatedMs = nowMs;
  }
  if (bucket.tokens >= cost) {
    bucket.tokens -= cost;
    return 0;
  }
  // The epsilon keeps float residue (0.999 + 0.001 ≠ 1) from adding a spurious millisecond.
  return Math.ceil((cost - bucket.tokens) / refillPerMs - 1e-9);
}
