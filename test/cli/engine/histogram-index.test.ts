import * as hdr from 'hdr-histogram-js';
import { describe, expect, it } from 'vitest';
import { createHistogram } from '../../../cli/engine/histogram.ts';

describe('createHistogram fast slot index', () => {
  it('puts every value in the slot the library would, across all bucket edges', () => {
    const fast = createHistogram() as unknown as { countsArrayIndex(v: number): number };
    const lib = hdr.build({
      lowestDiscernibleValue: 1,
      highestTrackableValue: 3_600_000_000,
      numberOfSignificantValueDigits: 3,
    }) as unknown as {
      countsArrayIndex(v: number): number;
    };
    const values: number[] = [];
    for (let v = 1; v < 5_000; v++) values.push(v);
    for (let k = 1; k < 32; k++) for (const d of [-2, -1, 0, 1, 2]) values.push(2 ** k + d);
    let x = 12345;
    for (let i = 0; i < 20_000; i++) {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      values.push(1 + (x % 3_599_999_999));
    }
    for (const v of values) if (v >= 1) expect(fast.countsArrayIndex(v), `value ${v}`).toBe(lib.countsArrayIndex(v));
  });

  it('records and reports the same percentiles as the library', () => {
    const fast = createHistogram();
    const lib = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
    for (let v = 1; v < 2_000_000; v += 997) {
      fast.recordValue(v);
      lib.recordValue(v);
    }
    for (const p of [50, 90, 99, 99.9]) expect(fast.getValueAtPercentile(p)).toBe(lib.getValueAtPercentile(p));
    expect(hdr.encodeIntoCompressedBase64(fast)).toBe(hdr.encodeIntoCompressedBase64(lib));
  });
});
