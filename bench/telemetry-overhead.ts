/**
 * What does telemetry cost the relay? One run, two gateways in this process fronting the same
 * upstream: one with the OpenTelemetry observer (metrics, runtime metrics, tracing into a discarding
 * exporter, a Prometheus scrape every second), one with the no-op observer. Rounds alternate between
 * them so that machine drift hits both alike. The load generator runs in a child process, so that
 * this process's CPU time is the gateway's (and telemetry's) alone: CPU per message is the robust
 * figure on a shared machine, throughput the intuitive one; both are printed.
 *
 * Two workloads:
 *  - relay: N connections echoing 64-byte messages with a fixed window in flight (msg/s). Per-message
 *    work is identical by design (plain RouteCounters), so this measures the background cost.
 *  - churn: connections opened, one echo, closed, back to back (handshakes/s): every hook fires.
 *
 * Usage: npx tsx bench/telemetry-overhead.ts [--rounds 5] [--seconds 2] [--connections 50]
 * Target: telemetry costs < 10% (ratio on/off > 0.90).
 */
import { spawn } from 'node:child_process';
import type { ExportResult } from '@opentelemetry/core';
import { BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { Writable } from 'node:stream';
import { parseConfig } from '../src/config/load.ts';
import { startEchoChild } from './lib/echo-server.ts';
import { startServer } from '../src/main.ts';
import { telemetrySchema } from '../src/telemetry/config.ts';
import { createNoopObserver } from '../src/telemetry/observer.ts';
import { startTelemetry } from '../src/telemetry/start.ts';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
const ROUNDS = arg('rounds', 5);
const SECONDS = arg('seconds', 2);
const CONNECTIONS = arg('connections', 50);
const WINDOW = 16;
const TRACING = !process.argv.includes('--no-tracing');
const ONLY = process.argv.includes('--churn') ? ['churn'] : process.argv.includes('--relay') ? ['relay'] : ['relay', 'churn'];

/** Counts spans and drops them: the export path runs, the network does not. */
class DiscardingExporter implements SpanExporter {
  spans = 0;
  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    this.spans += spans.length;
    done({ code: 0 });
  }
  async shutdown(): Promise<void> {}
}

const sink = new Writable({ write: (_c, _e, cb) => cb() });

// The upstream echoes in its own process, so that this process's CPU is the gateways' alone.
const upstream = await startEchoChild();
const gatewayConfig = parseConfig({
  server: { host: '127.0.0.1', port: 0, drainWindowMs: 50 },
  routes: [{ path: '/ws/', upstream: `ws://127.0.0.1:${upstream.port}/ws/`, allowAnonymous: true }],
  limits: { attempts: { max: 1_000_000_000 }, concurrent: { max: 1_000_000 } },
  messages: { rate: { perMinute: 1e12, burst: 1_000_000_000 } },
});
const spans = new DiscardingExporter();
const tel = await startTelemetry(telemetrySchema.parse({ admin: { port: 0 }, logs: { level: 'warn' } }), {
  verifyToken: async () => {
    throw new Error('not used');
  },
  readiness: () => ({ ready: true, checks: {} }),
  spanProcessors: TRACING ? [new BatchSpanProcessor(spans)] : [],
  logDestination: sink,
  env: {},
});
const on = await startServer(gatewayConfig, { observer: tel.observer, logger: tel.logger });
const off = await startServer(gatewayConfig, { observer: createNoopObserver(), logger: tel.logger });

