/**
 * Shared state behind the per-IP admission limits. The memory store serves one replica; a Redis
 * store lets replicas share the same budget. Every method may reject (a store outage); the
 * admission pipeline turns that into `store_unavailable` or lets the connection through, by policy.
 */
export type AttemptResult = { ok: true; id: string } | { ok: false; retryAfterMs: number };

export interface LimitStore {
  /** Records a connection attempt in a sliding window, unless `max` attempts are already in it. */
  tryAttempt(key: string, max: number, windowMs: number, nowMs: number): Promise<AttemptResult>;
  /** Forgets one recorded attempt (the handshake failed for a reason that is not the client's). */
  releaseAttempt(key: string, id: string): Promise<void>;
  /** Takes one of `max` concurrent-connection slots; false when all are taken. */
  tryAcquireSlot(key: string, max: number): Promise<boolean>;
  releaseSlot(key: string): Promise<void>;
  /** Number of client keys with any state (for the tracked-clients gauge). */
  size(): number;
  close(): Promise<void>;
}
