import * as hdr from 'hdr-histogram-js';

/**
 * Latency histograms. Values are recorded in microseconds (integers, as HdrHistogram wants) and
 * reported in milliseconds. Up to one hour is trackable at 3 significant digits.
 */
export type Histogram = hdr.Histogram;

export function createHistogram(): Histogram {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
  fastIndex(h);
  return h;
}

interface IndexFields {
  unitMagnitude: number;
  subBucketHalfCountMagnitude: number;
  subBucketHalfCount: number;
  countsArrayIndex(value: number): number;
}

/**
 * The flood records four values per echoed message, and hdr-histogram-js finds a value's slot with
 * Math.log2, Math.pow and a division: 19% of the generator's CPU at 340k msg/s (node --cpu-prof).
 * For integers below 2^32 the same slot comes from clz32 and shifts (test/cli/engine/histogram-index.test.ts
 * holds the two equal); larger values keep the library's path.
 */
function fastIndex(h: Histogram): void {
  const f = h as unknown as IndexFields;
  const slow = f.countsArrayIndex.bind(f);
  const unit = f.unitMagnitude;
  const halfMagnitude = f.subBucketHalfCountMagnitude;
  const half = f.subBucketHalfCount;
  f.countsArrayIndex = (value: number): number => {
    if (!(value >= 1 && value < 0x1_0000_0000) || value !== Math.floor(value)) return slow(value);
    const bucket = Math.max(31 - Math.clz32(value) - halfMagnitude - unit, 0);
    return (bucket + 1) * (1 << halfMagnitude) + (value >>> (bucket + unit)) - half;
  };
}

export function recordMs(h: Histogram, ms: number): void {
  h.recordValue(Math.max(1, Math.round(ms * 1000)));
}

export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  /** HdrHistogram compressed base64, so shards and workers can be merged exactly. */
  hdr: string;
}

export function summarize(h: Histogram): LatencySummary {
  const ms = (us: number): number => Math.round(us) / 1000;
  if (h.totalCount === 0)
    return { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, hdr: hdr.encodeIntoCompressedBase64(h) };
  return {
    count: h.totalCount,
    min: ms(h.minNonZeroValue),
    mean: ms(h.mean),
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
    hdr: hdr.encodeIntoCompressedBase64(h),
  };
}

/** Merges encoded summaries (shards, workers) into one exact summary. */
export function mergeSummaries(parts: LatencySummary[]): LatencySummary {
  const h = createHistogram();
  for (const p of parts) if (p.count > 0) h.add(hdr.decodeFromCompressedBase64(p.hdr));
  return summarize(h);
}

export function decodeSummary(s: LatencySummary): Histogram {
  return hdr.decodeFromCompressedBase64(s.hdr);
}
