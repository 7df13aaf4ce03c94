import { fmtRate, generatorBound, treeCpuMs, type Figure, type Scenario } from './base.ts';
import { authHeaders, statusSummary, upgradeRate } from './drive.ts';

/**
 * Handshake admission: upgrades admitted per second, a fresh TCP connection each (dial, 101, drop),
 * from 250 source addresses per generator. wsguard verifies the token on / and admits anonymous
 * clients on /anon; the other systems verify nothing, so their three rows are the same plain upgrade.
 */
export const handshake: Scenario = {
  rows: ['upgrades admitted/s, HS256 token', 'upgrades admitted/s, ES256 token', 'upgrades admitted/s, anonymous'],
  async run(system, running, ctx) {
    const figures: Figure[] = [];
    for (const [path, token] of [
      ['/bench', ctx.tokens.hs256],
      ['/bench', ctx.tokens.es256],
      ['/anon/bench', undefined],
    ] as const) {
      const cpu0 = running.pid ? treeCpuMs(running.pid) : 0;
      const results = await ctx.gens.run(() => ({
        kind: 'upgrades',
        url: `${running.url}${system.name === 'wsguard' ? path : '/bench'}`,
        headers: authHeaders(ctx, token),
        seconds: ctx.quick ? 1 : 5,
        concurrency: ctx.quick ? 8 : 32,
      }));
      const rate = upgradeRate(results);
      const admitted = results.reduce((a, r) => a + ((r.statuses as Record<string, number>)['101'] ?? 0), 0);
      // The proxy's own CPU per admitted upgrade: steadier than the rate when other work shares the cores.
      const cpuPer = running.pid && admitted ? `, ${Math.round(((treeCpuMs(running.pid) - cpu0) * 1000) / admitted)} µs CPU each` : '';
      const cpu = results.map((r) => `${Math.round((100 * r.cpuMs) / r.wallMs)}%`).join('+');
      ctx.log(`  ${path} ${token ? 'token' : 'anonymous'}: ${statusSummary(results)}; generator CPU ${cpu}`);
      figures.push({ text: `${fmtRate(rate)}${cpuPer}`, value: rate > 0 ? rate : null, generatorBound: generatorBound(results) });
    }
    return figures;
  },
};
