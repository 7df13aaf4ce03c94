import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoUpstream, type TestUpstream } from '../helpers/upstream.ts';
import type { TestServer } from '../relay/upstream-servers.ts';
import { fdCount, rssBytes, settle, startChildGateway, type ChildGateway } from './helpers/child-gateway.ts';
import { formatReport, fuzzConfig, runFuzz, startFuzzUpstream } from './helpers/fuzz-core.ts';
import { RawWsClient } from './helpers/raw.ts';

// A fixed seed so a CI failure replays exactly: `npm run fuzz -- --seed 20240607 --minutes 1`.
const SEED = Number(process.env['WSGUARD_FUZZ_SEED'] ?? 20240607);
const PHASE_BUDGET_MS = 2000;
const MAX_ITERATIONS_PER_PHASE = 1500;

let echo: TestUpstream;
let raw: TestServer;
let gw: ChildGateway;

beforeAll(async () => {
  echo = await startEchoUpstream();
  raw = await startFuzzUpstream();
  gw = await startChildGateway(fuzzConfig(`${echo.url}/`, raw.url));
});

afterAll(async () => {
  await gw?.stop();
  await raw?.close();
  await echo?.close();
});

describe('bounded fuzz against a child gateway', () => {
  it('never crashes, ends every connection with a documented status or close code, and gives back fds and memory', async () => {
    // Warm up (JIT, pools, telemetry) before taking the baseline.
    const warm = await RawWsClient.connect(gw.port, '/e/warm');
    warm.destroy();
    const fdBaseline = await settle(
      () => fdCount(gw.pid),
      () => true,
      0,
    );
    const report = await runFuzz({
      port: gw.port,
      seed: SEED,
      phaseBudgetMs: PHASE_BUDGET_MS,
      maxIterationsPerPhase: MAX_ITERATIONS_PER_PHASE,
      check: () =>
        gw.child.exitCode !== null || gw.child.signalCode !== null
          ? `gateway exited (${gw.child.exitCode ?? gw.child.signalCode})\n${gw.stderr().slice(-2000)}`
          : null,
    });
    console.log(formatReport(report));
    expect(report.violations).toEqual([]);
    const total = report.iterations.handshake + report.iterations.clientFrames + report.iterations.upstreamFrames;
    expect(total).toBeGreaterThan(100);
    expect(gw.child.exitCode).toBeNull();
    expect(gw.stderr()).not.toMatch(/uncaught|unhandled|FATAL|Segmentation/i);

    // Fds: every socket the run opened is closed again (a small margin for pooled/lazy handles).
    const fds = await settle(
      () => fdCount(gw.pid),
      (n) => n <= fdBaseline + 4,
      8000,
    );
    console.log(`fds: baseline ${fdBaseline}, after ${fds}`);
    expect(fds).toBeLessThanOrEqual(fdBaseline + 4);
    // RSS settles: two samples 500 ms apart within 5 %, for at most 10 samples (5 s).
    let prev = rssBytes(gw.pid);
    let drift = 1;
    for (let i = 0; i < 10 && drift >= 0.05; i++) {
      await new Promise((r) => setTimeout(r, 500));
      const now = rssBytes(gw.pid);
      drift = Math.abs(now - prev) / prev;
      prev = now;
    }
    console.log(`rss: ${(prev / 2 ** 20).toFixed(1)} MiB, last drift ${(drift * 100).toFixed(1)} %`);
    expect(drift).toBeLessThan(0.05);
  }, 30_000);
});
