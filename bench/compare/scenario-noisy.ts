import type { Scenario } from './base.ts';
import { authHeaders, driveRate } from './drive.ts';

/** Per-connection message limit in this row: well above the quiet clients' 100 msg/s, far below a flooder's. */
const PER_MINUTE = 60_000;

/**
 * Noisy neighbour: 5 of 50 connections flood (20k msg/s each, full run) far over the per-connection
 * message rate limit (messages.rate.perMinute=60000, burst 1000, action close); the other 45 send
 * 100 msg/s each. Figure: the quiet 90%'s p99. A proxy without per-connection limits relays the flood.
 */
export const noisy: Scenario = {
  rows: ['noisy neighbour: quiet 90% p99 ms while 10% flood (flooders closed)'],
  lowerIsBetter: true,
  wsguardSettings: () => [`messages.rate.perMinute=${PER_MINUTE}`, 'messages.rate.burst=1000'],
  async run(_system, running, ctx) {
    const r = await driveRate(ctx, {
      url: `${running.url}/bench`,
      headers: authHeaders(ctx, ctx.tokens.hs256),
      connections: 45,
      bytes: 64,
      rate: ctx.quick ? 900 : 4500,
      seconds: ctx.quick ? 1 : 5,
      floodConnections: 5,
      floodRate: ctx.quick ? 20_000 : 100_000,
    });
    return [
      {
        text: `${r.p99.toFixed(2)} (${r.floodClosed}/5 flooders closed, ${r.floodReceived} flood msgs echoed)`,
        value: r.received > 0 ? r.p99 : null,
        generatorBound: r.generatorBound,
      },
    ];
  },
};
