import { describe, expect, it } from 'vitest';
import { newKey } from '../../../src/relay/lean/handshake.ts';
import { csprngMask } from '../../../src/relay/lean/mask.ts';
import { takeRandom } from '../../../src/relay/lean/random-pool.ts';

describe('the shared CSPRNG block', () => {
  it('hands out Sec-WebSocket-Keys of 16 bytes that never repeat, across refills of the block', () => {
    // 2,000 keys are 32,000 bytes: the 8 KiB block is refilled three times on the way.
    const keys = Array.from({ length: 2000 }, () => newKey());
    for (const k of keys) expect(Buffer.from(k, 'base64')).toHaveLength(16);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('never hands out the same bytes twice to masks and keys drawn in turn', () => {
    // Each piece starts where the last ended, or at 0 of a refilled block when the last did not fit.
    let next = -1;
    let refills = 0;
    for (let i = 0; i < 3000; i++) {
      const n = i % 3 === 0 ? 16 : 4;
      const [block, at] = takeRandom(n);
      if (next >= 0 && at !== next) {
        expect([at, next + n > block.length]).toEqual([0, true]);
        refills++;
      }
      next = at + n;
    }
    // 1,000 keys and 2,000 masks are 24,000 bytes: two or three 8 KiB blocks, depending on where the block stood.
    expect(refills).toBeGreaterThanOrEqual(2);
    expect(refills).toBeLessThanOrEqual(3);
    const mask = Buffer.alloc(8);
    csprngMask(mask, 2);
    expect(mask.subarray(0, 2)).toEqual(Buffer.alloc(2));
    expect(mask.subarray(6)).toEqual(Buffer.alloc(2));
  });
});
