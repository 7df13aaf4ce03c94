import * as hdr from 'hdr-histogram-js';

/**
 * Latency histograms. Values are recorded in microseconds (integers, as HdrHistogram wants) and
 * reported in milliseconds. Up to one hour is trackable at 3 significant digits.
 */
export type Histogram = hdr.Histogram;

export function createHistogram(): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
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