// The load generator: plain JS in a child process, `ws` as the client.
const GENERATOR = `
const WebSocket = require('ws');
const payload = Buffer.alloc(64, 97);
function openWs(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}
async function relay({ url, seconds, connections, window }) {
  const sockets = await Promise.all(Array.from({ length: connections }, () => within(5000, openWs(url))));
  let count = 0; let running = true;
  for (const ws of sockets) {
    ws.on('message', () => { count++; if (running) ws.send(payload); });
    for (let i = 0; i < window; i++) ws.send(payload);
  }
  await new Promise((r) => setTimeout(r, 300)); // warm-up
  const start = count; const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const n = count - start; const dt = (performance.now() - t0) / 1000;
  running = false;
  await Promise.all(sockets.map((ws) => within(3000, new Promise((r) => { ws.once('close', r); ws.close(1000); })).catch(() => ws.terminate())));
  return { rate: n / dt, total: count, stalls: 0 };
}
function within(ms, promise) {
  return Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error('stalled')), ms))]);
}
async function churn({ url, seconds, connections }) {
  let done = 0; let stalls = 0; const until = performance.now() + seconds * 1000;
  const lane = async () => {
    while (performance.now() < until) {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      ws.on('error', () => {});
      try {
        await within(2000, new Promise((r, j) => { ws.once('open', r); ws.once('unexpected-response', (_q, res) => j(new Error('HTTP ' + res.statusCode))); ws.once('error', j); }));
        await within(2000, new Promise((r) => { ws.once('message', r); ws.send(payload); }));
        await within(2000, new Promise((r) => { ws.once('close', r); ws.close(1000); }));
        done++;
      } catch (err) {
        // A stalled or failed connection is counted, not fatal: the figure must come out anyway.
        stalls++;
        if (stalls <= 3) process.stderr.write('churn: ' + err.message + '\\n');
        ws.terminate();
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.max(1, Math.floor(connections / 5)) }, lane));
  return { rate: done / ((performance.now() - t0) / 1000), total: done, stalls };
}
process.on('message', async (job) => {
  try { process.send(job.kind === 'relay' ? await relay(job) : await churn(job)); }
  catch (err) { process.send({ error: String(err && err.stack || err) }); }
});
`;
const generator = spawn(process.execPath, ['-e', GENERATOR], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: process.cwd() });
generator.on('exit', (code) => {
  process.stderr.write(`load generator exited (${code}); aborting\n`);
  process.exit(1);
});

interface Round {
  rate: number;
  stalls: number;
  /** this process's CPU microseconds per unit of work (message or connection) */
  cpuPerUnitUs: number;
}

function run(kind: 'relay' | 'churn', port: number): Promise<Round> {
  return new Promise((resolve, reject) => {
    const cpu0 = process.cpuUsage();
    generator.once('message', (m: { rate?: number; total?: number; stalls?: number; error?: string }) => {
      if (m.error) return reject(new Error(m.error));
      const cpu = process.cpuUsage(cpu0);
      resolve({ rate: m.rate!, stalls: m.stalls ?? 0, cpuPerUnitUs: (cpu.user + cpu.system) / Math.max(1, m.total!) });
    });
    generator.send({ kind, url: `ws://127.0.0.1:${port}/ws/echo/`, seconds: SECONDS, connections: CONNECTIONS, window: WINDOW });
  });
}

// A scraper like Prometheus, but every second rather than every 15 s, so its cost is visible.
let scrapes = 0;
const scraper = setInterval(() => {
  fetch(`${tel.admin!.url}/metrics`).then(
    (r) => r.text().then(() => scrapes++),
    (err: unknown) => process.stderr.write(`scrape failed: ${String(err)}\n`),
  );
}, 1000);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const results: Record<string, { on: Round[]; off: Round[] }> = { relay: { on: [], off: [] }, churn: { on: [], off: [] } };
// One discarded warm-up round per side and workload (JIT, connection pools).
for (const kind of ONLY as Array<'relay' | 'churn'>) for (const g of [on, off]) await run(kind, g.gateway.port);
for (const kind of ONLY as Array<'relay' | 'churn'>) {
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate which side goes first so that neither always runs on a warmer machine.
    const order = r % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const);
    for (const side of order) {
      const rate = await run(kind, (side === 'on' ? on : off).gateway.port);
      results[kind]![side].push(rate);
    }
    const [a, b] = [results[kind]!.on.at(-1)!, results[kind]!.off.at(-1)!];
    process.stdout.write(
      `${kind} round ${r + 1}/${ROUNDS}: on ${a.rate.toFixed(0)}/s ${a.cpuPerUnitUs.toFixed(1)} µs CPU each | off ${b.rate.toFixed(0)}/s ${b.cpuPerUnitUs.toFixed(1)} µs CPU each\n`,
    );
  }
}
clearInterval(scraper);

