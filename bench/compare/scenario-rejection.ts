import { fmtRate, generatorBound, treeCpuMs, type Scenario } from './base.ts';
import { authHeaders, driveRate, statusSummary, upgradeRate } from './drive.ts';

/** Attempts one address may make per window in this row: spent within the first second of the flood (--quick: 50). */
export const REJECTION_ATTEMPTS = 1000;
const attempts = (quick: boolean) => (quick ? 50 : REJECTION_ATTEMPTS);

/**
 * Rejection: one address floods upgrades far over its attempt limit (limits.attempts.max=1000 in
 * this row) and is answered 429; meanwhile 50 admitted connections from other addresses carry
 * 5k msg/s and their p99 must stay under 10 ms. Only a system with per-IP limits applies.
 * The flood and the measured traffic run in different generator processes: in one process the
 * flood's dialling delayed the traffic's own timers, and its p99 (63 ms in the first full run)
 * measured the generator as much as the gateway.
 */
export const rejection: Scenario = {
  rows: [`429s/s to one flooding address (attempts.max=${REJECTION_ATTEMPTS}); admitted p99`],
  appliesTo: (s) => s.enforcesLimits,
  wsguardSettings: (ctx) => [`limits.attempts.max=${attempts(ctx.quick)}`],
  async run(_system, running, ctx) {
    const seconds = ctx.quick ? 1 : 5;
    const cpu0 = running.pid ? treeCpuMs(running.pid) : 0;
    const [flood, traffic] = await Promise.all([
      ctx.gens.run((i) =>
        i !== 0
          ? null
          : {
              kind: 'upgrades',
              url: `${running.url}/bench`,
              headers: authHeaders(ctx, ctx.tokens.hs256),
              seconds,
              concurrency: ctx.quick ? 8 : 32,
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
    const rate429 = upgradeRate(flood, '429');
    const attempts = flood.reduce((a, r) => a + Object.values(r.statuses as Record<string, number>).reduce((x, y) => x + y, 0), 0);
    const cpu = flood.map((r) => `${Math.round((100 * r.cpuMs) / r.wallMs)}%`).join('+');
    // Per attempt, the flooding generator's CPU next to the proxy's (which also carries the admitted traffic).
    const perAttempt = (ms: number) => (attempts ? `${Math.round((1000 * ms) / attempts)} µs` : 'n/a');
    ctx.log(
      `  flood outcomes: ${statusSummary(flood)}, flooding generator CPU ${cpu} (${perAttempt(flood.reduce((a, r) => a + r.cpuMs, 0))} per attempt; ` +
        `the proxy ${perAttempt(proxyMs)} per attempt, admitted traffic included); admitted ${traffic.received}/${traffic.sent} back`,
    );
    return [
      {
        text: `${fmtRate(rate429)}, admitted p99 ${traffic.p99.toFixed(2)} ms`,
        value: rate429 > 0 ? rate429 : null,
        generatorBound: traffic.generatorBound || generatorBound(flood),
      },
    ];
  },
};
