/**
 * The toolkit's own ceiling on this machine: how many messages/s and new connections/s one
 * generator thread (one core) can drive against a uWS echo server before the saturation verdict
 * says its numbers stop being trustworthy. Run: npx tsx bench/cli-ceiling.ts [--quick]
 *
 * The echo server runs in a child process so it does not share the generator's event loop; on a
 * 2-core machine the two still share the CPU, which is the honest setting for "this machine".
 */
import { fork, type ChildProcess } from 'node:child_process';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SATURATION_LIMITS } from '../cli/engine/saturation.ts';
import { FLOOD_DEFAULTS, runFlood, type FloodOptions } from '../cli/engine/flood.ts';
import type { RunResult } from '../cli/engine/result.ts';

const SELF = fileURLToPath(import.meta.url);

async function serveEcho(): Promise<void> {
  const { uws, listen } = await import('../src/gateway/uws.ts');
  const app = uws.App().ws('/*', {
    maxPayloadLength: 1 << 20,
    idleTimeout: 0,
    maxBackpressure: 64 * 1024 * 1024,
    message: (ws, msg, isBinary) => void ws.send(msg, isBinary),
  });
  const { port } = await listen(app, '127.0.0.1', 0);
  process.send!({ port });
}

function startServer(): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = fork(SELF, ['--serve'], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
    child.once('message', (m: { port: number }) => resolve({ child, url: `ws://127.0.0.1:${m.port}/` }));
    child.once('error', reject);
  });
}

function base(url: string, o: Partial<FloodOptions>): FloodOptions {
  return {
    ...FLOOD_DEFAULTS,
    url,
    durationSec: 3,
    msgRate: 0,
    payload: { sizeBytes: 64 },
    drainMs: 1_000,
    closeGraceMs: 1_000,
    caps: { maxConnections: 100_000, maxConnRate: 100_000, maxMsgRate: 10_000_000, maxDurationSec: 60 },
    saturation: DEFAULT_SATURATION_LIMITS,
    ...o,
  };
}

function line(label: string, r: RunResult, extra: string): void {
  const s = r.saturation;
  console.log(
    `${label.padEnd(28)} ${extra.padEnd(40)} verdict=${s.verdict.padEnd(9)} eld.p99=${s.eventLoopP99Ms}ms lag.p99=${s.sendLagP99Ms}ms cpu=${s.cpuCores}`,
  );
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  console.log(
    `wsguard CLI ceiling: node ${process.version}, ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown'}), 64 B messages, uWS echo in a child process`,
  );
  // Other work on the machine takes cores from the generator; the load average says how much.
  console.log(
    `load average at start: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const { child, url } = await startServer();
  try {
    console.log('\n-- messages/s: 50 connections, paced per-connection rates, 3 s each');
    let bestMsgs = 0;
    let misses = 0;
    // One noisy step is not the ceiling: stop after two saturated steps in a row.
    for (const perConn of quick ? [400, 1600] : [1600, 3200, 4800, 6400, 8000, 10000, 12000, 16000]) {
      const r = await runFlood(base(url, { connections: 50, msgRate: perConn }));
      const achieved = r.messages.ratePerSecOut;
      line(`  ${perConn * 50} msg/s asked`, r, `sent ${achieved}/s, echoed ${r.messages.ratePerSecIn}/s, rtt p99 ${r.latency.rtt.p99} ms`);
      if (r.saturation.verdict === 'ok') {
        bestMsgs = Math.max(bestMsgs, achieved);
        misses = 0;
      } else if (++misses === 2) break;
    }
    console.log('\n-- new connections/s: open model, each held 0.2 s, 3 s each');
    let bestConns = 0;
    misses = 0;
    for (const rate of quick ? [250, 1000] : [1000, 2000, 3000, 4000, 5000, 6000, 8000]) {
      const r = await runFlood(base(url, { arrivalRate: rate, holdSec: 0.2 }));
      const achieved = Math.round(r.connections.opened / 3);
      const failed = r.connections.attempts - r.connections.opened;
      line(`  ${rate} conn/s asked`, r, `opened ${achieved}/s, failed ${failed}, connect p99 ${r.latency.connect.p99} ms`);
      if (r.saturation.verdict === 'ok' && failed === 0 && achieved >= rate * 0.95) {
        bestConns = Math.max(bestConns, achieved);
        misses = 0;
      } else if (++misses === 2) break;
    }
    console.log(
      `\nceiling per generator thread (one core): ~${bestMsgs} msg/s sent (+ the same echoed back), ~${bestConns} new connections/s`,
    );
    console.log(
      `load average at end: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
  } finally {
    child.kill();
  }
}

if (process.argv.includes('--serve')) await serveEcho();
else await main();
