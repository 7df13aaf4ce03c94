import { fmtRate, generatorBound, treeCpuMs, type Context, type Figure, type GenTaskResult, type Running, type Scenario } from './base.ts';
import { authHeaders, driveRate, meetsBar, P99_BAR_MS, statusSummary, upgradeRate, type RateOutcome } from './drive.ts';
import { highestPassing } from './search.ts';

/** Attempts one address may make per window in this row: spent within the first second of the flood (--quick: 50). */
export const REJECTION_ATTEMPTS = 1000;
const attempts = (quick: boolean) => (quick ? 50 : REJECTION_ATTEMPTS);

interface FloodOutcome {
  /** The flooding generator's result. */
  attempts: GenTaskResult[];
  traffic: RateOutcome;
  rate429: number;
}

/**
 * One flood next to the admitted traffic. The flood and the measured traffic run in different
 * generator processes: in one process the flood's dialling delayed the traffic's own timers, and its
 * p99 (63 ms in the first full run) measured the generator as much as the gateway.
 */
async function runFlood(running: Running, ctx: Context, seconds: number, rate?: number): Promise<FloodOutcome> {
  const cpu0 = running.pid ? treeCpuMs(running.pid) : 0;
  const [attempts, traffic] = await Promise.all([
    ctx.gens.run((i) =>
      i !== 0
        ? null
        : {
            kind: 'upgrades',
            url: `${running.url}/bench`,
            headers: authHeaders(ctx, ctx.tokens.hs256),
            seconds,
            concurrency: ctx.quick ? 8 : 32,
            ...(rate ? { rate } : {}),
            fixedSource: `127.0.${i + 1}.251`,
          },
    ),
    driveRate(ctx, {
      url: `${running.url}/bench`,
      headers: authHeaders(ctx, ctx.tokens.hs256),
      connections: 50,
      bytes: 64,
      rate: ctx.quick ? 1000 : 5000,
      seconds,
      generators: ctx.gens.size > 1 ? Array.from({ length: ctx.gens.size - 1 }, (_, i) => i + 1) : [0],
    }),
  ]);
  const proxyMs = running.pid ? treeCpuMs(running.pid) - cpu0 : 0;
  const rate429 = upgradeRate(attempts, '429');
  const made = attempts.reduce((a, r) => a + Object.values(r.statuses as Record<string, number>).reduce((x, y) => x + y, 0), 0);
  const cpu = attempts.map((r) => `${Math.round((100 * r.cpuMs) / r.wallMs)}%`).join('+');
  // Per attempt, the flooding generator's CPU next to the proxy's (which also carries the admitted traffic).
  const perAttempt = (ms: number) => (made ? `${Math.round((1000 * ms) / made)} µs` : 'n/a');
  ctx.log(
    `  flood ${rate ? `paced at ${fmtRate(rate)}` : 'at full speed'}: ${statusSummary(attempts)} (${fmtRate(rate429)} 429s), ` +
      `flooding generator CPU ${cpu} (${perAttempt(attempts.reduce((a, r) => a + r.cpuMs, 0))} per attempt; ` +
      `the proxy ${perAttempt(proxyMs)} per attempt, admitted traffic included); ` +
      `admitted ${traffic.received}/${traffic.sent} back, p99 ${traffic.p99.toFixed(2)} ms`,
  );
  return { attempts, traffic, rate429 };
}

/**
 * The highest paced flood the admitted traffic stays under its bar beside (highestPassing, search.ts:
 * from 2k attempts/s; a flood no longer served at the offered rate has saturated the gateway, and the
 * full-speed row applies). The figure is the 429s/s measured at the best passing step. Each step is a
 * whole flood of its own from the same address, already over its limit from the full-speed row, so
 * every attempt is a 429.
 */
async function heldRate(running: Running, ctx: Context): Promise<Figure> {
  const seconds = ctx.quick ? 1 : 5;
  let bound = false;
  let best: FloodOutcome | null = null;
  const step = async (rate: number) => {
    const o = await runFlood(running, ctx, seconds, rate);
    bound ||= o.traffic.generatorBound || generatorBound(o.attempts);
    const ok = meetsBar(o.traffic);
    if (ok && (!best || o.rate429 > best.rate429)) best = o;
    return { ok, saturated: o.rate429 < 0.9 * rate };
  };
  await highestPassing(ctx.quick ? 500 : 2000, step, {
    doublings: ctx.quick ? 1 : 5,
    halvings: ctx.quick ? 0 : 2,
    bisections: ctx.quick ? 0 : 2,
  });
  const held = best as FloodOutcome | null;
  return held
    ? {
        text: `${fmtRate(held.rate429)}, admitted p99 ${held.traffic.p99.toFixed(2)} ms${ctx.quick ? ' (quick: lower bound)' : ''}`,
        value: held.rate429,
        generatorBound: bound,
      }
    : { text: `no paced flood held p99 < ${P99_BAR_MS} ms`, value: 0, generatorBound: bound };
}

/**
 * Rejection: one address floods upgrades far over its attempt limit (limits.attempts.max=1000 in
 * this row) and is answered 429; meanwhile 50 admitted connections from other addresses carry
 * 5k msg/s and their p99 must stay under 10 ms. Only a system with per-IP limits applies.
 * Two rows: the flood at full speed (32 attempts in flight, as fast as they are answered: the gateway
 * saturates, and the admitted p99 is what a core shared with that flood gives), and the highest
 * paced flood at which the admitted traffic still keeps its p99 under 10 ms (the rate an operator can
 * size for).
 */
export const rejection: Scenario = {
  rows: [
    `429s/s to one flooding address (attempts.max=${REJECTION_ATTEMPTS}); admitted p99`,
    `429s/s held with admitted p99 < ${P99_BAR_MS} ms (flood paced)`,
  ],
  appliesTo: (s) => s.enforcesLimits,
  wsguardSettings: (ctx) => [`limits.attempts.max=${attempts(ctx.quick)}`],
  async run(_system, running, ctx) {
    const full = await runFlood(running, ctx, ctx.quick ? 1 : 5);
    return [
      {
        text: `${fmtRate(full.rate429)}, admitted p99 ${full.traffic.p99.toFixed(2)} ms`,
        value: full.rate429 > 0 ? full.rate429 : null,
        generatorBound: full.traffic.generatorBound || generatorBound(full.attempts),
      },
      await heldRate(running, ctx),
    ];
  },
};
