import { fmtRate, generatorBound, type Context, type GenTaskResult } from './base.ts';

export interface RateOutcome {
  sent: number;
  received: number;
  /** Worst generator's percentile: conservative, as percentiles of separate histograms cannot be merged exactly. */
  p50: number;
  p99: number;
  p999: number;
  closed: number;
  floodSent: number;
  floodReceived: number;
  floodClosed: number;
  generatorBound: boolean;
}

export interface RateJob {
  url: string;
  headers: Record<string, string>;
  connections: number;
  bytes: number;
  rate: number;
  seconds: number;
  floodConnections?: number;
  floodRate?: number;
  /** The generators to use (indices into the pool); all by default. */
  generators?: number[];
}

/** The bar the admitted traffic must clear (the targets): ≥ 99% of messages back, p99 under this. */
export const P99_BAR_MS = 10;

export function meetsBar(r: RateOutcome): boolean {
  return r.sent > 0 && r.received / r.sent >= 0.99 && r.p99 < P99_BAR_MS;
}

/** Splits a paced open-loop job over the generators and merges what they saw. */
export async function driveRate(ctx: Context, job: RateJob): Promise<RateOutcome> {
  const { generators, ...task } = job;
  const used = generators ?? Array.from({ length: ctx.gens.size }, (_, i) => i);
  const n = used.length;
  const share = (x: number, k: number) => Math.floor(x / n) + (k < x % n ? 1 : 0);
  const results = await ctx.gens.run((i) => {
    const k = used.indexOf(i);
    if (k < 0) return null;
    return {
      kind: 'rate',
      ...task,
      connections: Math.max(1, share(job.connections, k)),
      rate: job.rate / n,
      floodConnections: job.floodConnections ? Math.max(1, share(job.floodConnections, k)) : 0,
      floodRate: (job.floodRate ?? 0) / n,
      warmupMs: ctx.quick ? 300 : 1000,
    };
  });
  const sum = (k: string) => results.reduce((a, r) => a + (r[k] as number), 0);
  const max = (k: string) => Math.max(...results.map((r) => r[k] as number));
  return {
    sent: sum('sent'),
    received: sum('received'),
    p50: max('p50'),
    p99: max('p99'),
    p999: max('p999'),
    closed: sum('closed'),
    floodSent: sum('floodSent'),
    floodReceived: sum('floodReceived'),
    floodClosed: sum('floodClosed'),
    generatorBound: generatorBound(results),
  };
}

export function upgradeRate(results: GenTaskResult[], status = '101'): number {
  const wall = Math.max(...results.map((r) => r.wallMs)) / 1000;
  return results.reduce((a, r) => a + ((r.statuses as Record<string, number>)[status] ?? 0), 0) / wall;
}

export function statusSummary(results: GenTaskResult[]): string {
  const all: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.statuses as Record<string, number>)) all[k] = (all[k] ?? 0) + v;
  return Object.entries(all)
    .map(([k, v]) => `${k}×${v}`)
    .join(' ');
}

export const authHeaders = (ctx: Context, token?: string): Record<string, string> => ({
  origin: ctx.origin,
  ...(token ? { authorization: `Bearer ${token}` } : {}),
});

export { fmtRate };
