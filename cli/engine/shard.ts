import type { FloodOptions } from './flood.ts';

/**
 * Splits a run into share `index` (0-based) of `count`, for worker threads and `--shard i/n` on
 * several machines. Connection counts and rates are divided (remainders go to the first shares) and
 * each share gets every count-th virtual user (interleaved, so nested splits stay disjoint), so minted tokens never collide.
 */
export function splitShare<
  T extends Pick<
    FloodOptions,
    'connections' | 'arrivalRate' | 'stages' | 'connectRate' | 'userOffset' | 'userStride' | 'caps' | 'sourceIps'
  >,
>(o: T, index: number, count: number): T {
  const part = (n: number): number => Math.floor(n / count) + (index < n % count ? 1 : 0);
  const frac = (n: number): number => n / count;
  return {
    ...o,
    connections: o.connections === undefined ? undefined : part(o.connections),
    arrivalRate: o.arrivalRate === undefined ? undefined : frac(o.arrivalRate),
    stages: o.stages?.map((s) => ({ ...s, target: part(s.target) })),
    connectRate: o.connectRate === undefined ? undefined : frac(o.connectRate),
    userOffset: (o.userOffset ?? 0) + index * (o.userStride ?? 1),
    userStride: (o.userStride ?? 1) * count,
    // Rotated so shares do not all start on the same source address.
    sourceIps: o.sourceIps
      ? [...o.sourceIps.slice(index % o.sourceIps.length), ...o.sourceIps.slice(0, index % o.sourceIps.length)]
      : undefined,
  };
}
