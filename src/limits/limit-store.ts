/**
 * Shared state behind the per-IP admission limits. The memory store serves one replica; a Redis
 * store lets replicas share the same budget. Every method may reject (a store outage); the
 * admission pipeline turns that into `store_unavailable` or lets the connection through, by policy.
 */
/** Retry-After of a 503 store_unavailable: long enough for a breaker probe or a reconnect. */
export const STORE_RETRY_AFTER_MS = 5_000;

export interface StoreHealth {
  /** The store cannot answer and the limits run on their failure policies (wsguard_limit_store_degraded). */
  degraded: boolean;
  /** Handshakes can still be admitted: not degraded, or every limit fails open. */
  ok: boolean;
}

export type AttemptResult = { ok: true; id: string } | { ok: false; retryAfterMs: number };

export interface LimitStore {
  /**
   * Records a connection attempt in a sliding window, unless `max` attempts are already in it. A
   * store that answers without I/O (memory) returns the result itself, so admission stays synchronous.
   */
  tryAttempt(key: string, max: number, windowMs: number, nowMs: number): AttemptResult | Promise<AttemptResult>;
  /** Forgets one recorded attempt (the handshake failed for a reason that is not the client's). */
  releaseAttempt(key: string, id: string): Promise<void>;
  /** Takes one of `max` concurrent-connection slots; false when all are taken. Synchronous like tryAttempt where it can be. */
  tryAcquireSlot(key: string, max: number): boolean | Promise<boolean>;
  releaseSlot(key: string): Promise<void>;
  /** Number of client keys with any state (for the tracked-clients gauge). */
  size(): number;
  /** For /readyz and the degraded gauge; a store without it (memory) is always healthy. */
  health?(): StoreHealth;
  close(): Promise<void>;
}
