/**
 * The toolkit's own ceiling on this machine: how many messages/s and new connections/s one
 * generator thread (one core) can drive against a uWS echo server before the saturation verdict
 * says its numbers stop being trustworthy, for the lean client and for `ws` side by side.
 * Run: npx tsx bench/cli-ceiling.ts [--quick] [--rounds N] [--transport lean|ws] [--no-conns]
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
import { TRANSPORTS, type Transport } from '../cli/engine/gen-socket.ts';

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
    `${label.padEnd(28)} ${extra.padEnd(72)} verdict=${s.verdict.padEnd(9)} eld.p99=${s.eventLoopP99Ms}ms lag.p99=${s.sendLagP99Ms}ms cpu=${s.cpuCores}`,
  );
}

interface Ceiling {
  msgs: number;
  conns: number;
}

/** One transport's ceiling: the highest step the saturation verdict still calls ok. */
async function ceiling(url: string, transport: Transport, quick: boolean, connSteps: boolean): Promise<Ceiling> {
  console.log(`\n-- [${transport}] messages/s: 50 connections, paced per-connection rates, 3 s each`);
  let bestMsgs = 0;
  let misses = 0;
  // One noisy step is not the ceiling: stop after two saturated steps in a row.
  const steps = quick ? [1600, 6400] : [3200, 4800, 6400, 8000, 10000, 12000, 14000, 16000, 18000, 20000, 24000];
  for (const perConn of steps) {
    const cpu0 = process.cpuUsage();
    const r = await runFlood(base(url, { connections: 50, msgRate: perConn, transport }));
    const cpu = process.cpuUsage(cpu0);
    // CPU per echoed message (send + receive) holds when other work takes the cores; the rate does not.
    const cpuUs = r.messages.received > 0 ? (cpu.user + cpu.system) / r.messages.received : 0;
    const achieved = r.messages.ratePerSecOut;
    const exact = r.messages.received === r.messages.sent ? '' : ` LOST ${r.messages.sent - r.messages.received}`;
    line(
      `  ${perConn * 50} msg/s asked`,
      r,
      `sent ${achieved}/s, echoed ${r.messages.ratePerSecIn}/s, ${cpuUs.toFixed(2)} µs CPU/msg, rtt p99 ${r.latency.rtt.p99} ms${exact}`,
    );
    if (r.saturation.verdict === 'ok' && exact === '') {
      bestMsgs = Math.max(bestMsgs, achieved);
      misses = 0;
    } else if (++misses === 2) break;
  }
  let bestConns = 0;
  if (connSteps) {
    console.log(`\n-- [${transport}] new connections/s: open model, each held 0.2 s, 3 s each`);
    misses = 0;
    for (const rate of quick ? [250, 1000] : [1000, 2000, 3000, 4000, 5000, 6000, 8000]) {
      const r = await runFlood(base(url, { arrivalRate: rate, holdSec: 0.2, transport }));
      const achieved = Math.round(r.connections.opened / 3);
      const failed = r.connections.attempts - r.connections.opened;
      line(`  ${rate} conn/s asked`, r, `opened ${achieved}/s, failed ${failed}, connect p99 ${r.latency.connect.p99} ms`);
      if (r.saturation.verdict === 'ok' && failed === 0 && achieved >= rate * 0.95) {
        bestConns = Math.max(bestConns, achieved);
        misses = 0;
      } else if (++misses === 2) break;
    }
  }
  return { msgs: bestMsgs, conns: bestConns };
}

const loads = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

/**
 * Flags: --quick (two steps each), --transport lean|ws (one transport only), --rounds N (transports
 * alternate N times, so drift in the machine's load falls on both), --no-conns (messages only).
 */
async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const only = argValue('--transport');
  if (only !== undefined && !TRANSPORTS.includes(only as Transport)) throw new Error(`--transport must be one of ${TRANSPORTS.join(', ')}`);
  const transports: Transport[] = only === undefined ? ['lean', 'ws'] : [only as Transport];
  const rounds = Number(argValue('--rounds') ?? 1);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds must be a positive integer');
  const connSteps = !process.argv.includes('--no-conns');
  console.log(
    `wsguard CLI ceiling: node ${process.version}, ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown'}), 64 B messages, uWS echo in a child process`,
  );
  // Other work on the machine takes cores from the generator; the load average says how much.
  console.log(`load average at start: ${loads()}`);
  const { child, url } = await startServer();
  const results = new Map<Transport, Ceiling[]>(transports.map((t) => [t, []]));
  try {
    for (let round = 0; round < rounds; round++) {
      for (const t of round % 2 === 0 ? transports : [...transports].reverse()) {
        results.get(t)!.push(await ceiling(url, t, quick, connSteps));
        console.log(`load average: ${loads()}`);
      }
    }
    console.log('\nceiling per generator thread (one core), best of rounds:');
    const best = new Map<Transport, Ceiling>();
    for (const [t, rs] of results) {
      const b = { msgs: Math.max(...rs.map((r) => r.msgs)), conns: Math.max(...rs.map((r) => r.conns)) };
      best.set(t, b);
      console.log(
        `  ${t.padEnd(5)} ~${b.msgs} msg/s sent (+ the same echoed back), ~${b.conns} new connections/s  [rounds: ${rs.map((r) => r.msgs).join(', ')}]`,
      );
    }
    const lean = best.get('lean');
    const ws = best.get('ws');
    if (lean && ws && ws.msgs > 0) {
      const conns = ws.conns > 0 ? (lean.conns / ws.conns).toFixed(2) : 'n/a';
      console.log(`  lean/ws: ${(lean.msgs / ws.msgs).toFixed(2)}x msg/s, ${conns}x connections/s`);
    }
    console.log(`load average at end: ${loads()}`);
  } finally {
    child.kill();
  }
}

function argValue(flag: string): string | undefined {
  const i = process.argv.indexOf(flag);
  return i < 0 ? undefined : process.argv[i + 1];
}

if (process.argv.includes('--serve')) await serveEcho();
else await main();
