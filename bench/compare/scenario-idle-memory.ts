import { readFileSync } from 'node:fs';
import { treeRssBytes, type Scenario } from './base.ts';
import { authHeaders } from './drive.ts';

/** RSS per idle proxied connection: the proxy's resident set (all its processes) before and after N open connections. */
export const idleMemory: Scenario = {
  rows: ['RSS per idle proxied connection (KB)'],
  lowerIsBetter: true,
  appliesTo: (s) => s.name !== 'direct',
  async run(_system, running, ctx) {
    // 10k wanted, but a proxy holds two descriptors per connection: the soft fd limit (20,000 here) caps it.
    const soft = Number(/Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? 20000);
    const n = ctx.quick ? 500 : Math.min(10_000, Math.floor((soft - 1000) / 2));
    const before = treeRssBytes(running.pid!);
    const opened = await ctx.gens.run((i) => ({
      kind: 'hold',
      url: `${running.url}/bench`,
      headers: authHeaders(ctx, ctx.tokens.hs256),
      n: Math.floor(n / ctx.gens.size) + (i < n % ctx.gens.size ? 1 : 0),
    }));
    const after = treeRssBytes(running.pid!);
    await ctx.gens.run(() => ({ kind: 'release' }));
    const total = opened.reduce((a, r) => a + (r.opened as number), 0);
    const perConn = (after - before) / total / 1024;
    return [{ text: `${perConn.toFixed(1)} KB (${total} conns)`, value: perConn }];
  },
};
