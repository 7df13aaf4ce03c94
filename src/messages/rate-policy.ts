import type { Config } from '../config/schema.ts';
import { createBucket, take, type Bucket } from './token-bucket.ts';

type RateConfig = Config['messages']['rate'];

export type RateVerdict = 'pass' | 'drop' | 'close';

export interface RateState {
  messages: Bucket;
  bytes: Bucket | null;
  /** Last time a drop notice was sent, so that a flood gets at most one notice a second. */
  lastNoticeMs: number;
}

export function createRateState(config: RateConfig, nowMs: number): RateState {
  return {
    messages: createBucket(config.burst, nowMs),
    bytes: config.bytesPerSecond ? createBucket(config.bytesPerSecond, nowMs) : null,
    lastNoticeMs: -Infinity,
  };
}

/**
 * The per-connection message policy: a token bucket of `burst` refilled at `perMinute`, and an
 * optional byte bucket of one second's worth. The verdict for a violation is the configured action;
 * in dry-run the caller counts the violation and passes the message anyway.
 */
export function checkRate(state: RateState, config: RateConfig, byteLength: number, nowMs: number): RateVerdict {
  const waitMs = take(state.messages, 1, config.burst, config.perMinute / 60_000, nowMs);
  if (waitMs === 0 && state.bytes && config.bytesPerSecond) {
    // A message larger than a whole second's allowance can never pass; it is a violation, not a wait.
    const cost = Math.min(byteLength, config.bytesPerSecond + 1);
    if (take(state.bytes, cost, config.bytesPerSecond, config.bytesPerSecond / 1000, nowMs) !== 0) return config.action;
  }
  return waitMs === 0 ? 'pass' : config.action;
}
