import { treeCpuMs, type Figure, type Scenario } from './base.ts';
import { authHeaders, driveRate } from './drive.ts';

const RATES = [10_000, 50_000, 100_000];

/**
 * Round trip p50/p99/p99.9 at fixed offered rates, open loop, counted from each intended send time,
 * and the proxy's own CPU per relayed message (both directions): on two shared cores the latency of
 * every system depends on what the others take, the CPU per message does not.
 */
export const latency: Scenario = {
  rows: RATES.map((r) => `round trip p50/p99/p99.9 ms at ${r / 1000}k msg/s, 64 B (ratio: p99)`),
  lowerIsBetter: true,
  async run(_system, running, ctx) {
    const figures: Figure[] = [];
    for (const full of RATES) {
      // --quick offers a tenth, for one second: it checks the path, it is not a figure to quote.
      const rate = ctx.quick ? full / 10 : full;
      const cpu0 = running.pid ? treeCpuMs(running.pid) : 0;
      const r = await driveRate(ctx, {
        url: `${running.url}/bench`,
        headers: authHeaders(ctx, ctx.tokens.hs256),
        connections: 50,
        bytes: 64,
        rate,
        seconds: ctx.quick ? 1 : 5,
      });
      const lost = r.sent - r.received;
      // Includes the generators' warm-up messages and the connection set-up: a small overestimate, alike for every proxy.
      const cpuPer = running.pid && r.received ? `, ${(((treeCpuMs(running.pid) - cpu0) * 1000) / r.received).toFixed(1)} µs CPU/msg` : '';
      figures.push({
        text: `${r.p50.toFixed(2)}/${r.p99.toFixed(2)}/${r.p999.toFixed(2)}${lost ? ` (${lost} lost)` : ''}${cpuPer}${ctx.quick ? ` @${rate / 1000}k` : ''}`,
        value: r.received > 0 ? r.p99 : null,
        generatorBound: r.generatorBound,
      });
    }
    return figures;
  },
};
