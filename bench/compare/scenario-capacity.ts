import { fmtRate, type Figure, type Scenario } from './base.ts';
import { authHeaders, driveRate } from './drive.ts';

/**
 * Relay capacity: the highest offered rate at which ≥ 99% of messages come back with p99 < 10 ms.
 * Doubling from a start rate until a step fails (or halving until one passes), then a short bisection
 * between the last pass and the first failure. 50 connections.
 */
export const capacity: Scenario = {
  rows: ['relay capacity, 64 B (msg/s: ≥99% back, p99 < 10 ms)', 'relay capacity, 4 KiB'],
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
        const ok = r.sent > 0 && r.received / r.sent >= 0.99 && r.p99 < 10;
        ctx.log(`  ${bytes} B at ${fmtRate(rate)}: ${r.received}/${r.sent} back, p99 ${r.p99.toFixed(2)} ms ${ok ? 'pass' : 'fail'}`);
        return ok;
      };
      let lo = 0;
      let hi = 0;
      let rate = ctx.quick ? 5_000 : bytes === 64 ? 100_000 : 25_000;
      const maxSteps = ctx.quick ? 2 : 6;
      for (let step = 0; step < maxSteps; step++) {
        if (await passes(rate)) {
          lo = rate;
          rate *= 2;
        } else {
          hi = rate;
          break;
        }
      }
      if (hi === 0 && !ctx.quick) hi = rate; // never failed: the bisection has no upper bound to narrow
      // The start rate already failed: halve until a step passes, so the row has a figure to bisect from
      // (bisecting from 0 only ever halves too, and ended at "failed at the first step" with no lower bound).
      for (let step = 0; lo === 0 && !ctx.quick && step < 4; step++) {
        const lower = Math.round(hi / 2);
        if (await passes(lower)) lo = lower;
        else hi = lower;
      }
      const bisections = ctx.quick ? 0 : 3;
      for (let i = 0; i < bisections && hi > lo * 1.1; i++) {
        const mid = Math.round((lo + hi) / 2);
        if (await passes(mid)) lo = mid;
        else hi = mid;
      }
      figures.push(
        lo > 0
          ? { text: `${fmtRate(lo)}${ctx.quick ? ' (quick: lower bound)' : ''}`, value: lo, generatorBound: bound }
          : { text: 'failed at the first step', value: 0, generatorBound: bound },
      );
    }
    return figures;
  },
};