process.stdout.write(
  `\nnode ${process.version}, ${ROUNDS} alternating rounds of ${SECONDS} s, ${CONNECTIONS} connections, 64 B messages, window ${WINDOW}, tracing ${TRACING ? 'on' : 'off'}\n`,
);
for (const kind of ONLY as Array<'relay' | 'churn'>) {
  const onRate = median(results[kind]!.on.map((x) => x.rate));
  const offRate = median(results[kind]!.off.map((x) => x.rate));
  const onCpu = median(results[kind]!.on.map((x) => x.cpuPerUnitUs));
  const offCpu = median(results[kind]!.off.map((x) => x.cpuPerUnitUs));
  // Paired per round (the two sides of one round ran back to back): robust to drift between rounds.
  const pairedRate = median(results[kind]!.on.map((x, i) => x.rate / results[kind]!.off[i]!.rate));
  const pairedCpu = median(results[kind]!.on.map((x, i) => x.cpuPerUnitUs / results[kind]!.off[i]!.cpuPerUnitUs));
  const unit = kind === 'relay' ? 'msg' : 'connection';
  process.stdout.write(
    `${kind.padEnd(6)} throughput on ${onRate.toFixed(0)} ${unit}/s, off ${offRate.toFixed(0)} ${unit}/s: median paired ratio on/off ${pairedRate.toFixed(3)}\n` +
      `${''.padEnd(6)} gateway CPU per ${unit}: on ${onCpu.toFixed(2)} µs, off ${offCpu.toFixed(2)} µs: median paired telemetry cost ${((pairedCpu - 1) * 100).toFixed(1)}%\n`,
  );
}
// The observer's own cost per connection, isolated from sockets and the machine's other load:
// handshake (with dial and upstream headers), open and close, tracing on and off.
async function hookCostUs(tracing: boolean): Promise<number> {
  const t = await startTelemetry(telemetrySchema.parse({ admin: { port: 0 }, logs: { level: 'warn' } }), {
    verifyToken: async () => ({}),
    readiness: () => ({ ready: true, checks: {} }),
    spanProcessors: tracing ? [new BatchSpanProcessor(new DiscardingExporter())] : [],
    logDestination: sink,
    env: {},
  });
  const o = t.observer;
  const once = () => {
    const h = o.handshakeStarted('/ws/', undefined, undefined);
    h.dialStarted({ address: '127.0.0.1', port: 8080 });
    h.dialEnded();
    const c = h.accepted();
    c.opened();
    c.closed({ code: 1000, initiator: 'client', durationMs: 5, messagesIn: 1, messagesOut: 1 });
  };
  for (let i = 0; i < 5000; i++) once();
  const samples: number[] = [];
  for (let r = 0; r < 5; r++) {
    const n = 10_000;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) once();
    samples.push(((performance.now() - t0) * 1000) / n);
  }
  await t.close();
  return median(samples);
}
const hooksOff = await hookCostUs(false);
const hooksOn = await hookCostUs(true);
process.stdout.write(
  `hooks  observer cost per connection (isolated): ${hooksOff.toFixed(1)} µs without tracing, ${hooksOn.toFixed(1)} µs with tracing (3 spans)\n`,
);
const stalls = (side: 'on' | 'off') => Object.values(results).reduce((n, r) => n + r[side].reduce((m, x) => m + x.stalls, 0), 0);
process.stdout.write(`spans exported: ${spans.spans}, scrapes: ${scrapes}, stalled connections on/off: ${stalls('on')}/${stalls('off')}\n`);

generator.removeAllListeners('exit');
generator.kill();
await on.close();
await off.close();
await tel.close();
upstream.child.kill();
// Anything still referenced (sockets in TIME_WAIT callbacks, timers) must not keep a bench alive.
process.exit(0);
