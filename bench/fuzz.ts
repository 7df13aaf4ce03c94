/**
 * The long fuzz run (not in CI): the same generators as test/security/fuzz.test.ts against a child
 * gateway for `--minutes` (default 10), seed from `--seed` (default: time). Loopback only.
 *   npm run fuzz -- --minutes 10 --seed 1234
 * Exits 1 on any violation, a crash, or fds/RSS that do not come back.
 */
import { startEchoUpstream } from '../test/helpers/upstream.ts';
import { fdCount, rssBytes, settle, startChildGateway } from '../test/security/helpers/child-gateway.ts';
import { formatReport, fuzzConfig, runFuzz, startFuzzUpstream, type FuzzReport } from '../test/security/helpers/fuzz-core.ts';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} must be a non-negative number`);
  return v;
}

const minutes = arg('minutes', 10);
const seed = arg('seed', Date.now() % 2 ** 31);
const echo = await startEchoUpstream();
const raw = await startFuzzUpstream();
const gw = await startChildGateway(fuzzConfig(`${echo.url}/`, raw.url));
console.log(`fuzz: seed ${seed}, ${minutes} min, gateway pid ${gw.pid} on port ${gw.port}`);
const fd0 = fdCount(gw.pid);
const rss0 = rssBytes(gw.pid);
const until = Date.now() + minutes * 60_000;
const total: FuzzReport = { seed, iterations: { handshake: 0, clientFrames: 0, upstreamFrames: 0 }, outcomes: new Map(), violations: [] };
let round = 0;
// Rounds of three 10 s phases, each with a seed derived from the run's seed, so a failing round replays alone.
while (Date.now() < until && total.violations.length === 0) {
  const r = await runFuzz({
    port: gw.port,
    seed: (seed + round * 7919) >>> 0,
    phaseBudgetMs: Math.min(10_000, Math.max(1000, (until - Date.now()) / 3)),
    maxIterationsPerPhase: 100_000,
    check: () => (gw.child.exitCode !== null || gw.child.signalCode !== null ? `gateway exited\n${gw.stderr().slice(-3000)}` : null),
  });
  for (const k of ['handshake', 'clientFrames', 'upstreamFrames'] as const) total.iterations[k] += r.iterations[k];
  for (const [k, v] of r.outcomes) total.outcomes.set(k, (total.outcomes.get(k) ?? 0) + v);
  total.violations.push(...r.violations.map((v) => `round ${round} (seed ${r.seed}): ${v}`));
  round++;
  console.log(
    `round ${round}: ${r.iterations.handshake + r.iterations.clientFrames + r.iterations.upstreamFrames} cases, fds ${fdCount(gw.pid)}, rss ${(rssBytes(gw.pid) / 2 ** 20).toFixed(1)} MiB`,
  );
}
console.log(formatReport(total));
let failed = total.violations.length > 0;
if (gw.child.exitCode === null) {
  const fds = await settle(
    () => fdCount(gw.pid),
    (n) => n <= fd0 + 4,
    15_000,
  );
  const rss = rssBytes(gw.pid);
  console.log(`fds: ${fd0} → ${fds}; rss: ${(rss0 / 2 ** 20).toFixed(1)} → ${(rss / 2 ** 20).toFixed(1)} MiB`);
  if (fds > fd0 + 4) failed = true;
} else failed = true;
await gw.stop();
await raw.close();
await echo.close();
console.log(failed ? 'verdict: FAIL' : 'verdict: ok');
process.exit(failed ? 1 : 0);
