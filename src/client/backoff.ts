/**
 * Reconnect backoff policies as pure functions of the attempt number, the previous delay and a
 * random source, so their distributions can be tested without a clock. One implementation for the
 * CLI's `storm` and for wsguard/client (bundled for browsers: no Node imports here). The jitter variants are the
 * ones compared in the AWS Architecture Blog post "Exponential Backoff And Jitter" (2015).
 */
export type Jitter = 'none' | 'full' | 'equal' | 'decorrelated';

export type BackoffPolicy =
  { kind: 'immediate' } | { kind: 'fixed'; delayMs: number } | { kind: 'exponential'; baseMs: number; capMs: number; jitter: Jitter };

/** Exponential ceiling for `attempt` (1-based): min(cap, base · 2^(attempt-1)). */
function ceiling(p: { baseMs: number; capMs: number }, attempt: number): number {
  return Math.min(p.capMs, p.baseMs * 2 ** Math.min(attempt - 1, 52));
}

/**
 * Delay before reconnect attempt `attempt` (1 = the first reconnect). `prevDelayMs` feeds the
 * decorrelated variant (use the base for the first attempt); `rand` returns [0, 1).
 */
export function nextDelay(p: BackoffPolicy, attempt: number, prevDelayMs: number, rand: () => number = Math.random): number {
  switch (p.kind) {
    case 'immediate':
      return 0;
    case 'fixed':
      return p.delayMs;
    case 'exponential': {
      const v = ceiling(p, attempt);
      switch (p.jitter) {
        case 'none':
          return v;
        case 'full':
          return rand() * v;
        case 'equal':
          return v / 2 + rand() * (v / 2);
        case 'decorrelated': {
          const prev = Math.max(p.baseMs, prevDelayMs);
          return Math.min(p.capMs, p.baseMs + rand() * (prev * 3 - p.baseMs));
        }
      }
    }
  }
}

/** Inclusive bounds of nextDelay for the same inputs; tests and the storm report check against them. */
export function delayBounds(p: BackoffPolicy, attempt: number, prevDelayMs: number): [number, number] {
  switch (p.kind) {
    case 'immediate':
      return [0, 0];
    case 'fixed':
      return [p.delayMs, p.delayMs];
    case 'exponential': {
      const v = ceiling(p, attempt);
      switch (p.jitter) {
        case 'none':
          return [v, v];
        case 'full':
          return [0, v];
        case 'equal':
          return [v / 2, v];
        case 'decorrelated': {
          const prev = Math.max(p.baseMs, prevDelayMs);
          return [Math.min(p.capMs, p.baseMs), Math.min(p.capMs, prev * 3)];
        }
      }
    }
  }
}

/**
 * The delay actually waited: the policy's, raised to a server hint (Retry-After, or a
 * 4100–4199/1013 close's retry_ms) when the client honours hints. A hint is a floor, not a target,
 * so jitter still spreads clients that all got the same hint.
 */
export function withHint(policyDelayMs: number, hintMs: number | undefined, honour: boolean): number {
  return honour && hintMs !== undefined ? Math.max(policyDelayMs, hintMs) : policyDelayMs;
}
