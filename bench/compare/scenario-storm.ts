import type { Scenario } from './base.ts';
import { authHeaders } from './drive.ts';

/** Reconnect storm: N clients (5,000; --quick 200) dropped at once and redialled; seconds until the last is admitted again. */
export const storm: Scenario = {
  rows: ['reconnect storm: s to re-admit 5,000 dropped clients'],
  lowerIsBetter: true,
  async run(_system, running, ctx) {
    const n = ctx.quick ? 200 : 5000;
    const headers = authHeaders(ctx, ctx.tokens.hs256);
    const url = `${running.url}/bench`;
    const share = (i: number) => Math.floor(n / ctx.gens.size) + (i < n % ctx.gens.size ? 1 : 0);
    await ctx.gens.run((i) => ({ kind: 'hold', url, headers, n: share(i) }));
    const results = await ctx.gens.run(() => ({ kind: 'storm', url, headers, timeoutMs: 60_000 }));
    await ctx.gens.run(() => ({ kind: 'release' }));
    const readmitted = results.reduce((a, r) => a + (r.readmitted as number), 0);
    const retries = results.reduce((a, r) => a + (r.retries as number), 0);
    const seconds = Math.max(...results.map((r) => r.wallMs)) / 1000;
    return [
      {
        text: `${seconds.toFixed(2)} s (${readmitted}/${n}, ${retries} retries)`,
        value: readmitted === n ? seconds : null,
      },
    ];
  },
};
