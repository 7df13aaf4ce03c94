import type { Figure, Scenario } from './base.ts';
import { authHeaders, driveRate } from './drive.ts';

const RATES = [10_000, 50_000, 100_000];

/** Round trip p50/p99/p99.9 at fixed offered rates, open loop, counted from each intended send time. */
export const latency: Scenario = {
  rows: RATES.map((r) => `round trip p50/p99/p99.9 ms at ${r / 1000}k msg/s, 64 B (ratio: p99)`),
  lowerIsBetter: true,
  async run(_system, running, ctx) {
    const figures: Figure[] = [];
    for (const full of RATES) {
      // --quick offers a tenth, for one second: it checks the path, it is not a figure to quote.
      const rate = ctx.quick ? full / 10 : full;
      const r = await driveRate(ctx, {
        url: `${running.url}/bench`,
        headers: authHeaders(ctx, ctx.tokens.hs256),
        connections: 50,
        bytes: 64,
        rate,
        seconds: ctx.quick ? 1 : 5,
      });
      const lost = r.sent - r.received;
      figures.push({
        text: `${r.p50.toFixed(2)}/${r.p99.toFixed(2)}/${r.p999.toFixed(2)}${lost ? ` (${lost} lost)` : ''}${ctx.quick ? ` @${rate / 1000}k` : ''}`,
        value: r.received > 0 ? r.p99 : null,
        generatorBound: r.generatorBound,
      });
    }
    return figures;
  },
};
