import { fmtRate, generatorBound, treeCpuMs, type Figure, type Scenario } from './base.ts';
import { authHeaders, statusSummary, upgradeRate } from './drive.ts';

/**
 * Handshake admission: upgrades admitted per second, a fresh TCP connection each (dial, 101, drop),
 * from 250 source addresses per generator. wsguard verifies the token on / and admits anonymous
 * clients on /anon; the other systems verify nothing, so their three rows are the same plain upgrade.
 */
export const handshake: Scenario = {
  rows: [
    'upgrades admitted/s, HS256 token',
    'upgrades admitted/s, HS256, a new token each',
    'upgrades admitted/s, ES256 token',
    'upgrades admitted/s, anonymous',
  ],
  async run(system, running, ctx) {
    const figures: Figure[] = [];
    // A fresh instance runs cold (JIT, first buffers): its first row measured 1,081/s where the same
    // build gave 2,000/s in a later row. One untimed second of upgrades first, on every system alike.
    await ctx.gens.run(() => ({
      kind: 'upgrades',
      url: `${running.url}/bench`,
      headers: authHeaders(ctx, ctx.tokens.hs256),
      seconds: ctx.quick ? 0.3 : 1,
      concurrency: 8,
    }));
    // The token rows reuse one token, as reconnecting clients do (wsguard verifies it once, then
    // remembers it: auth.verifiedCacheSize); "a new token each" is a crowd of distinct users.
    for (const [path, token, mint] of [
      ['/bench', ctx.tokens.hs256, false],
      ['/bench', ctx.tokens.hs256, true],
      ['/bench', ctx.tokens.es256, false],
      ['/anon/bench', undefined, false],
    ] as const) {
      const cpu0 = running.pid ? treeCpuMs(running.pid) : 0;
      const results = await ctx.gens.run(() => ({
        kind: 'upgrades',
        url: `${running.url}${system.withSettings ? path : '/bench'}`,
        headers: authHeaders(ctx, token),
        seconds: ctx.quick ? 1 : 5,
        concurrency: ctx.quick ? 8 : 32,
        ...(mint ? { mintSecret: ctx.tokens.secret } : {}),
      }));
      const rate = upgradeRate(results);
      const admitted = results.reduce((a, r) => a + ((r.statuses as Record<string, number>)['101'] ?? 0), 0);
      // The proxy's own CPU per admitted upgrade: steadier than the rate when other work shares the cores.
      const cpuPer = running.pid && admitted ? `, ${Math.round(((treeCpuMs(running.pid) - cpu0) * 1000) / admitted)} µs CPU each` : '';
      const cpu = results.map((r) => `${Math.round((100 * r.cpuMs) / r.wallMs)}%`).join('+');
      ctx.log(`  ${path} ${mint ? 'new tokens' : token ? 'token' : 'anonymous'}: ${statusSummary(results)}; generator CPU ${cpu}`);
      figures.push({ text: `${fmtRate(rate)}${cpuPer}`, value: rate > 0 ? rate : null, generatorBound: generatorBound(results) });
    }
    return figures;
  },
};
