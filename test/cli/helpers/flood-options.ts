import { FLOOD_DEFAULTS, type FloodOptions } from '../../../cli/engine/flood.ts';
import { DEFAULT_CAPS } from '../../../cli/engine/target.ts';
import { DEFAULT_SATURATION_LIMITS } from '../../../cli/engine/saturation.ts';

/** Flood options for tests: short, small, with a tight close grace so a test never waits long. */
export function floodOptions(url: string, o: Partial<FloodOptions>): FloodOptions {
  return {
    ...FLOOD_DEFAULTS,
    drainMs: 500,
    closeGraceMs: 500,
    handshakeTimeoutMs: 2_000,
    url,
    durationSec: 1,
    msgRate: 0,
    payload: { sizeBytes: 64 },
    caps: DEFAULT_CAPS,
    // Tests share 2 cores with other test files: only the saturation tests judge the generator.
    saturation: { ...DEFAULT_SATURATION_LIMITS, maxEventLoopP99Ms: 10_000, maxSendLagP99Ms: 10_000, minSentRatio: 0 },
    ...o,
  };
}
