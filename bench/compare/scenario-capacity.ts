import { fmtRate, type Figure, type Scenario } from './base.ts';
import { authHeaders, driveRate, meetsBar, P99_BAR_MS } from './drive.ts';
import { highestPassing } from './search.ts';

/**
 * Relay capacity: the highest offered rate at which ≥ 99% of messages come back with p99 < 10 ms.
 * The rate search is highestPassing (search.ts): doubling from a start rate, halving while it fails,
 * then a short bisection. 50 connections.
 */
export const capacity: Scenario = {
  rows: [`relay capacity, 64 B (msg/s: ≥99% back, p99 < ${P99_BAR_MS} ms)`, 'relay capacity, 4 KiB'],
  async run(_system, running, ctx) {
    const figures: Figure[] = [];
    for (const bytes of [64, 4096]) {
      const seconds = ctx.quick ? 1 : 3;
      let bound = false;
      const passes = async (rate: number) => {
        const r = await driveRate(ctx, {
          url: `${running.url}/bench`,
          headers: authHeaders(ctx, ctx.tokens.hs256),
          connections: 50,
          bytes,
          rate,
          seconds,
        });
        bound ||= r.generatorBound;
        const ok = meetsBar(r);
        ctx.log(`  ${bytes} B at ${fmtRate(rate)}: ${r.received}/${r.sent} back, p99 ${r.p99.toFixed(2)} ms ${ok ? 'pass' : 'fail'}`);
        return { ok };
      };
      const lo = await highestPassing(ctx.quick ? 5_000 : bytes === 64 ? 100_000 : 25_000, passes, {
        doublings: ctx.quick ? 2 : 6,
        // The start rate already failed: halve until a step passes, so the row has a figure to bisect from.
        halvings: ctx.quick ? 0 : 4,
        bisections: ctx.quick ? 0 : 3,
      });
      figures.push(
        lo > 0
          ? { text: `${fmtRate(lo)}${ctx.quick ? ' (quick: lower bound)' : ''}`, value: lo, generatorBound: bound }
          : { text: 'failed at the first step', value: 0, generatorBound: bound },
      );
    }
    return figures;
  },
};
